package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

const (
	opened   = netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED
	updated  = netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED
	resolved = netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED
	sevInfo  = netaiopsv1.Severity_SEVERITY_INFO
	sevWarn  = netaiopsv1.Severity_SEVERITY_WARNING
	sevMajor = netaiopsv1.Severity_SEVERITY_MAJOR
	sevCrit  = netaiopsv1.Severity_SEVERITY_CRITICAL
)

// seedIssues makes agent edge-1 open five issues and resolve one: the
// severities and ages exercise the sort.
func seedIssues(t *testing.T, ag *scriptedAgent) {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	ag.event(opened, testIssue("i-warn", "cpu_high", "core-sw1", sevWarn, now.Add(-50*time.Minute), "cpu 91% on core-sw1"), now)
	ag.event(opened, testIssue("i-major-old", "interface_down", "core-sw1", sevMajor, now.Add(-40*time.Minute), "ge-0/0/1 down"), now)
	ag.event(opened, testIssue("i-crit", "device_unreachable", "edge-sw2", sevCrit, now.Add(-30*time.Minute), "edge-sw2 unreachable"), now)
	ag.event(opened, testIssue("i-major-new", "interface_down", "edge-sw2", sevMajor, now.Add(-20*time.Minute), "ge-0/0/2 down"), now)
	is := testIssue("i-crit", "device_unreachable", "edge-sw2", sevCrit, now.Add(-30*time.Minute), "edge-sw2 unreachable for 5m")
	is.Attributes["consecutive_failures"] = "5"
	ag.event(updated, is, now.Add(time.Minute))
	ag.event(opened, testIssue("i-info", "config_changed", "core-sw1", sevInfo, now.Add(-10*time.Minute), "config changed"), now)
	r := testIssue("i-info", "config_changed", "core-sw1", sevInfo, now.Add(-10*time.Minute), "config change settled")
	r.State, r.ResolvedAt = netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, is.LastSeen
	ag.event(resolved, r, now.Add(2*time.Minute))
}

// ids returns the issue ids in the order a table lists them.
func ids(out string) []string {
	return regexp.MustCompile(`\bi-[a-z-]+\b`).FindAllString(out, -1)
}

func TestIssuesListGetAck(t *testing.T) {
	addr, _ := startController(t, "", "", false)
	ag := startAgent(t, addr, "edge-1", "")
	seedIssues(t, ag)
	env := map[string]string{"NETAIOPS_ADDRESS": addr}

	// Open ones by default, most severe first, newest first within a severity.
	code, out, _ := ctl(t, env, "--insecure", "issues", "list")
	if code != exitOK {
		t.Fatalf("issues list: exit %d", code)
	}
	if got, want := strings.Join(ids(out), " "), "i-crit i-major-new i-major-old i-warn"; got != want {
		t.Errorf("issues list order = %s, want %s", got, want)
	}
	header := strings.SplitN(out, "\n", 2)[0]
	if !strings.HasPrefix(header, "SEVERITY  STATE") || !strings.Contains(out, "ago") || strings.Contains(out, "\x1b[") {
		t.Errorf("table: want aligned header, relative ages and no colours off a terminal:\n%s", out)
	}
	// Columns line up: each row's AGE starts under the header's AGE.
	col := strings.Index(header, "AGE")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if len(l) <= col || !strings.Contains(l[col:col+12], "ago") {
			t.Errorf("row not aligned with AGE at %d: %q", col, l)
		}
	}

	// Every page, every state, as JSON with stable names.
	code, out, _ = ctl(t, env, "--insecure", "issues", "list", "--state", "all", "--page-size", "2", "-o", "json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != exitOK {
		t.Fatalf("issues list -o json: exit %d, %v", code, err)
	}
	if len(list) != 5 || list[0]["id"] != "i-crit" || list[0]["severity"] != "critical" || list[0]["state"] != "open" ||
		list[4]["id"] != "i-info" || list[4]["state"] != "resolved" || list[0]["agent_id"] != "edge-1" {
		t.Errorf("issues list --state all -o json = %v", list)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--severity", "major"}, "i-major-new i-major-old"},
		{[]string{"--kind", "interface_down", "--device", "core-sw1"}, "i-major-old"},
		{[]string{"--state", "resolved"}, "i-info"},
		{[]string{"--agent", "edge-1", "--device", "edge-sw2"}, "i-crit i-major-new"},
		{[]string{"--agent", "nobody"}, ""},
	} {
		code, out, _ := ctl(t, env, append([]string{"--insecure", "issues", "list"}, c.args...)...)
		if got := strings.Join(ids(out), " "); code != exitOK || got != c.want {
			t.Errorf("issues list %v = exit %d %q, want %q", c.args, code, got, c.want)
		}
	}

	// Evidence and the timeline.
	code, out, _ = ctl(t, env, "--insecure", "issues", "get", "i-crit")
	for _, want := range []string{"Evidence:", "consecutive_failures  5", "Timeline:", "opened", "updated", "edge-sw2 unreachable for 5m", "critical"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("issues get: exit %d, missing %q", code, want)
		}
	}
	code, out, _ = ctl(t, env, "--insecure", "issues", "get", "i-info", "-o", "yaml")
	if code != exitOK || !strings.Contains(out, "events:") || !strings.Contains(out, "type: resolved") || !strings.Contains(out, "type: opened") {
		t.Errorf("issues get -o yaml: exit %d:\n%s", code, out)
	}

	// Acknowledge, then see it everywhere.
	code, out, _ = ctl(t, env, "--insecure", "issues", "ack", "i-crit", "--by", "alice", "--comment", "carrier ticket 4711")
	if code != exitOK || !strings.Contains(out, "acknowledged by alice just now: carrier ticket 4711") {
		t.Errorf("issues ack: exit %d %q", code, out)
	}
	_, out, _ = ctl(t, env, "--insecure", "issues", "get", "i-crit", "-o", "json")
	var got struct {
		Issue  issueView   `json:"issue"`
		Events []eventView `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Issue.Acknowledged || got.Issue.AcknowledgedBy != "alice" || got.Issue.AckComment != "carrier ticket 4711" || len(got.Events) != 2 ||
		got.Events[0].Type != "opened" || got.Events[1].Type != "updated" || got.Events[1].Attributes["consecutive_failures"] != "5" {
		t.Errorf("issues get after ack = %+v", got)
	}
	_, out, _ = ctl(t, env, "--insecure", "issues", "get", "i-crit")
	if !strings.Contains(out, "Comment:       carrier ticket 4711") || !strings.Contains(out, "by alice: carrier ticket 4711") {
		t.Errorf("timeline lacks the acknowledgement:\n%s", out)
	}

	// Exit codes.
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--insecure", "issues", "get", "i-nope"}, exitNotFound, "NotFound"},
		{[]string{"--insecure", "issues", "ack", "i-nope"}, exitNotFound, "NotFound"},
		{[]string{"--insecure", "issues", "list", "--severity", "dire"}, exitUsage, "--severity dire: want info, warning, major or critical"},
		{[]string{"--insecure", "issues", "list", "--state", "closed"}, exitUsage, "--state closed"},
		{[]string{"--insecure", "issues", "get"}, exitUsage, "want an issue ID"},
		{[]string{"--insecure", "issues", "frobnicate"}, exitUsage, "unknown command"},
		{[]string{"--insecure", "issues", "list", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"--insecure", "issues", "list", "-o", "xml"}, exitUsage, "-o xml: want table, json or yaml"},
		{[]string{}, exitUsage, "no command given"},
	} {
		code, _, errOut := ctl(t, env, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("netaiopsctl %v: exit %d %q, want %d and %q", c.args, code, errOut, c.code, c.msg)
		}
	}
}
