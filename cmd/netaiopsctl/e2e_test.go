package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary builds netaiopsctl into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary: skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "netaiopsctl")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinaryEndToEnd runs the built netaiopsctl as operators and scripts
// do: address and plaintext from the config file under $HOME, exit codes
// of the process, and a watch ended with SIGINT.
func TestBinaryEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	addr, _ := startController(t, "", "", false)
	ag := startAgent(t, addr, "edge-1", "")
	seedIssues(t, ag)

	home := t.TempDir()
	cfg := filepath.Join(home, ".config", "netaiops", "netaiopsctl.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("address: "+addr+"\ninsecure: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	exe := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee):
			code = ee.ExitCode()
		case err != nil:
			t.Fatalf("run %v: %v", args, err)
		}
		t.Logf("$ netaiopsctl %s -> %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		return code, out.String(), errb.String()
	}

	if code, out, _ := exe("issues", "list"); code != exitOK || strings.Join(ids(out), " ") != "i-crit i-major-new i-major-old i-warn" {
		t.Errorf("issues list: exit %d\n%s", code, out)
	}
	if code, out, _ := exe("issues", "get", "i-crit", "-o", "yaml"); code != exitOK || !strings.Contains(out, "consecutive_failures") {
		t.Errorf("issues get -o yaml: exit %d\n%s", code, out)
	}
	if code, out, _ := exe("agents", "list", "-o", "json"); code != exitOK || !strings.Contains(out, `"id": "edge-1"`) {
		t.Errorf("agents list -o json: exit %d\n%s", code, out)
	}
	if code, _, _ := exe("issues", "get", "i-missing"); code != exitNotFound {
		t.Errorf("issues get i-missing: exit %d, want %d", code, exitNotFound)
	}
	if code, _, _ := exe("issues", "lst"); code != exitUsage {
		t.Errorf("issues lst: exit %d, want %d", code, exitUsage)
	}
	if code, _, _ := exe("--address", "127.0.0.1:1", "--timeout", "2s", "agents", "list"); code != exitUnavailable {
		t.Errorf("agents list at port 1: exit %d, want %d", code, exitUnavailable)
	}

	// issues watch prints changes as they come and ends with exit 0 on SIGINT.
	cmd := exec.Command(bin, "issues", "watch")
	cmd.Env = env
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }() // owned: read below or at cleanup
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	now := time.Now()
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; !strings.Contains(out.String(), "watched-issue"); n++ {
		if time.Now().After(deadline) {
			t.Fatalf("watch printed nothing: %q %q", out.String(), errb.String())
		}
		ag.event(opened, testIssue("i-watched", "interface_down", "core-sw1", sevMajor, now, "watched-issue"), now)
		time.Sleep(200 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		waited <- err // for the cleanup
		if err != nil {
			t.Errorf("watch after SIGINT: %v; stderr %q", err, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not end on SIGINT")
	}
	if line := strings.SplitN(out.String(), "\n", 2)[0]; !strings.Contains(line, "opened") || !strings.Contains(line, "i-watched") {
		t.Errorf("watch line %q", line)
	}
}
