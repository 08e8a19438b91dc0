package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/netaiops/netaiops/controller"
	"github.com/netaiops/netaiops/controller/certs"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// TestRunsWithTLS: the agent binary's config keys ca_file, cert_file and
// key_file (TLS being the default) connect it to a controller that demands
// TLS, verifies agent certificates and tokens.
func TestRunsWithTLS(t *testing.T) {
	dir := t.TempDir()
	pki := filepath.Join(dir, "pki")
	if _, err := certs.Generate(certs.Options{Dir: pki, Agents: []string{"edge-1"}}); err != nil {
		t.Fatal(err)
	}
	const viewer = "viewer-token-0123456789abcdef"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("viewer v "+viewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ccfg := controller.DefaultConfig()
	ccfg.Listen, ccfg.DBPath, ccfg.ShutdownTimeout = "127.0.0.1:0", filepath.Join(dir, "c.db"), 2*time.Second
	ccfg.TLSCert, ccfg.TLSKey = filepath.Join(pki, certs.ServerFile), filepath.Join(pki, certs.ServerKey)
	ccfg.ClientCA, ccfg.TokensFile = filepath.Join(pki, certs.CAFile), tokens
	c := controller.New(ccfg, slog.New(slog.DiscardHandler))
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	defer func() {
		ccancel()
		if err := <-cdone; err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	select {
	case <-c.Ready():
	case err := <-cdone:
		t.Fatal(err)
	}
	addr := c.Addr().String()

	cf, kf := certs.AgentFiles("edge-1")
	body := strings.NewReplacer(
		"  data_dir: /tmp/netaiops-test\n", "  data_dir: "+filepath.Join(dir, "agent")+"\n",
		"  insecure: true\n", "  ca_file: "+filepath.Join(pki, certs.CAFile)+"\n  cert_file: "+filepath.Join(pki, cf)+"\n  key_file: "+filepath.Join(pki, kf)+"\n",
		"%CONTROLLER%", addr,
	).Replace(validConfig)
	cfg := writeConfig(t, body)
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"--config", cfg}, &bytes.Buffer{}, &stderr) }()

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
	fc := netaiopsv1.NewFleetServiceClient(conn)
	rctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+viewer)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := fc.ListAgents(rctx, &netaiopsv1.ListAgentsRequest{})
		if err == nil && len(resp.GetAgents()) == 1 && resp.GetAgents()[0].GetConnected() && resp.GetAgents()[0].GetId() == "edge-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not connected over mTLS within 20s (%v); log:\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop within 5s of cancel")
	}
}
