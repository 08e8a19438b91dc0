// Command netaiops-pcapgen writes a seeded synthetic capture: client/server
// flows over IPv4 and IPv6 (TCP, UDP, ICMP, some 802.1Q) towards
// Zipf-popular servers, with a port scan and a SYN flood injected (presets
// bench and small), or a busy enterprise edge at 5 000 new flows/s, benign
// (enterprise) or with one attack of every kind (enterprise-attacks; see
// synth.EnterpriseAttacks). The same seed gives the same file, byte for
// byte.
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
	preset := flag.String("preset", "bench", "traffic mix: bench (4M packets, ~660k flows), small (fixture), enterprise or enterprise-attacks")
	packets := flag.Int("packets", 0, "override the preset's packet count (bench, small)")
	duration := flag.Duration("duration", time.Minute, "traffic to generate (enterprise presets)")
	seed := flag.Int64("seed", 0, "override the preset's seed")
	ng := flag.Bool("pcapng", false, "write pcapng instead of pcap")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*out, *preset, *packets, *seed, *duration, *ng, log); err != nil {
		log.Error("pcapgen failed", "err", err)
		os.Exit(1)
	}
}

func run(out, preset string, packets int, seed int64, duration time.Duration, ng bool, log *slog.Logger) error {
	if out == "" {
		return fmt.Errorf("-o is required")
	}
	var gen synth.Generator
	var snaplen int
	switch preset {
	case "bench", "small":
		cfg := synth.BenchMix()
		if preset == "small" {
			cfg = synth.SmallMix()
		}
		if packets > 0 {
			cfg.Duration = time.Duration(float64(cfg.Duration) * float64(packets) / float64(cfg.Packets))
			cfg.Packets = packets
		}
		if seed != 0 {
			cfg.Seed = seed
		}
		gen, snaplen = synth.NewMix(cfg), cfg.Snaplen
	case "enterprise", "enterprise-attacks":
		if duration <= 0 {
			return fmt.Errorf("-duration %s: want a positive duration", duration)
		}
		cfg := synth.BenignEnterprise(1, duration)
		if seed != 0 {
			cfg.Seed = seed
		}
		if preset == "enterprise-attacks" {
			cfg.Attacks = synth.EnterpriseAttacks()
		}
		gen, snaplen = synth.NewEnterprise(cfg), cfg.Snaplen
	default:
		return fmt.Errorf("-preset %q: want bench, small, enterprise or enterprise-attacks", preset)
	}
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	start := time.Now()
	st, err := synth.WriteFrom(f, gen, snaplen, ng)
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
