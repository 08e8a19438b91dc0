package server

import (
	"strings"
	"testing"
)

func TestRedactYAML(t *testing.T) {
	doc := `snmp:
  interval: 30s
targets:
  - name: core-sw1
    address: 10.0.0.1
    community: c0mmunity-s3cret
  - name: v3-sw
    address: 10.0.0.2
    version: "3"
    username: ops
    auth_password: auth-s3cret
    priv_password: priv-s3cret
  - name: by-reference
    address: 10.0.0.3
    community_file: /etc/netaiops/community
`
	out := redactYAML(doc)
	for _, secret := range []string{"c0mmunity-s3cret", "auth-s3cret", "priv-s3cret"} {
		if strings.Contains(out, secret) {
			t.Errorf("redacted document shows %s:\n%s", secret, out)
		}
	}
	if strings.Count(out, "<secret>") != 3 || !strings.Contains(out, "username: ops") || !strings.Contains(out, "interval: 30s") ||
		!strings.Contains(out, "community_file: /etc/netaiops/community") {
		t.Errorf("redacted too much or too little:\n%s", out)
	}
	if got := redactYAML("targets: [\n"); strings.Contains(got, "targets") {
		t.Errorf("unparsable document not withheld: %q", got)
	}
}

func TestCheckConfigYAML(t *testing.T) {
	if _, err := checkConfigYAML("snmp: {interval: 5s}\ntargets: []\n"); err != nil {
		t.Errorf("valid document: %v", err)
	}
	for doc, want := range map[string]string{
		"":                           "yaml: empty; use DeleteConfig",
		"- a\n":                      "yaml: want a mapping with keys snmp, targets",
		"controller:\n  x: 1\n":      "yaml: line 1: controller: not settable by the controller (allowed: snmp, targets)",
		"targets: [\n":               "yaml: invalid YAML",
		strings.Repeat("#", 1<<20+1): "more than 1048576",
	} {
		if _, err := checkConfigYAML(doc); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkConfigYAML(%.20q) = %v, want %q", doc, err, want)
		}
	}
}
