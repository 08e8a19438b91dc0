package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitAgents runs agents list -o json until ok accepts the agent, or fails.
func waitAgents(t *testing.T, env map[string]string, ok func(agentView) bool) agentView {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := ctl(t, env, "--insecure", "agents", "list", "-o", "json")
		var views []agentView
		if err := json.Unmarshal([]byte(out), &views); err != nil || code != exitOK {
			t.Fatalf("agents list -o json: exit %d, %v", code, err)
		}
		if len(views) == 1 && ok(views[0]) {
			return views[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents list: %+v never as wanted", views)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgentsConfigPoll(t *testing.T) {
	addr, _ := startController(t, "", "", false)
	startAgent(t, addr, "edge-1", "")
	env := map[string]string{"NETAIOPS_ADDRESS": addr}

	code, out, _ := ctl(t, env, "--insecure", "agents", "list")
	if code != exitOK || !strings.Contains(out, "AGENT") || !strings.Contains(out, "edge-1") || !strings.Contains(out, "yes") ||
		!strings.Contains(out, "v9.9-test") || !strings.Contains(out, "site=lab") || !strings.Contains(out, "local file") {
		t.Errorf("agents list: exit %d\n%s", code, out)
	}

	dir := t.TempDir()
	file := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := file("v1.yaml", "snmp:\n  community: s3cret-community\n  interval: 30s\ntargets:\n  - name: core-sw1\n    address: 10.0.0.1:161\n")
	code, out, _ = ctl(t, env, "--insecure", "config", "set", "--agent", "edge-1", v1)
	if code != exitOK || !strings.Contains(out, "agent/edge-1: version 1 stored") {
		t.Fatalf("config set: exit %d %q", code, out)
	}
	ag := waitAgents(t, env, func(v agentView) bool { return v.AppliedConfigHash != "" })
	if ag.AppliedConfigVersion != 1 || ag.DesiredConfigVersion != 1 || ag.ConfigError != "" || !ag.Connected || ag.LastSeen == nil {
		t.Errorf("after config set: %+v", ag)
	}
	if _, out, _ = ctl(t, env, "--insecure", "agents", "list"); !strings.Contains(out, "v1 applied") {
		t.Errorf("agents list lacks the applied version:\n%s", out)
	}

	code, out, _ = ctl(t, env, "--insecure", "config", "get", "--agent", "edge-1")
	if code != exitOK || !strings.Contains(out, "community: <secret>") || strings.Contains(out, "s3cret") || !strings.Contains(out, "agent/edge-1 version 1") {
		t.Errorf("config get: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, env, "--insecure", "config", "list", "-o", "json")
	if code != exitOK || !strings.Contains(out, `"source": "agent/edge-1"`) {
		t.Errorf("config list: exit %d\n%s", code, out)
	}

	// diff: none against the same file (its secret redacted alike), a
	// unified diff against a changed one.
	code, out, errOut := ctl(t, env, "--insecure", "config", "diff", "--agent", "edge-1", v1)
	if code != exitOK || out != "" || !strings.Contains(errOut, "no differences") {
		t.Errorf("config diff same: exit %d %q %q", code, out, errOut)
	}
	v2 := file("v2.yaml", "snmp:\n  community: other\n  interval: 60s\ntargets:\n  - name: core-sw1\n    address: 10.0.0.1:161\n")
	code, out, _ = ctl(t, env, "--insecure", "config", "diff", "--agent", "edge-1", v2)
	want := "--- stored: agent/edge-1 version 1\n+++ file: " + v2 + "\n@@ -1,6 +1,6 @@\n snmp:\n   community: <secret>\n-  interval: 30s\n+  interval: 60s\n targets:\n"
	if code != exitOK || !strings.HasPrefix(out, want) {
		t.Errorf("config diff changed: exit %d\n%s\nwant prefix\n%s", code, out, want)
	}

	// A document the agent refuses: the NACK shows.
	bad := file("bad.yaml", "targets:\n  - name: nack-me\n    address: 10.0.0.9\n")
	if code, _, _ = ctl(t, env, "--insecure", "config", "set", "--agent", "edge-1", bad); code != exitOK {
		t.Fatalf("config set bad: exit %d", code)
	}
	waitAgents(t, env, func(v agentView) bool { return v.ConfigError != "" })
	if _, out, _ = ctl(t, env, "--insecure", "agents", "list"); !strings.Contains(out, "NACK: targets[0].address: missing port") {
		t.Errorf("agents list lacks the NACK:\n%s", out)
	}
	// What the controller refuses is exit 1 with its reason.
	code, _, errOut = ctl(t, env, "--insecure", "config", "set", "--agent", "edge-1", file("x.yaml", "agent:\n  id: x\n"))
	if code != exitError || !strings.Contains(errOut, "InvalidArgument") || !strings.Contains(errOut, "not settable") {
		t.Errorf("config set forbidden section: exit %d %q", code, errOut)
	}

	if code, _, _ = ctl(t, env, "--insecure", "config", "delete", "--agent", "edge-1"); code != exitOK {
		t.Errorf("config delete: exit %d", code)
	}
	code, _, errOut = ctl(t, env, "--insecure", "config", "get", "--agent", "edge-1")
	if code != exitNotFound {
		t.Errorf("config get after delete: exit %d %q", code, errOut)
	}
	code, out, _ = ctl(t, env, "--insecure", "config", "diff", "--label", "site=lab", v1)
	if code != exitOK || !strings.Contains(out, "--- stored: (none stored)") || !strings.Contains(out, "+  interval: 30s") {
		t.Errorf("config diff with nothing stored: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"config", "get"}, "want --agent ID or --label key=value"},
		{[]string{"config", "get", "--agent", "a", "--label", "k=v"}, "choose one"},
		{[]string{"config", "set", "--agent", "a"}, "want a YAML FILE"},
		{[]string{"config", "set", "--agent", "a", filepath.Join(dir, "none.yaml")}, "no such file"},
		{[]string{"config", "get", "--label", "novalue"}, "want key=value"},
	} {
		code, _, errOut := ctl(t, env, append([]string{"--insecure"}, c.args...)...)
		if code != exitUsage || !strings.Contains(errOut, c.msg) {
			t.Errorf("%v: exit %d %q, want 2 and %q", c.args, code, errOut, c.msg)
		}
	}

	// poll
	code, out, _ = ctl(t, env, "--insecure", "poll", "core-sw1", "--agent", "edge-1")
	if code != exitOK || !strings.Contains(out, "core-sw1 polled by edge-1") || !strings.Contains(out, "ifOperStatus  ifName=ge-0/0/1  1") {
		t.Errorf("poll: exit %d\n%s", code, out)
	}
	code, out, _ = ctl(t, env, "--insecure", "poll", "core-sw1", "--agent", "edge-1", "-o", "json")
	var pv pollView
	if err := json.Unmarshal([]byte(out), &pv); err != nil || code != exitOK || len(pv.Samples) != 1 || pv.Samples[0].Metric != "ifOperStatus" {
		t.Errorf("poll -o json: exit %d %+v %v", code, pv, err)
	}
	if code, _, errOut = ctl(t, env, "--insecure", "poll", "ghost-sw", "--agent", "edge-1"); code != exitNotFound {
		t.Errorf("poll unknown target: exit %d %q", code, errOut)
	}
	if code, _, errOut = ctl(t, env, "--insecure", "poll", "core-sw1", "--agent", "edge-9"); code != exitUnavailable || !strings.Contains(errOut, `agent "edge-9" is not connected`) || strings.Contains(errOut, "--address") {
		t.Errorf("poll via an agent that is not connected: exit %d %q", code, errOut)
	}
	if code, _, errOut = ctl(t, env, "--insecure", "poll", "core-sw1"); code != exitUsage || !strings.Contains(errOut, "want --agent ID") {
		t.Errorf("poll without --agent: exit %d %q", code, errOut)
	}
}
