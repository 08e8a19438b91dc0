package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestMatchers(t *testing.T) {
	labels := map[string]string{"site": "fra1", "role": "core"}
	for s, want := range map[string]bool{
		"site=fra1": true, "site=ams1": false, "site!=ams1": true, "site!=fra1": false,
		"site=~fra.*": true, "site=~ra1": false, "site!~ams.*": true, "role!~core|edge": false,
		"missing=": true, "missing!=": false, "missing=~.+": false,
	} {
		m, err := parseMatcher(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := m.match(labels); got != want {
			t.Errorf("%s on %v = %v, want %v", s, labels, got, want)
		}
	}
	for _, s := range []string{"site", "=x", "!x", "site!x", "site=~(", ""} {
		if _, err := parseMatcher(s); err == nil || !strings.Contains(err.Error(), "--label") {
			t.Errorf("%q: err = %v, want an error naming --label", s, err)
		}
	}
}

// TestLabelFilter: issues list and issues watch --label keep the issues of
// agents whose labels match, also of an agent that connects after the
// watch began.
func TestLabelFilter(t *testing.T) {
	addr, _ := startController(t, "", "", false)
	fra := startAgent(t, addr, "edge-fra", "") // site=lab (scriptedAgent's hello)
	now := time.Now()
	fra.event(opened, testIssue("i-fra", "interface_down", "core-sw1", sevMajor, now, "fra down"), now)
	env := map[string]string{"NETAIOPS_ADDRESS": addr}

	code, out, _ := ctl(t, env, "--insecure", "issues", "list", "--label", "site=lab")
	if code != exitOK || strings.Join(ids(out), " ") != "i-fra" {
		t.Errorf("--label site=lab: exit %d\n%s", code, out)
	}
	code, out, errOut := ctl(t, env, "--insecure", "issues", "list", "--label", "site!~la.")
	if code != exitOK || len(ids(out)) != 0 || !strings.Contains(errOut, "no issues match") {
		t.Errorf("--label site!~la.: exit %d\n%s", code, out)
	}
	code, _, errOut = ctl(t, env, "--insecure", "issues", "list", "--label", "site")
	if code != exitUsage || !strings.Contains(errOut, "want name=value") {
		t.Errorf("--label site: exit %d %q", code, errOut)
	}

	// A watch for site=ams, whose agent connects after the watch began.
	var wout, werr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	var wcode int
	finished := make(chan struct{})
	go func() { // owned: waited for below and at cleanup
		defer close(finished)
		wcode = run(ctx, []string{"--insecure", "--address", addr, "issues", "watch", "--label", "site=~am.*", "-o", "json"},
			func(string) string { return "" }, &wout, &werr, false)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	ams := startAgentLabels(t, addr, "edge-ams", "", map[string]string{"site": "ams1"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(wout.String(), "i-ams") {
		if time.Now().After(deadline) {
			t.Fatalf("watch never showed i-ams: %q %q", wout.String(), werr.String())
		}
		fra.event(updated, testIssue("i-fra", "interface_down", "core-sw1", sevMajor, now, "fra still down"), now)
		ams.event(opened, testIssue("i-ams", "interface_down", "core-sw1", sevMajor, now, "ams down"), now)
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-finished
	if wcode != exitOK || strings.Contains(wout.String(), "i-fra") {
		t.Errorf("watch --label site=~am.*: exit %d, printed\n%s", wcode, wout.String())
	}
}
