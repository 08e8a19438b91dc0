package config

import (
	"strings"
	"testing"
	"time"
)

const remoteLocal = `agent:
  id: edge-1
controller:
  address: 127.0.0.1:7443
  insecure: true
snmp:
  interval: 10s
targets:
  - name: a
    address: 10.0.0.1
    community: local-secret
  - name: b
    address: 10.0.0.2
`

func TestWithRemote(t *testing.T) {
	local, err := Parse([]byte(remoteLocal), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	remote := `snmp:
  interval: 30s
targets:
  - name: a
    address: 10.0.0.9
    community: pushed-secret
  - name: c
    address: 10.0.0.3
`
	m, ignored, err := local.WithRemote([]byte(remote), "controller config v1")
	if err != nil || len(ignored) != 0 {
		t.Fatalf("WithRemote: %v (ignored %v)", err, ignored)
	}
	if m.Agent.ID != "edge-1" || m.Controller.Address != "127.0.0.1:7443" || m.SNMP.Interval != 30*time.Second {
		t.Errorf("merged: agent %q controller %q interval %s", m.Agent.ID, m.Controller.Address, m.SNMP.Interval)
	}
	if len(m.Targets) != 2 || m.Targets[0].Address != "10.0.0.9:161" || string(m.Targets[0].Community) != "pushed-secret" ||
		m.Targets[1].Name != "c" || m.Targets[1].Interval != 30*time.Second {
		t.Errorf("merged targets: %+v", m.Targets)
	}
	if strings.Contains(m.Redacted(), "pushed-secret") {
		t.Error("Redacted shows the pushed community")
	}
	// The local config is untouched, and an empty document gives it back.
	if len(local.Targets) != 2 || local.Targets[1].Name != "b" || local.SNMP.Interval != 10*time.Second {
		t.Errorf("local changed: %+v", local.Targets)
	}
	if back, _, err := m.WithRemote(nil, "controller config none"); err != nil || back.Targets[1].Name != "b" {
		t.Errorf("empty remote: %v %+v", err, back)
	}

	for doc, want := range map[string]string{
		"targets:\n  - name: a\n    address: 10.0.0.1:99999\n": `controller config v2:3: targets[0].address: bad address "10.0.0.1:99999": bad port "99999" (want 1-65535)`,
		"agent:\n  id: other\n":                                `controller config v2:1: agent: not settable by the controller (allowed: snmp, targets)`,
		"targets: [\n":                                         `controller config v2: invalid YAML: yaml: line 1: did not find expected node content`,
		"snmp:\n  intervall: 5s\n":                             `controller config v2:2: snmp.intervall: unknown key`,
	} {
		_, _, err := local.WithRemote([]byte(doc), "controller config v2")
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("remote %q:\n got: %v\nwant: %s...", doc, err, want)
		}
	}

	pinned, err := Parse([]byte(strings.Replace(remoteLocal, "  insecure: true\n", "  insecure: true\n  pin: [targets]\n", 1)), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, ignored, err = pinned.WithRemote([]byte(remote), "controller config v3")
	if err != nil || len(ignored) != 1 || ignored[0] != "targets" {
		t.Fatalf("pinned: %v, ignored %v", err, ignored)
	}
	if m.Targets[1].Name != "b" || m.SNMP.Interval != 30*time.Second {
		t.Errorf("pinned targets replaced or snmp not applied: %+v %s", m.Targets, m.SNMP.Interval)
	}
	if _, err := Parse([]byte(strings.Replace(remoteLocal, "  insecure: true\n", "  insecure: true\n  pin: [agent]\n", 1)), "agent.yaml"); err == nil ||
		!strings.Contains(err.Error(), `controller.pin[0]: bad section "agent" (allowed: snmp, targets)`) {
		t.Errorf("bad pin: %v", err)
	}
}
