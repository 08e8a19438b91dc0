package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector/limits"
)

// The example from the agent's documentation must load unchanged.
func TestExample(t *testing.T) {
	c, err := Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.ID != "edge-1" || c.Agent.DataDir != DefaultDataDir {
		t.Errorf("agent = %+v", c.Agent)
	}
	if c.Controller.Address != "127.0.0.1:7443" || !c.Controller.Insecure {
		t.Errorf("controller = %+v", c.Controller)
	}
	want := SNMP{Interval: 10 * time.Second, Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25, UnreachableAfter: 3, MaxConcurrency: 64}
	if c.SNMP != want {
		t.Errorf("snmp = %+v, want %+v", c.SNMP, want)
	}
	if len(c.Targets) != 1 {
		t.Fatalf("targets = %+v", c.Targets)
	}
	tg := c.Targets[0]
	if tg.Name != "core-sw1" || tg.Address != "127.0.0.1:1161" || tg.Version != "2c" || string(tg.Community) != "public" ||
		tg.Interval != 10*time.Second || tg.Timeout != 2*time.Second || tg.Retries == nil || *tg.Retries != 1 {
		t.Errorf("target = %+v (retries %v)", tg, tg.Retries)
	}
}

func TestValidFixture(t *testing.T) {
	c, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Agent.ID != "edge-7" || c.Agent.DataDir != "/tmp/netaiops-agent" ||
		c.Agent.Labels["site"] != "lab" || c.Agent.Labels["rack"] != "12" || len(c.Agent.Labels) != 2 {
		t.Errorf("agent = %+v", c.Agent)
	}
	want := SNMP{Interval: 30 * time.Second, Timeout: 3 * time.Second, Retries: 0, MaxRepetitions: 10, UnreachableAfter: 5, MaxConcurrency: 8}
	if c.SNMP != want {
		t.Errorf("snmp = %+v, want %+v", c.SNMP, want)
	}
	type eff struct {
		name, addr, version, community string
		interval, timeout              time.Duration
		retries                        int
	}
	wantTargets := []eff{
		{"core-sw1", "10.0.0.1:161", "1", "s3cret", 30 * time.Second, 3 * time.Second, 0},
		{"edge-rtr2", "[2001:db8::2]:1161", "2c", "other-s3cret", time.Minute, 5 * time.Second, 3},
		{"dist-sw3", "[2001:db8::3]:161", "2c", "public", 30 * time.Second, 3 * time.Second, 0}, // interval 0s: inherit
	}
	if len(c.Targets) != len(wantTargets) {
		t.Fatalf("got %d targets, want %d", len(c.Targets), len(wantTargets))
	}
	for i, w := range wantTargets {
		tg := c.Targets[i]
		got := eff{tg.Name, tg.Address, tg.Version, string(tg.Community), tg.Interval, tg.Timeout, *tg.Retries}
		if got != w {
			t.Errorf("targets[%d] = %+v, want %+v", i, got, w)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte("controller: {address: \"c:1\", insecure: true}\ntargets: [{name: a, address: a.example}]\n"), "mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name to compare the default agent.id with: %v", err)
	}
	if c.Agent.ID != host {
		t.Errorf("agent.id = %q, want the host name %q", c.Agent.ID, host)
	}
	tg := c.Targets[0]
	if tg.Address != "a.example:161" || tg.Version != "2c" || string(tg.Community) != "public" ||
		tg.Interval != DefaultInterval || tg.Timeout != DefaultTimeout || *tg.Retries != DefaultRetries {
		t.Errorf("target = %+v", tg)
	}
}

// One fixture per rule, each with the exact message it must produce.
func TestInvalid(t *testing.T) {
	tests := map[string]string{
		"invalid-address-missing.yaml":            `:11: targets[0].address: required`,
		"invalid-address-port.yaml":               `:12: targets[0].address: bad address "127.0.0.1:99999": bad port "99999" (want 1-65535)`,
		"invalid-community-empty.yaml":            `:13: targets[0].community: must not be empty`,
		"invalid-controller-address-missing.yaml": `:3: controller.address: required (host:port of the controller)`,
		"invalid-controller-address.yaml":         `:4: controller.address: bad address "controller.example.net": want host:port`,
		"invalid-duplicate-name.yaml":             `:15: targets[2].name: duplicate target name "core-sw1" (first at targets[0])`,
		"invalid-duration-list.yaml":              `:7: snmp.interval: expected a duration such as 10s, got a list`,
		"invalid-duration.yaml":                   `:7: snmp.interval: bad duration "10x": time: unknown unit "x" in duration "10x"`,
		"invalid-empty.yaml":                      `: controller.address: required (host:port of the controller)`,
		"invalid-insecure-with-tls.yaml":          `:6: controller.ca_file: TLS setting with controller.insecure: true (plaintext); remove one of them`,
		"invalid-tls-key-missing.yaml":            `:3: controller.key_file: required with controller.cert_file (the client certificate's key)`,
		"invalid-token-both.yaml":                 `:6: controller.token_file: set with controller.token; use one of them`,
		"invalid-insecure-not-bool.yaml":          `:5: controller.insecure: expected true or false, got "maybe"`,
		"invalid-interval-negative.yaml":          `:7: snmp.interval: must be positive, got -5s`,
		"invalid-interval-zero.yaml":              `:7: snmp.interval: must be positive, got 0s`,
		"invalid-labels.yaml":                     `:3: agent.labels: expected a mapping of names to strings, got a list`,
		"invalid-agent-id-long.yaml":              `:2: agent.id: 129 bytes, at most 128 (the controller's limit)`,
		"invalid-label-value-long.yaml":           `:3: agent.labels: label "site": value of 257 bytes, at most 256 (the controller's limit)`,
		"invalid-name-long.yaml":                  `:11: targets[0].name: 257 bytes, at most 256 (the controller's limit)`,
		"invalid-address-long.yaml":               `:12: targets[0].address: 304 bytes, at most 270 (the controller's limit)`,
		"invalid-max-concurrency.yaml":            `:10: snmp.max_concurrency: must be at least 1, got 0`,
		"invalid-outbox-max-bytes.yaml":           `:4: agent.outbox_max_bytes: must be at least 65536 (64 KiB), got 1000`,
		"invalid-max-repetitions-negative.yaml":   `:10: snmp.max_repetitions: must be between 0 and 4294967295, got -3`,
		"invalid-max-repetitions.yaml":            `:10: snmp.max_repetitions: must be at least 1, got 0`,
		"invalid-name-missing.yaml":               `:11: targets[0].name: required`,
		"invalid-name-slash.yaml":                 `:11: targets[0].name: bad name "core/sw1": must not contain whitespace or "/"`,
		"invalid-repeated-key.yaml":               `:10: snmp.retries: key repeated (first at line 9)`,
		"invalid-retries-negative.yaml":           `:9: snmp.retries: must not be negative, got -1`,
		"invalid-retries-not-int.yaml":            `:9: snmp.retries: expected an integer, got "many"`,
		"invalid-target-interval.yaml":            `:13: targets[0].interval: must be longer than the target's timeout (2s), got 1s`,
		"invalid-target-retries.yaml":             `:13: targets[0].retries: must not be negative, got -2`,
		"invalid-target-timeout.yaml":             `:14: targets[0].timeout: must be shorter than the target's interval (5s), got 5s`,
		"invalid-targets-not-list.yaml":           `:10: targets: expected a list, got "core-sw1"`,
		"invalid-timeout-not-shorter.yaml":        `:8: snmp.timeout: must be shorter than snmp.interval (10s), got 10s`,
		"invalid-top-level-list.yaml":             `:1: expected a mapping with keys agent, controller, snmp, targets, rules, profiles, traps, flows; got a list`,
		"invalid-top-unknown-key.yaml":            `:1: agnet: unknown key (known: agent, controller, snmp, targets, rules, profiles, traps, flows)`,
		"invalid-two-documents.yaml":              `:10: more than one YAML document (want exactly one)`,
		"invalid-unknown-key.yaml":                `:14: targets[1].adress: unknown key (known: name, address, version, community, community_file, interval, timeout, retries, security_level, username, auth_protocol, auth_password, auth_password_file, priv_protocol, priv_password, priv_password_file, context, profiles)`,
		"invalid-unreachable-after.yaml":          `:10: snmp.unreachable_after: must be at least 1, got 0`,
		"invalid-version.yaml":                    `:13: targets[0].version: bad version "2" (allowed: "1", "2c", "3")`,
		"invalid-v3-username-missing.yaml":        `:11: targets[0].username: required for version 3`,
		"invalid-v3-security-level-missing.yaml":  `:11: targets[0].security_level: required for version 3 (allowed: noAuthNoPriv, authNoPriv, authPriv)`,
		"invalid-v3-security-level.yaml":          `:14: targets[0].security_level: bad security level "authpriv" (allowed: noAuthNoPriv, authNoPriv, authPriv)`,
		"invalid-v3-auth-protocol.yaml":           `:16: targets[0].auth_protocol: bad protocol "SHA1" (allowed: MD5, SHA, SHA224, SHA256, SHA384, SHA512)`,
		"invalid-v3-auth-protocol-missing.yaml":   `:11: targets[0].auth_protocol: required with security_level authNoPriv (allowed: MD5, SHA, SHA224, SHA256, SHA384, SHA512)`,
		"invalid-v3-auth-password-missing.yaml":   `:11: targets[0].auth_password: required with security_level authNoPriv`,
		"invalid-v3-auth-password-short.yaml":     `:17: targets[0].auth_password: too short: USM passwords have at least 8 characters`,
		"invalid-v3-priv-protocol.yaml":           `:18: targets[0].priv_protocol: bad protocol "3DES" (allowed: DES, AES, AES192, AES256, AES192C, AES256C)`,
		"invalid-v3-priv-protocol-missing.yaml":   `:11: targets[0].priv_protocol: required with security_level authPriv (allowed: DES, AES, AES192, AES256, AES192C, AES256C)`,
		"invalid-v3-priv-password-missing.yaml":   `:11: targets[0].priv_password: required with security_level authPriv`,
		"invalid-v3-priv-password-short.yaml":     `:19: targets[0].priv_password: too short: USM passwords have at least 8 characters`,
		"invalid-v3-priv-with-authnopriv.yaml":    `:18: targets[0].priv_protocol: not used with security_level authNoPriv`,
		"invalid-v3-auth-with-noauth.yaml":        `:16: targets[0].auth_password: not used with security_level noAuthNoPriv`,
		"invalid-v3-community.yaml":               `:16: targets[0].community: not used by version 3 (use username and the auth/priv keys)`,
		"invalid-v3-key-on-v2c.yaml":              `:14: targets[0].username: only for version 3 (this target has version "2c")`,
		"invalid-yaml-syntax.yaml":                `:6: invalid YAML: did not find expected '-' indicator`,
		// Secrets by reference.
		"invalid-community-file-missing.yaml":           `:13: targets[0].community_file: cannot read: stat testdata/secrets/no-such-file: no such file or directory`,
		"invalid-community-file-both.yaml":              `:14: targets[0].community_file: set with targets[0].community; use one of them`,
		"invalid-community-file-empty.yaml":             `:13: targets[0].community_file: testdata/secrets/empty is empty`,
		"invalid-community-env-unset.yaml":              `:13: targets[0].community: environment variable NETAIOPS_TEST_UNSET_COMMUNITY is not set`,
		"invalid-v3-community-file.yaml":                `:16: targets[0].community_file: not used by version 3 (use username and the auth/priv keys)`,
		"invalid-v3-auth-password-file-short.yaml":      `:17: targets[0].auth_password_file: too short: USM passwords have at least 8 characters`,
		"invalid-v3-priv-password-file-authnopriv.yaml": `:18: targets[0].priv_password_file: not used with security_level authNoPriv`,
		"invalid-v3-auth-password-file-on-v2c.yaml":     `:13: targets[0].auth_password_file: only for version 3 (this target has version "2c")`,
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expected message", f)
		}
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			path := "testdata/" + name
			want = path + want
			c, err := Load(path)
			if err == nil {
				t.Fatalf("loaded without error: %+v", c)
			}
			if err.Error() != want {
				t.Errorf("error:\n got: %s\nwant: %s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != path {
				t.Errorf("error %v is not a *config.Error naming %s", err, path)
			}
		})
	}
}

// A file with several problems reports all of them, in document order.
func TestSeveralErrors(t *testing.T) {
	const data = `controller:
  address: c:7443
  insecure: true
snmp:
  retries: -1
targets:
  - name: a
  - name: a
    address: b
    version: 3
`
	_, err := Parse([]byte(data), "many.yaml")
	want := `many.yaml:5: snmp.retries: must not be negative, got -1
many.yaml:7: targets[0].address: required
many.yaml:8: targets[1].name: duplicate target name "a" (first at targets[0])
many.yaml:8: targets[1].username: required for version 3
many.yaml:8: targets[1].security_level: required for version 3 (allowed: noAuthNoPriv, authNoPriv, authPriv)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got: %v\nwant: %s", err, want)
	}
}

// SNMPv3 targets load with their USM settings, and their passwords redact.
func TestValidV3(t *testing.T) {
	c, err := Load("testdata/valid-v3.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type v3 struct{ level, user, ap, apw, pp, ppw, ctx, community string }
	want := []v3{
		{"noAuthNoPriv", "observer", "", "", "", "", "", ""},
		{"authNoPriv", "ops", "SHA512", "auth-s3cret", "", "", "", ""},
		{"authPriv", "ops", "SHA256", "auth-s3cret", "AES256C", "priv-s3cret", "vrf-blue", ""},
	}
	for i, w := range want {
		tg := c.Targets[i]
		got := v3{tg.SecurityLevel, tg.Username, tg.AuthProtocol, string(tg.AuthPassword), tg.PrivProtocol, string(tg.PrivPassword), tg.Context, string(tg.Community)}
		if got != w || tg.Version != "3" {
			t.Errorf("targets[%d] = %+v (version %q), want %+v", i, got, tg.Version, w)
		}
	}
	out := c.Redacted() + fmt.Sprintf("%+v", c.Targets)
	for _, secret := range []string{"auth-s3cret", "priv-s3cret"} {
		if strings.Contains(out, secret) {
			t.Errorf("password %q leaks: %s", secret, out)
		}
	}
	if _, err := Parse([]byte(c.Redacted()), "redacted-v3.yaml"); err != nil {
		t.Errorf("Redacted() of v3 targets does not load: %v", err)
	}
	if !strings.Contains(c.Redacted(), "priv_password: <secret>") {
		t.Errorf("Redacted() does not show priv_password: <secret>:\n%s", c.Redacted())
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.yaml")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/does-not-exist.yaml") {
		t.Errorf("err = %v, want a not-exist error naming the file", err)
	}
}

// Validate also checks a Config built in code, where no file or lines exist.
func TestValidateInCode(t *testing.T) {
	c := &Config{
		Agent:      Agent{ID: "a", DataDir: "/d"},
		Controller: Controller{Address: "c:1", Insecure: true},
		SNMP:       SNMP{Interval: time.Second, Timeout: 2 * time.Second, MaxRepetitions: 1, UnreachableAfter: 1, MaxConcurrency: 1},
		Targets:    []Target{{Name: "t", Address: "h:161", Version: "2c", Community: "x"}},
	}
	err := c.Validate()
	want := "snmp.timeout: must be shorter than snmp.interval (1s), got 2s"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	c.SNMP.Timeout = 500 * time.Millisecond
	if err := c.Validate(); err != nil {
		t.Errorf("valid config in code: %v", err)
	}
	if got := c.Targets[0].EffectiveRetries(c.SNMP); got != 0 {
		t.Errorf("EffectiveRetries = %d", got)
	}
}

// The counts the controller bounds in a hello (labels, targets) are
// checked in the configuration, so the agent's hello is never refused.
func TestControllerCountLimits(t *testing.T) {
	c := &Config{
		Agent:      Agent{ID: "a", DataDir: "/d", Labels: map[string]string{}},
		Controller: Controller{Address: "c:1", Insecure: true},
		SNMP:       SNMP{Interval: time.Second, Timeout: 500 * time.Millisecond, MaxRepetitions: 1, UnreachableAfter: 1, MaxConcurrency: 1},
	}
	for i := range limits.MaxLabels + 1 {
		c.Agent.Labels[fmt.Sprintf("l%d", i)] = "v"
	}
	for i := range limits.MaxTargets + 1 {
		c.Targets = append(c.Targets, Target{Name: fmt.Sprintf("t%d", i), Address: "h:161", Version: "2c", Community: "x"})
	}
	err := c.Validate()
	want := "agent.labels: 65 labels, at most 64 (the controller's limit)\ntargets: 20001 targets, at most 20000 (the controller's limit)"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	delete(c.Agent.Labels, "l0")
	c.Targets = c.Targets[:limits.MaxTargets]
	if err := c.Validate(); err != nil {
		t.Fatalf("at the limits: %v", err)
	}
	// 4 000 targets of 263 bytes each: more text than the controller keeps.
	c.Targets = c.Targets[:4000]
	for i := range c.Targets {
		c.Targets[i].Name = fmt.Sprintf("%04d", i) + strings.Repeat("n", 252)
	}
	want = "targets: 1052000 bytes of names, addresses and versions, at most 1048576 (the controller's limit)"
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// The community must not appear however a Secret or a Config is printed,
// logged or marshalled.
func TestSecretRedacted(t *testing.T) {
	const secret = "s3cret-community"
	s := Secret(secret)
	c, err := Parse([]byte(`controller: {address: "c:1", insecure: true}
targets: [{name: a, address: h, community: `+secret+`}]
`), "s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Targets[0].Community) != secret {
		t.Fatalf("community = %q, the real value must stay available by conversion", string(c.Targets[0].Community))
	}

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	logger.Info("x", "community", s, "target", c.Targets[0])
	jlogs := bytes.Buffer{}
	slog.New(slog.NewJSONHandler(&jlogs, nil)).Info("x", "community", s, "target", c.Targets[0])
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String":     s.String(),
		"%v":         fmt.Sprintf("%v", s),
		"%s":         fmt.Sprintf("%s", s),
		"%q":         fmt.Sprintf("%q", s),
		"%x":         fmt.Sprintf("%x", s),
		"%d":         fmt.Sprintf("%d", s),
		"%#v":        fmt.Sprintf("%#v", s),
		"%+v target": fmt.Sprintf("%+v", c.Targets[0]),
		"%#v config": fmt.Sprintf("%#v", c),
		"slog text":  logs.String(),
		"slog json":  jlogs.String(),
		"json":       string(js),
		"Redacted":   c.Redacted(),
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) {
			t.Errorf("%s leaks the secret: %s", how, out)
		}
		if !strings.Contains(out, "<secret>") && !strings.Contains(out, `\u003csecret\u003e`) {
			t.Errorf("%s does not show <secret>: %s", how, out)
		}
	}
}

// Redacted is a YAML rendering of the effective config that loads again
// (with the placeholder as the community).
func TestRedactedRoundTrip(t *testing.T) {
	c, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := c.Redacted()
	for _, want := range []string{"interval: 30s", "address: 10.0.0.1:161", "max_repetitions: 10", "community: <secret>"} {
		if !strings.Contains(out, want) {
			t.Errorf("Redacted() lacks %q:\n%s", want, out)
		}
	}
	c2, err := Parse([]byte(out), "redacted.yaml")
	if err != nil {
		t.Fatalf("Redacted() output does not load: %v\n%s", err, out)
	}
	if c2.Redacted() != out {
		t.Errorf("second rendering differs:\n%s\n---\n%s", out, c2.Redacted())
	}
}

// Any input gives a Config or an error naming the file; never a panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]"))
	f.Add([]byte("targets: [&t {name: a, address: b}, *t]\ncontroller: {address: c:1, insecure: true}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Errorf("Parse accepted a config that Validate rejects: %v", err)
		}
	})
}
