package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthExitCodes runs against a controller with tokens: the exit code
// and the message say what to do.
func TestAuthExitCodes(t *testing.T) {
	addr, _ := startController(t, "", "", true)
	ag := startAgent(t, addr, "edge-1", agentToken)
	ag.event(opened, testIssue("i-1", "interface_down", "core-sw1", sevMajor, time.Now().Add(-12*time.Minute), "ge-0/0/1 down"), time.Now())

	code, _, errOut := ctl(t, map[string]string{"NETAIOPS_ADDRESS": addr}, "--insecure", "issues", "list")
	if code != exitAuth || !strings.Contains(errOut, "Unauthenticated: no token; set NETAIOPS_TOKEN or --token") {
		t.Errorf("no token: exit %d %q", code, errOut)
	}
	code, _, errOut = ctl(t, map[string]string{"NETAIOPS_ADDRESS": addr, "NETAIOPS_TOKEN": "not-a-known-token-at-all"}, "--insecure", "issues", "list")
	if code != exitAuth || !strings.Contains(errOut, "refused the token") {
		t.Errorf("bad token: exit %d %q", code, errOut)
	}
	viewer := map[string]string{"NETAIOPS_ADDRESS": addr, "NETAIOPS_TOKEN": viewerToken}
	code, out, _ := ctl(t, viewer, "--insecure", "issues", "list")
	if code != exitOK || !strings.Contains(out, "i-1") || !strings.Contains(out, "12m ago") {
		t.Errorf("viewer list: exit %d %q", code, out)
	}
	// A viewer reads the timeline (ListIssueEvents) too.
	code, out, _ = ctl(t, viewer, "--insecure", "issues", "get", "i-1")
	if code != exitOK || !strings.Contains(out, "Timeline:") || !strings.Contains(out, "opened") {
		t.Errorf("viewer get: exit %d %q", code, out)
	}
	code, _, errOut = ctl(t, map[string]string{"NETAIOPS_ADDRESS": addr}, "--insecure", "issues", "watch")
	if code != exitAuth || !strings.Contains(errOut, "no token") {
		t.Errorf("watch without a token: exit %d %q", code, errOut)
	}
	code, _, errOut = ctl(t, viewer, "--insecure", "issues", "ack", "i-1")
	if code != exitAuth || !strings.Contains(errOut, "PermissionDenied") || !strings.Contains(errOut, "role") {
		t.Errorf("viewer ack: exit %d %q", code, errOut)
	}
	// The flag wins over the environment; an operator acknowledges under
	// the token's name.
	code, out, _ = ctl(t, viewer, "--insecure", "--token", operatorToken, "issues", "ack", "i-1", "--by", "someone-else")
	if code != exitOK || !strings.Contains(out, "acknowledged by olga") {
		t.Errorf("operator ack: exit %d %q", code, out)
	}
}

// TestUnavailable: nothing listening, and TLS spoken to a plaintext
// controller, end with exit 5 and a hint.
func TestUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	code, _, errOut := ctl(t, nil, "--insecure", "--address", dead, "--timeout", "3s", "agents", "list")
	if code != exitUnavailable || !strings.Contains(errOut, "Unavailable") || !strings.Contains(errOut, dead) {
		t.Errorf("nothing listening: exit %d %q", code, errOut)
	}
	// A watch that never starts is an error, not retried forever.
	code, _, errOut = ctl(t, nil, "--insecure", "--address", dead, "issues", "watch")
	if code != exitUnavailable || !strings.Contains(errOut, "watch issues: Unavailable") {
		t.Errorf("watch with nothing listening: exit %d %q", code, errOut)
	}
	addr, _ := startController(t, "", "", false)
	code, _, errOut = ctl(t, nil, "--address", addr, "--timeout", "3s", "agents", "list")
	if code != exitUnavailable || !strings.Contains(errOut, "add --insecure") {
		t.Errorf("TLS to plaintext: exit %d %q", code, errOut)
	}
	code, _, errOut = ctl(t, nil, "--insecure", "--address", "192.0.2.1:7443", "agents", "list")
	if code != exitUsage || !strings.Contains(errOut, "not a loopback address") {
		t.Errorf("--insecure to a remote address: exit %d %q", code, errOut)
	}
}

// TestClientConfig: flags win over the environment, the environment over
// the file; the file is strict and its errors name file:line.
func TestClientConfig(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".config", "netaiops", "netaiopsctl.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(doc string) {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	resolved := func(env map[string]string, args ...string) (globals, error) {
		a := &app{getenv: func(k string) string { return env[k] }, stdout: os.Stderr, stderr: os.Stderr}
		a.g.setFlags = map[string]bool{}
		if _, err := a.parse(a.newFlagSet("t"), args, true); err != nil {
			return a.g, err
		}
		return a.g, a.resolve()
	}
	write("address: file.example:7443\ntoken: file-token\ninsecure: true\nca: /etc/ca.pem\n")
	if _, err := resolved(map[string]string{"HOME": home}); err == nil || !strings.Contains(err.Error(), "--insecure and --ca") {
		t.Errorf("insecure and ca from the file: err = %v", err)
	}
	write("address: file.example:7443\ntoken: file-token\n")
	g, err := resolved(map[string]string{"HOME": home})
	if err != nil || g.address != "file.example:7443" || g.token != "file-token" {
		t.Errorf("file only: %+v, %v", g, err)
	}
	env := map[string]string{"HOME": home, "NETAIOPS_ADDRESS": "env.example:7443", "NETAIOPS_TOKEN": "env-token"}
	g, err = resolved(env)
	if err != nil || g.address != "env.example:7443" || g.token != "env-token" {
		t.Errorf("env over file: %+v, %v", g, err)
	}
	g, err = resolved(env, "--address", "flag.example:7443", "--token", "flag-token")
	if err != nil || g.address != "flag.example:7443" || g.token != "flag-token" {
		t.Errorf("flags over env: %+v, %v", g, err)
	}
	g, err = resolved(map[string]string{})
	if err != nil || g.address != defaultAddress || g.token != "" {
		t.Errorf("no file, no env: %+v, %v", g, err)
	}

	for _, c := range []struct{ doc, want string }{
		{"address: a:1\n\nserver: x\n", path + `:3: unknown key "server" (known: address, ca, insecure, token)`},
		{"token: a\ntoken: b\n", path + `:2: key "token" given twice (first at line 1)`},
		{"insecure: maybe\n", path + `:1: cannot unmarshal !!str ` + "`maybe`" + ` into bool`},
		{"- address\n", path + `:1: want a mapping with keys address, ca, insecure, token`},
	} {
		write(c.doc)
		_, err := resolved(map[string]string{"HOME": home})
		if err == nil || err.Error() != "config file "+c.want {
			t.Errorf("file %q: err = %v, want %q", c.doc, err, "config file "+c.want)
		}
	}
	// Through run: a broken file is a usage error.
	write("adress: x:1\n")
	code, _, errOut := ctl(t, map[string]string{"HOME": home}, "agents", "list")
	if code != exitUsage || !strings.Contains(errOut, path+`:1: unknown key "adress"`) {
		t.Errorf("run with a broken file: exit %d %q", code, errOut)
	}
	code, _, errOut = ctl(t, nil, "--config", filepath.Join(home, "missing.yaml"), "agents", "list")
	if code != exitUsage || !strings.Contains(errOut, "does not exist") {
		t.Errorf("--config missing: exit %d %q", code, errOut)
	}
}
