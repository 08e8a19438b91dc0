package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netaiops/netaiops/controller/certs"
)

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if code := run([]string{"certs", "--out", dir, "--agents", "edge-1, edge-2", "--hosts", "ctl.example.net"}); code != 0 {
		t.Fatalf("certs exited %d", code)
	}
	cf, kf := certs.AgentFiles("edge-2")
	for _, f := range []string{certs.CAFile, certs.CAKeyFile, certs.ServerFile, certs.ServerKey, cf, kf} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s: %v", f, err)
		}
	}
	if code := run([]string{"certs"}); code != 2 {
		t.Errorf("certs without --out exited %d, want 2", code)
	}
}

// Flags that cannot work exit 2 before anything listens.
func TestRefusedFlags(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	for _, args := range [][]string{
		{"--db", db}, // TLS is the default: no certificate
		{"--db", db, "--insecure", "--listen", "0.0.0.0:7443"},    // plaintext off loopback
		{"--db", db, "--tls-cert", "s.crt", "--tls-key", "s.key"}, // no --tokens or --client-ca
	} {
		if code := run(args); code != 2 {
			t.Errorf("run %q exited %d, want 2", args, code)
		}
	}
}
