// Command netaiops-agent is the edge agent: it polls the devices its config
// names over SNMP, detects issues and streams them to the controller. main
// only wires: flags, config, logger, agent.New, Run until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/netaiops/netaiops/agent"
	"github.com/netaiops/netaiops/agent/config"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK        = 0
	exitFailure   = 1 // the agent failed while running; --check-config found problems
	exitBadConfig = 2 // bad flags or an invalid config file
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("netaiops-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the agent's YAML config `file` (required)")
	checkConfig := fs.Bool("check-config", false, "validate the config, print it with secrets redacted and exit: 0 valid, 1 invalid")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	version := fs.Bool("version", false, "print the version and exit")
	metricsListen := fs.String("metrics-listen", "127.0.0.1:9465", "serve Prometheus metrics at http://`addr`/metrics; \"\" or \"off\" disables")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitBadConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "netaiops-agent: unexpected argument %q\n", fs.Arg(0))
		return exitBadConfig
	}
	if *version {
		fmt.Fprintf(stdout, "netaiops-agent %s\n", agent.Version)
		return exitOK
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "netaiops-agent: --log-level: bad level %q (allowed: debug, info, warn, error)\n", *logLevel)
		return exitBadConfig
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "netaiops-agent: --config is required")
		return exitBadConfig
	}

	cfg, err := config.Load(*configPath)
	if err == nil {
		if err = agent.CheckProfiles(cfg); err != nil {
			err = fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	if *checkConfig {
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		fmt.Fprint(stdout, cfg.Redacted())
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitBadConfig
	}

	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("agent_id", cfg.Agent.ID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := agent.New(cfg, logger, agent.WithRegistry(reg), agent.WithMetricsListen(*metricsListen))
	if err != nil {
		logger.Error("cannot start agent", "err", err)
		return exitFailure
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("agent failed", "err", err)
		return exitFailure
	}
	return exitOK
}
