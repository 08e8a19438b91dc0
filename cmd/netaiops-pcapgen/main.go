// Command netaiops-pcapgen writes a seeded synthetic capture: client/server
// flows over IPv4 and IPv6 (TCP, UDP, ICMP, some 802.1Q) towards
// Zipf-popular servers, with a port scan and a SYN flood injected. The same
// seed gives the same file, byte for byte.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

func main() {
	out := flag.String("o", "", "output file (required)")
	preset := flag.String("preset", "bench", "traffic mix: bench (4M packets, ~660k flows) or small (fixture)")
	packets := flag.Int("packets", 0, "override the preset's packet count")
	seed := flag.Int64("seed", 0, "override the preset's seed")
	ng := flag.Bool("pcapng", false, "write pcapng instead of pcap")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*out, *preset, *packets, *seed, *ng, log); err != nil {
		log.Error("pcapgen failed", "err", err)
		os.Exit(1)
	}
}

func run(out, preset string, packets int, seed int64, ng bool, log *slog.Logger) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	var cfg synth.MixConfig
	switch preset {
	case "bench":
		cfg = synth.BenchMix()
	case "small":
		cfg = synth.SmallMix()
	default:
		return fmt.Errorf("-preset %q: want bench or small", preset)
	}
	if packets > 0 {
		cfg.Duration = time.Duration(float64(cfg.Duration) * float64(packets) / float64(cfg.Packets))
		cfg.Packets = packets
	}
	if seed != 0 {
		cfg.Seed = seed
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	start := time.Now()
	st, err := synth.Write(f, cfg, ng)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", out, cerr)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	log.Info("capture written", "file", out, "packets", st.Packets, "wire_bytes", st.Bytes,
		"captured_bytes", st.Captured, "seconds", time.Since(start).Seconds())
	return nil
}
