// Command netaiops-controller runs the netaiops controller: it stores the
// issue events that agents stream over gRPC and serves them to operators.
// main only wires flags to the controller's config and logger.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/netaiops/netaiops/controller"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg := controller.DefaultConfig()
	fs := flag.NewFlagSet("netaiops-controller", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "gRPC listen address (host:port); plaintext, so loopback unless --insecure-allow-remote")
	fs.BoolVar(&cfg.InsecureAllowRemote, "insecure-allow-remote", false, "allow a non-loopback --listen although the server has no TLS")
	fs.StringVar(&cfg.DBPath, "db", cfg.DBPath, "SQLite database file (its directory is created)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "heartbeat interval of agent streams, both ways")
	fs.IntVar(&cfg.MaxBatchEvents, "max-batch-events", cfg.MaxBatchEvents, "most events an agent may send in one batch")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "netaiops-controller: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "netaiops-controller: --log-level: %q is not one of debug, info, warn, error\n", *level)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "netaiops-controller: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := controller.New(cfg, logger).Run(ctx); err != nil {
		logger.Error("controller failed", "err", err)
		return 1
	}
	return 0
}
