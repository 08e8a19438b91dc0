package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/certs"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
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

// SIGHUP reloads the tokens file: a WatchIssues stream of a token removed
// from it ends with Unauthenticated; the database and its key are created
// private.
func TestSIGHUPEndsStreamsOfRemovedTokens(t *testing.T) {
	dir := t.TempDir()
	const alice, bob = "viewer-alice-token-0123456789", "viewer-bob-token-0123456789a"
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("viewer alice "+alice+"\nviewer bob "+bob+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	db := filepath.Join(dir, "var", "controller.db")
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"--insecure", "--listen", addr, "--db", db, "--tokens", tokens, "--log-level", "error"})
	}()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	watch := func(tok string) <-chan error {
		ic := netaiopsv1.NewIssueServiceClient(conn)
		var w grpc.ServerStreamingClient[netaiopsv1.WatchIssuesResponse]
		for {
			w, err = ic.WatchIssues(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), &netaiopsv1.WatchIssuesRequest{})
			if err == nil {
				if _, err = w.Header(); err == nil {
					break
				}
			}
			select {
			case code := <-exit:
				t.Fatalf("controller exited %d", code)
			case <-ctx.Done():
				t.Fatalf("watch: %v", err)
			case <-time.After(50 * time.Millisecond): // not listening yet
			}
		}
		end := make(chan error, 1)
		go func() {
			for {
				if _, err := w.Recv(); err != nil {
					end <- err
					return
				}
			}
		}()
		return end
	}
	aliceEnd, bobEnd := watch(alice), watch(bob)

	if err := os.WriteFile(tokens, []byte("viewer bob "+bob+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aliceEnd:
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("alice's watch ended with %v, want Unauthenticated", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("alice's watch still open 5s after SIGHUP")
	}
	select {
	case err := <-bobEnd:
		t.Errorf("bob's watch ended: %v", err)
	default:
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(db): 0o700, db: 0o600, filepath.Join(filepath.Dir(db), "controller.key"): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want mode %#o", p, fi, err, want)
		}
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit code %d after SIGTERM", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("controller did not stop after SIGTERM")
	}
}
