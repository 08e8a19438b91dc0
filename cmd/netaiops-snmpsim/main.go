// Command netaiops-snmpsim serves simulated SNMP devices on one UDP socket:
// the embedded demo scenario by default, a scenario file, a directory of
// recorded walks, or N generated devices for load tests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netaiops/netaiops/collector/snmpsim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "netaiops-snmpsim:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen      = flag.String("listen", "127.0.0.1:1161", "UDP address to answer on")
		scenario    = flag.String("scenario", "", "scenario YAML file (default: the embedded demo scenario)")
		snmprecDir  = flag.String("snmprec-dir", "", "serve every .snmprec/.snmpwalk file in this directory, community = file base name")
		devices     = flag.Int("devices", 0, "generate this many devices sim-00001... (communities = names) instead of a scenario")
		interfaces  = flag.Int("interfaces", 24, "interfaces per generated device (with --devices)")
		maxMsg      = flag.Int("max-message-size", snmpsim.DefaultMaxMessageSize, "largest response datagram in bytes")
		statsEvery  = flag.Duration("stats-interval", time.Minute, "log the self-counters this often (0: only on exit)")
		logLevel    = flag.String("log-level", "info", "debug, info, warn or error")
		checkConfig = flag.Bool("check-config", false, "load the scenario and recordings, report, and exit")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("flag --log-level: %q: want debug, info, warn or error", *logLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	sc, err := buildScenario(*scenario, *snmprecDir, *devices, *interfaces)
	if err != nil {
		return err
	}
	srv, err := snmpsim.NewServer(sc, snmpsim.Options{Logger: log, MaxMessageSize: *maxMsg})
	if err != nil {
		return err
	}
	if *checkConfig {
		fmt.Printf("%s: %d devices ok\n", sc.Source, len(srv.Devices()))
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ua, err := net.ResolveUDPAddr("udp", *listen)
	if err != nil {
		return fmt.Errorf("flag --listen: %w", err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *listen, err)
	}
	log.Info("serving simulated devices", "listen", conn.LocalAddr().String(), "scenario", sc.Source,
		"devices", len(srv.Devices()), "start", srv.Start().UTC().Format(time.RFC3339))

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	var tick <-chan time.Time
	if *statsEvery > 0 {
		t := time.NewTicker(*statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			log.Info("self-counters", "stats", srv.Stats())
		case err := <-done:
			log.Info("stopped", "stats", srv.Stats())
			return err
		}
	}
}

func buildScenario(file, dir string, n, m int) (*snmpsim.Scenario, error) {
	set := 0
	for _, b := range []bool{file != "", dir != "", n > 0} {
		if b {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("flags --scenario, --snmprec-dir and --devices are exclusive: use one")
	}
	switch {
	case file != "":
		return snmpsim.LoadScenario(file)
	case dir != "":
		devs, err := snmpsim.RecordingsIn(dir)
		if err != nil {
			return nil, fmt.Errorf("flag --snmprec-dir: %w", err)
		}
		sc := &snmpsim.Scenario{Devices: devs, Source: dir}
		return sc, sc.Validate()
	case n > 0:
		return snmpsim.GenerateScenario(n, m)
	case n < 0:
		return nil, fmt.Errorf("flag --devices: %d, want a positive count", n)
	}
	return snmpsim.DefaultScenario(), nil
}
