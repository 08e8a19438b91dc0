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
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netaiops/netaiops/controller"
	"github.com/netaiops/netaiops/controller/certs"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "certs" {
		return runCerts(args[1:])
	}
	cfg := controller.DefaultConfig()
	fs := flag.NewFlagSet("netaiops-controller", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "gRPC listen address (host:port)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "server certificate (PEM `file`); TLS is the default")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "server private key (PEM `file`)")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "CA bundle (PEM `file`) that signs agent client certificates (mTLS)")
	fs.StringVar(&cfg.CRLFile, "crl-file", "", "X.509 CRL `file` (PEM or DER) signed by a --client-ca CA: revoked agent certificates are refused; reloaded on SIGHUP")
	fs.StringVar(&cfg.TokensFile, "tokens", "", "bearer tokens `file`: lines of \"ROLE NAME TOKEN\", ROLE agent, viewer, operator or admin")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "serve plaintext gRPC (no TLS) on a loopback --listen; authentication only with --tokens")
	fs.BoolVar(&cfg.InsecureAllowRemote, "insecure-allow-remote", false, "like --insecure, and allow a non-loopback --listen")
	fs.DurationVar(&cfg.MaxConnectionAge, "max-connection-age", cfg.MaxConnectionAge, "end connections after this long (±10%) so agents spread over replicas")
	fs.StringVar(&cfg.DBPath, "db", cfg.DBPath, "SQLite database file (its directory is created, mode 0700)")
	fs.StringVar(&cfg.SecretKeyFile, "secret-key-file", "", "`file` of the 32-byte key that encrypts configurations at rest and keys their hashes; created (0600) on first start (default: controller.key next to --db)")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", cfg.HeartbeatInterval, "heartbeat interval of agent streams, both ways")
	fs.IntVar(&cfg.MaxBatchEvents, "max-batch-events", cfg.MaxBatchEvents, "most events an agent may send in one batch")
	fs.IntVar(&cfg.MaxWatchers, "max-watchers", cfg.MaxWatchers, "most WatchIssues streams open at once")
	fs.IntVar(&cfg.MaxWatchersPerCaller, "max-watchers-per-caller", cfg.MaxWatchersPerCaller, "most WatchIssues streams of one caller (token or certificate name; peer address without authentication)")
	fs.DurationVar(&cfg.WatchSendTimeout, "watch-send-timeout", cfg.WatchSendTimeout, "end a WatchIssues stream whose client reads nothing for this long (it can resume after its last position)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cpuProfile := fs.String("cpu-profile", "", "write a CPU profile (go tool pprof) of the whole run to `file` (diagnostics)")
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

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "netaiops-controller: --cpu-profile: %v\n", err)
			return 2
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctl := controller.New(cfg, logger)
	// SIGHUP reloads the tokens file and the CRL: streams of other
	// credentials go on; those of removed tokens or revoked certificates end.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := ctl.Reload(); err != nil {
					logger.Error("SIGHUP", "err", err)
				}
			}
		}
	})
	if err := ctl.Run(ctx); err != nil {
		stop()
		logger.Error("controller failed", "err", err)
		return 1
	}
	return 0
}

// runCerts implements "netaiops-controller certs": a lab CA, a server
// certificate and agent client certificates.
func runCerts(args []string) int {
	fs := flag.NewFlagSet("netaiops-controller certs", flag.ContinueOnError)
	out := fs.String("out", "", "output `directory` (created; an existing ca.crt/ca.key there is reused)")
	agents := fs.String("agents", "", "comma-separated agent `ids` that get a client certificate")
	hosts := fs.String("hosts", "", "comma-separated extra DNS names or IP addresses of the server certificate (localhost, 127.0.0.1 and ::1 are always in)")
	validity := fs.Duration("validity", 365*24*time.Hour, "validity of the server and agent certificates")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "netaiops-controller certs: want --out DIR [--agents a,b] [--hosts h1,h2]")
		return 2
	}
	res, err := certs.Generate(certs.Options{Dir: *out, Agents: splitList(*agents), Hosts: splitList(*hosts), Validity: *validity})
	if err != nil {
		fmt.Fprintf(os.Stderr, "netaiops-controller certs: %v\n", err)
		return 1
	}
	if res.ReusedCA {
		fmt.Printf("reused the CA in %s\n", *out)
	}
	for _, f := range res.Files {
		fmt.Println("wrote", f)
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
