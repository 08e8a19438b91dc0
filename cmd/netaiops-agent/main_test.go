package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/netaiops/netaiops/controller"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const validConfig = `agent:
  id: edge-1
  data_dir: /tmp/netaiops-test
controller:
  address: %CONTROLLER%
  insecure: true
snmp:
  interval: 1s
  timeout: 200ms
  retries: 0
targets:
  - name: sw1
    address: 127.0.0.1:9
    community: s3cret-community
`

func runMain(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runMain(t, context.Background(), "--version")
	if code != 0 || out != "netaiops-agent dev\n" {
		t.Fatalf("--version: code %d output %q", code, out)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "netaiops-agent: --config is required"},
		{[]string{"--config", "x.yaml", "--log-level", "loud"}, `--log-level: bad level "loud"`},
		{[]string{"--config", "x.yaml", "extra"}, `unexpected argument "extra"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined"},
	} {
		code, _, errOut := runMain(t, context.Background(), tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: code %d stderr %q, want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	good := writeConfig(t, strings.ReplaceAll(validConfig, "%CONTROLLER%", "127.0.0.1:7443"))
	code, out, errOut := runMain(t, context.Background(), "--config", good, "--check-config")
	if code != 0 {
		t.Fatalf("valid config: code %d stderr %q", code, errOut)
	}
	if strings.Contains(out, "s3cret-community") || !strings.Contains(out, "sw1") || !strings.Contains(out, "edge-1") {
		t.Fatalf("--check-config output must show the config without the community:\n%s", out)
	}

	bad := writeConfig(t, "agent:\n  id: edge-1\ncontroller:\n  address: 127.0.0.1:7443\n  insecure: true\nsnmp:\n  interval: 0s\n")
	code, _, errOut = runMain(t, context.Background(), "--config", bad, "--check-config")
	if code != 1 || !strings.Contains(errOut, bad) || !strings.Contains(errOut, "snmp.interval") {
		t.Fatalf("invalid config with --check-config: code %d stderr %q, want 1 and a message naming file and key", code, errOut)
	}
	// Without --check-config an invalid config exits 2 with the same message.
	code, _, errOut2 := runMain(t, context.Background(), "--config", bad)
	if code != 2 || errOut2 != errOut {
		t.Fatalf("invalid config: code %d stderr %q, want 2 and %q", code, errOut2, errOut)
	}
	// A profile no file defines: config cannot know (it is a leaf), the
	// check does, naming the file, the target and the profile.
	unknown := writeConfig(t, strings.ReplaceAll(validConfig, "%CONTROLLER%", "127.0.0.1:7443")+"    profiles: [system, no_such_profile]\n")
	code, _, errOut = runMain(t, context.Background(), "--config", unknown, "--check-config")
	if code != 1 || !strings.Contains(errOut, unknown+": target sw1: plan [system no_such_profile]: unknown profile \"no_such_profile\" (known: ") {
		t.Fatalf("unknown profile with --check-config: code %d stderr %q, want 1 and a message naming file, target and profile", code, errOut)
	}
	code, _, errOut = runMain(t, context.Background(), "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 2 || !strings.Contains(errOut, "missing.yaml") {
		t.Fatalf("missing config: code %d stderr %q", code, errOut)
	}
}

// TestRunsWithoutController: the agent starts, polls and keeps running when
// nothing listens at the controller's address, connects to the real
// controller once it appears, and stops cleanly when its context ends.
func TestRunsWithoutController(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	// The agent's outbox lives in data_dir and is locked while it runs: a
	// directory of its own, so that concurrent test runs do not collide.
	body := strings.ReplaceAll(validConfig, "%CONTROLLER%", addr)
	cfg := writeConfig(t, strings.ReplaceAll(body, "/tmp/netaiops-test", t.TempDir()))
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--config", cfg, "--log-level", "debug", "--metrics-listen", "127.0.0.1:0"}, &bytes.Buffer{}, &stderr)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "poll failed") || !strings.Contains(stderr.String(), "controller stream ended") {
		if time.Now().After(deadline) {
			t.Fatalf("no poll and no connect attempt within 10s; log:\n%s", stderr.String())
		}
		select {
		case code := <-done:
			t.Fatalf("agent exited with %d while the controller is away; log:\n%s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}

	ccfg := controller.DefaultConfig()
	ccfg.Listen, ccfg.DBPath, ccfg.ShutdownTimeout = addr, filepath.Join(t.TempDir(), "c.db"), 2*time.Second
	ccfg.Insecure = true
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
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fc := netaiopsv1.NewFleetServiceClient(conn)
	deadline = time.Now().Add(20 * time.Second)
	for {
		resp, err := fc.ListAgents(context.Background(), &netaiopsv1.ListAgentsRequest{})
		if err == nil && len(resp.GetAgents()) == 1 && resp.GetAgents()[0].GetConnected() {
			if a := resp.GetAgents()[0]; a.GetId() != "edge-1" || a.GetTargetCount() != 1 {
				t.Fatalf("agent record %v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not connected within 20s of the controller appearing (%v); log:\n%s", err, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /metrics on the port the log names: the poller's, the agent's own
	// and the Go runtime's metrics.
	m := regexp.MustCompile(`msg="serving metrics" .*?addr=(\S+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no \"serving metrics\" in the log:\n%s", stderr.String())
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	for _, want := range []string{`netaiops_snmp_polls_total{result="`, `target="sw1"`, "netaiops_snmp_poll_duration_seconds_count", "netaiops_uplink_connected 1", "go_goroutines"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, page)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after cancel, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop within 5s of cancel")
	}
	if strings.Contains(stderr.String(), "s3cret-community") {
		t.Fatal("log shows the community")
	}
}
