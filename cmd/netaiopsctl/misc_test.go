package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestColours: ANSI colours only on a terminal, and not with NO_COLOR.
func TestColours(t *testing.T) {
	addr, _ := startController(t, "", "", false)
	startAgent(t, addr, "edge-1", "")
	for _, c := range []struct {
		tty     bool
		noColor string
		want    bool
	}{{true, "", true}, {false, "", false}, {true, "1", false}} {
		var out, errb bytes.Buffer
		env := map[string]string{"NO_COLOR": c.noColor}
		code := run(context.Background(), []string{"--insecure", "--address", addr, "agents", "list"}, func(k string) string { return env[k] }, &out, &errb, c.tty)
		if code != exitOK {
			t.Fatalf("agents list: exit %d %s", code, errb.String())
		}
		if got := strings.Contains(out.String(), "\x1b["); got != c.want {
			t.Errorf("tty %v NO_COLOR %q: colours %v, want %v:\n%q", c.tty, c.noColor, got, c.want, out.String())
		}
	}
}

// TestImports: netaiopsctl is a gRPC client of the controller and nothing
// else: no controller or agent package in its dependencies.
func TestImports(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list: skipped with -short")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/netaiops/netaiops/controller", "github.com/netaiops/netaiops/agent", "github.com/netaiops/netaiops/collector"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				t.Errorf("netaiopsctl depends on %s", p)
			}
		}
	}
}

// FuzzLoadFile: the client configuration parser never panics, and every
// error names the file.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{"address: a:1\ntoken: t\n", "insecure: true\nca: x\n", "a: [\n", "- 1\n", "", "token: {a: b}\n", "address: a\naddress: b\n"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "netaiopsctl.yaml")
	f.Fuzz(func(t *testing.T, doc string) {
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadFile(path); err != nil && !strings.HasPrefix(err.Error(), path) {
			t.Errorf("error without the file name: %v", err)
		}
	})
}

// TestHelp: help goes to stdout with exit 0, also per command.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"issues", "list", "-h"}, {"poll", "--help"}} {
		code, out, _ := ctl(t, nil, args...)
		if code != exitOK || !strings.Contains(out, "Usage") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	if _, out, _ := ctl(t, nil, "issues", "list", "-h"); !strings.Contains(out, "--severity") || !strings.Contains(out, "--label") {
		t.Errorf("issues list -h lacks its flags:\n%s", out)
	}
}
