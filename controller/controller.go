// Package controller composes the netaiops controller: the SQLite store, the
// watch hub and the gRPC services (ControlService, IssueService,
// FleetService, health and reflection) behind one listener. New builds it
// from a Config; Run serves until its context ends, then shuts down
// gracefully.
package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/server"
	"github.com/netaiops/netaiops/controller/store"
	"github.com/netaiops/netaiops/controller/watch"
)

// Config is everything the controller needs; DefaultConfig fills it.
type Config struct {
	// Listen is the gRPC listen address, host:port.
	Listen string
	// TLSCert and TLSKey are the server's certificate and key (PEM files);
	// required unless Insecure.
	TLSCert, TLSKey string
	// ClientCA is a PEM bundle of the CAs that sign agent client
	// certificates; empty: agents authenticate with tokens only.
	ClientCA string
	// CRLFile is an X.509 certificate revocation list (PEM or DER) signed
	// by a CA of ClientCA: agent certificates listed in it are refused.
	// It is read at start and at every Reload. Needs ClientCA.
	CRLFile string
	// TokensFile holds the bearer tokens of agents and operators (see
	// auth.LoadTokens). With TLS, authentication is always on; in plaintext
	// mode it is on only when a tokens file is given.
	TokensFile string
	// Insecure serves plaintext gRPC instead of TLS, on loopback only
	// unless InsecureAllowRemote.
	Insecure bool
	// InsecureAllowRemote allows a non-loopback Listen although the server
	// speaks plaintext; it implies Insecure.
	InsecureAllowRemote bool
	// MaxConnectionAge ends a connection (GOAWAY) after this long, plus
	// MaxConnectionAgeGrace for open streams, so that agents reconnect and
	// spread over controller replicas. gRPC adds ±10% jitter.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// DBPath is the SQLite file; its directory is created (0700).
	DBPath string
	// SecretKeyFile holds the 32-byte key that encrypts configurations in
	// the database and keys their hashes; created (0600) on first start.
	// Empty: controller.key next to DBPath.
	SecretKeyFile string
	// HeartbeatInterval is how often each side of an agent stream sends a
	// heartbeat.
	HeartbeatInterval time.Duration
	// MaxBatchEvents is the most events an agent may send in one batch.
	MaxBatchEvents int
	// WatchBuffer is how many of the newest changes the watch hub keeps in
	// memory, shared by every WatchIssues stream; a stream further behind
	// catches up from the database.
	WatchBuffer int
	// WatchSendTimeout ends a WatchIssues stream whose client reads nothing
	// for this long; MaxWatchers and MaxWatchersPerCaller cap the streams
	// in total and per caller. Zero takes the server's defaults.
	WatchSendTimeout     time.Duration
	MaxWatchers          int
	MaxWatchersPerCaller int
	// MaxRecvMsgSize bounds one gRPC message each way, in bytes.
	MaxRecvMsgSize int
	// MaxBatchBytes bounds one encoded event batch; told to agents, at
	// most half of MaxRecvMsgSize.
	MaxBatchBytes int
	// ShutdownTimeout bounds the graceful stop; then connections are cut.
	ShutdownTimeout time.Duration
}

// DefaultConfig returns the defaults of the netaiops-controller flags.
func DefaultConfig() Config {
	return Config{
		Listen:            "127.0.0.1:7443",
		DBPath:            "./var/controller.db",
		HeartbeatInterval: server.DefaultHeartbeatInterval,
		MaxBatchEvents:    server.DefaultMaxBatchEvents,
		WatchBuffer:       watch.DefaultBuffer,

		WatchSendTimeout:     server.DefaultWatchSendTimeout,
		MaxWatchers:          server.DefaultMaxWatchers,
		MaxWatchersPerCaller: server.DefaultMaxWatchersPerCaller,
		MaxRecvMsgSize:       server.DefaultMaxMsgSize,
		MaxBatchBytes:        server.DefaultMaxBatchBytes,
		ShutdownTimeout:      10 * time.Second,

		MaxConnectionAge:      30 * time.Minute,
		MaxConnectionAgeGrace: time.Minute,
	}
}

// plaintext reports whether the listener serves without TLS.
func (c Config) plaintext() bool { return c.Insecure || c.InsecureAllowRemote }

// authOn reports whether callers must authenticate.
func (c Config) authOn() bool { return !c.plaintext() || c.TokensFile != "" }

// Limits checked by Validate.
const (
	MinHeartbeatInterval = time.Second
	MaxMaxBatchEvents    = 10000
)

// Validate checks the config; messages name the flag.
func (c Config) Validate() error {
	var errs []error
	if err := checkListen(c.Listen, !c.plaintext() || c.InsecureAllowRemote); err != nil {
		errs = append(errs, err)
	}
	if !c.plaintext() {
		if c.TLSCert == "" || c.TLSKey == "" {
			errs = append(errs, errors.New("--tls-cert, --tls-key: required (TLS is the default); "+
				"create a lab CA with 'netaiops-controller certs', or pass --insecure for plaintext on loopback"))
		}
		if c.TokensFile == "" && c.ClientCA == "" {
			errs = append(errs, errors.New("--tokens, --client-ca: neither given, so no agent or operator could authenticate; pass at least one"))
		}
	}
	if c.CRLFile != "" && (c.ClientCA == "" || c.plaintext()) {
		errs = append(errs, errors.New("--crl-file: needs --client-ca and TLS (it revokes agent client certificates)"))
	}
	if c.MaxConnectionAge < time.Second {
		errs = append(errs, fmt.Errorf("--max-connection-age: %s, want at least 1s", c.MaxConnectionAge))
	}
	if c.MaxBatchBytes < 1<<10 || c.MaxBatchBytes > c.MaxRecvMsgSize/2 {
		errs = append(errs, fmt.Errorf("max batch bytes: %d, want 1 KiB to half the max message size (%d)", c.MaxBatchBytes, c.MaxRecvMsgSize/2))
	}
	if c.MaxConnectionAgeGrace <= 0 {
		errs = append(errs, fmt.Errorf("max connection age grace: %s, want more than 0", c.MaxConnectionAgeGrace))
	}
	if c.DBPath == "" {
		errs = append(errs, errors.New("--db: empty; want a file path such as ./var/controller.db"))
	}
	if c.HeartbeatInterval < MinHeartbeatInterval {
		errs = append(errs, fmt.Errorf("--heartbeat-interval: %s is below the minimum %s", c.HeartbeatInterval, MinHeartbeatInterval))
	}
	if c.MaxBatchEvents < 1 || c.MaxBatchEvents > MaxMaxBatchEvents {
		errs = append(errs, fmt.Errorf("--max-batch-events: %d is outside 1..%d", c.MaxBatchEvents, MaxMaxBatchEvents))
	}
	if c.MaxWatchers < 1 || c.MaxWatchersPerCaller < 1 {
		errs = append(errs, fmt.Errorf("--max-watchers %d, --max-watchers-per-caller %d: want at least 1", c.MaxWatchers, c.MaxWatchersPerCaller))
	}
	if c.WatchSendTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--watch-send-timeout: %s, want at least 100ms", c.WatchSendTimeout))
	}
	if c.WatchBuffer < 1 {
		errs = append(errs, fmt.Errorf("watch buffer: %d, want at least 1", c.WatchBuffer))
	}
	if c.MaxRecvMsgSize < 1<<20 {
		errs = append(errs, fmt.Errorf("max receive message size: %d bytes, want at least 1 MiB", c.MaxRecvMsgSize))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown timeout: %s, want more than 0", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// checkListen refuses a plaintext listener reachable from other hosts
// unless explicitly allowed.
func checkListen(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen: %q is not host:port: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen: %q is not a loopback address and --insecure makes the gRPC server plaintext; "+
		"listen on 127.0.0.1 or [::1], use TLS (--tls-cert, --tls-key), or pass --insecure-allow-remote to expose plaintext anyway", addr)
}

// KeepaliveMinTime is the shortest interval between client pings the
// controller tolerates (a client pinging more often gets GOAWAY).
const KeepaliveMinTime = 20 * time.Second

// security returns the server options for transport security and
// authentication: TLS with the server certificate (and client certificate
// verification when a client CA is given) unless plaintext, and the auth
// interceptors with the tokens file.
func (c *Controller) security() ([]grpc.ServerOption, error) {
	cfg := c.cfg
	var tokens *auth.Tokens
	if cfg.TokensFile != "" {
		t, err := auth.LoadTokens(cfg.TokensFile)
		if err != nil {
			return nil, err
		}
		tokens = t
	}
	if !cfg.authOn() {
		c.logger.Warn("authentication is off: plaintext without --tokens lets anyone on loopback call everything")
	}
	a := auth.New(tokens, server.Policy(), server.ProtectedPrefixes, !cfg.authOn())
	c.mu.Lock()
	c.auth = a
	c.mu.Unlock()
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(a.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(a.StreamInterceptor()),
	}
	if cfg.plaintext() {
		return opts, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s, --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("load --client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("load --client-ca %s: no PEM certificate in it", cfg.ClientCA)
		}
		cas, err := parseCerts(pem)
		if err != nil {
			return nil, fmt.Errorf("load --client-ca %s: %w", cfg.ClientCA, err)
		}
		c.mu.Lock()
		c.clientCAs = cas
		c.mu.Unlock()
		if cfg.CRLFile != "" {
			if err := c.reloadCRL(); err != nil {
				return nil, err
			}
		}
		// Operators and token-authenticated agents send no certificate;
		// one that is sent must verify, and not be revoked.
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 && a.Revoked(cs.PeerCertificates[0]) {
				return fmt.Errorf("client certificate serial %s is revoked by %s", cs.PeerCertificates[0].SerialNumber, cfg.CRLFile)
			}
			return nil
		}
	}
	return append(opts, grpc.Creds(credentials.NewTLS(tc))), nil
}

// parseCerts returns the certificates of a PEM bundle.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
}

// reloadCRL reads --crl-file and puts it in force; open streams of
// certificates it revokes end.
func (c *Controller) reloadCRL() error {
	c.mu.Lock()
	a, cas := c.auth, c.clientCAs
	c.mu.Unlock()
	crl, err := auth.LoadCRL(c.cfg.CRLFile, cas)
	if err != nil {
		return fmt.Errorf("--crl-file: %w", err)
	}
	ended := a.SetCRL(crl)
	c.logger.Info("CRL loaded", "file", c.cfg.CRLFile, "revoked", crl.Len(), "next_update", crl.NextUpdate, "streams_ended", ended)
	if !crl.NextUpdate.IsZero() && time.Now().After(crl.NextUpdate) {
		c.logger.Warn("CRL is past its next update: replace it", "file", c.cfg.CRLFile, "next_update", crl.NextUpdate)
	}
	return nil
}

// Controller is the running controller.
type Controller struct {
	cfg    Config
	logger *slog.Logger

	ready chan struct{}
	mu    sync.Mutex
	addr  net.Addr
	srv   *server.Server
	auth  *auth.Authenticator
	// clientCAs are the certificates of --client-ca: the CRL's signers.
	clientCAs []*x509.Certificate
}

// Reload reads the tokens file and the CRL file again, each when in use,
// and puts them in force (netaiops-controller does it on SIGHUP): open
// streams whose token was removed, or whose client certificate is now
// revoked, end with Unauthenticated. A file that fails to load keeps the
// old one in force.
func (c *Controller) Reload() error {
	c.mu.Lock()
	a := c.auth
	c.mu.Unlock()
	if a == nil || (c.cfg.TokensFile == "" && c.cfg.CRLFile == "") {
		return errors.New("reload: no --tokens or --crl-file in use")
	}
	var errs []error
	if c.cfg.TokensFile != "" {
		errs = append(errs, c.ReloadTokens())
	}
	if c.cfg.CRLFile != "" {
		if err := c.reloadCRL(); err != nil {
			errs = append(errs, fmt.Errorf("reload: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ReloadTokens reads the tokens file again and makes its tokens the ones
// in force; open streams of removed tokens end. On error the old tokens
// stay.
func (c *Controller) ReloadTokens() error {
	c.mu.Lock()
	a := c.auth
	c.mu.Unlock()
	if a == nil || c.cfg.TokensFile == "" {
		return errors.New("reload tokens: no --tokens file in use")
	}
	t, err := auth.LoadTokens(c.cfg.TokensFile)
	if err != nil {
		return fmt.Errorf("reload tokens: %w", err)
	}
	ended := a.SetTokens(t)
	c.logger.Info("tokens reloaded", "file", c.cfg.TokensFile, "tokens", t.Len(), "streams_ended", ended)
	return nil
}

// New returns a controller; nothing happens until Run.
func New(cfg Config, logger *slog.Logger) *Controller {
	return &Controller{cfg: cfg, logger: logger, ready: make(chan struct{})}
}

// Ready is closed once the controller listens; Addr is valid then.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Addr is the address the controller listens on, nil before Ready.
func (c *Controller) Addr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addr
}

// Stats returns the services' counters (zero before Ready).
func (c *Controller) Stats() server.Stats {
	c.mu.Lock()
	srv := c.srv
	c.mu.Unlock()
	if srv == nil {
		return server.Stats{}
	}
	return srv.Stats()
}

// Run opens the store, serves gRPC until ctx ends, then reports NOT_SERVING,
// ends open streams, stops gracefully within ShutdownTimeout (then hard) and
// closes the store. It returns nil after a shutdown caused by ctx.
func (c *Controller) Run(ctx context.Context) (err error) {
	cfg := c.cfg
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("controller config: %w", err)
	}
	var storeOpts []store.Option
	if cfg.SecretKeyFile != "" {
		storeOpts = append(storeOpts, store.WithKeyFile(cfg.SecretKeyFile))
	}
	st, err := store.Open(ctx, cfg.DBPath, c.logger.With("component", "store"), storeOpts...)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("controller: %w", cerr)
		}
	}()
	if err := st.DisconnectAll(ctx); err != nil {
		return fmt.Errorf("controller: %w", err)
	}

	security, err := c.security()
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}

	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("controller: listen on %s: %w", cfg.Listen, err)
	}

	hub := watch.New(cfg.WatchBuffer)
	srv := server.New(server.Config{
		HeartbeatInterval: cfg.HeartbeatInterval,
		MaxBatchEvents:    cfg.MaxBatchEvents,
		MaxBatchBytes:     cfg.MaxBatchBytes,

		WatchSendTimeout:     cfg.WatchSendTimeout,
		MaxWatchers:          cfg.MaxWatchers,
		MaxWatchersPerCaller: cfg.MaxWatchersPerCaller,
	}, st, hub, c.logger.With("component", "grpc"))

	g := grpc.NewServer(append(security,
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(cfg.MaxRecvMsgSize),
		// Clients may ping every KeepaliveMinTime; the agent's uplink pings
		// every 30s (uplink.KeepaliveTime), never more often.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:                  30 * time.Second,
			Timeout:               10 * time.Second,
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace,
		}),
	)...)
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range server.ServiceNames {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}

	serveErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Go(func() { serveErr <- g.Serve(lis) })

	c.mu.Lock()
	c.addr, c.srv = lis.Addr(), srv
	c.mu.Unlock()
	close(c.ready)
	c.logger.Info("controller listening", "addr", lis.Addr().String(), "tls", !cfg.plaintext(), "auth", cfg.authOn(), "db", cfg.DBPath,
		"heartbeat_interval", cfg.HeartbeatInterval, "max_batch_events", cfg.MaxBatchEvents)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("controller: serve on %s: %w", lis.Addr(), err)
	}

	c.logger.Info("controller shutting down")
	hs.Shutdown() // NOT_SERVING first, so balancers stop sending
	srv.Shutdown()
	stopped := make(chan struct{})
	wg.Go(func() {
		g.GracefulStop()
		close(stopped)
	})
	timer := time.NewTimer(cfg.ShutdownTimeout)
	select {
	case <-stopped:
		timer.Stop()
	case <-timer.C:
		c.logger.Warn("graceful stop timed out: closing connections", "timeout", cfg.ShutdownTimeout)
		g.Stop()
	}
	wg.Wait()
	srv.Wait()
	s := srv.Stats()
	c.logger.Info("controller stopped", "batches", s.Batches, "replaced_streams", s.ReplacedStreams,
		"dropped_heartbeats", s.DroppedHeartbeats, "watch_overflows", s.WatchOverflows,
		"group_commits", s.GroupCommits, "max_group_batches", s.MaxGroupBatches, "ingest_queue_full", s.IngestQueueFull)
	return runErr
}
