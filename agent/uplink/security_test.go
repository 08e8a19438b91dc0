package uplink_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/controller"
	"github.com/netaiops/netaiops/controller/certs"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// TestTLSAgents runs the real controller with TLS, agent client
// certificates and tokens: an agent with its own certificate and one with
// a token file deliver their events; an agent using another agent's
// certificate is refused on every attempt and stores nothing.
func TestTLSAgents(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if _, err := certs.Generate(certs.Options{Dir: pki, Agents: []string{"edge-1"}}); err != nil {
		t.Fatal(err)
	}
	const agentTok, viewerTok = "edge-2-token-0123456789abcdef", "viewer-token-0123456789abcdef"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("agent edge-2 "+agentTok+"\nviewer v "+viewerTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "edge-2.token")
	if err := os.WriteFile(tokenFile, []byte(agentTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := controller.DefaultConfig()
	cfg.Listen, cfg.DBPath, cfg.HeartbeatInterval, cfg.ShutdownTimeout = "127.0.0.1:0", filepath.Join(dir, "c.db"), time.Second, 2*time.Second
	cfg.TLSCert, cfg.TLSKey = filepath.Join(pki, certs.ServerFile), filepath.Join(pki, certs.ServerKey)
	cfg.ClientCA, cfg.TokensFile = filepath.Join(pki, certs.CAFile), tokens
	ctx, cancel := context.WithCancel(context.Background())
	c := controller.New(cfg, testLogger(t).With("side", "controller"))
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	addr := c.Addr().String()
	cf, kf := certs.AgentFiles("edge-1")

	// Each agent queues 3 issue changes of its own (issue ids are unique).
	mk := func(id string, from int, mod func(*uplink.Config)) (*uplink.Uplink, func()) {
		cfg := fastConfig(addr)
		cfg.Insecure, cfg.AgentID, cfg.CAFile = false, id, filepath.Join(pki, certs.CAFile)
		mod(&cfg)
		ob := newOutbox(t)
		appendN(t, ob, from, 3)
		u, err := uplink.New(cfg, ob, testLogger(t).With("agent", id))
		if err != nil {
			t.Fatal(err)
		}
		return u, run(t, u)
	}
	withCert := func(c *uplink.Config) { c.CertFile, c.KeyFile = filepath.Join(pki, cf), filepath.Join(pki, kf) }
	byCert, stop1 := mk("edge-1", 1, withCert)
	byToken, stop2 := mk("edge-2", 11, func(c *uplink.Config) { c.TokenFile = tokenFile })
	impostor, stop3 := mk("edge-9", 21, withCert)
	defer stop1()
	defer stop2()
	defer stop3()

	waitFor(t, 10*time.Second, "edge-1 (mTLS) and edge-2 (token) to deliver", func() bool {
		return byCert.Stats().Acked == 3 && byToken.Stats().Acked == 3
	})
	waitFor(t, 10*time.Second, "the impostor to be refused twice", func() bool { return impostor.Stats().Attempts >= 2 })
	if s := impostor.Stats(); s.Sessions != 0 || s.Acked != 0 {
		t.Fatalf("impostor with edge-1's certificate got a session: %+v", s)
	}

	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(pki, certs.CAFile))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA: %v", err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := netaiopsv1.NewFleetServiceClient(conn).ListAgents(
		metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+viewerTok), &netaiopsv1.ListAgentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range resp.GetAgents() {
		ids = append(ids, a.GetId())
	}
	if len(ids) != 2 || ids[0] != "edge-1" || ids[1] != "edge-2" {
		t.Fatalf("agents %v, want edge-1 and edge-2 only", ids)
	}
}
