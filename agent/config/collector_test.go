package config

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Profiles, walk limits and the trap receiver load with their values, and
// the trap passwords redact.
func TestCollectorKeys(t *testing.T) {
	c, err := Load("testdata/collector/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SNMP.MaxOIDsPerRequest != 20 || c.SNMP.MaxWalksPerDevice != 4 {
		t.Errorf("snmp = %+v", c.SNMP)
	}
	if got := c.EffectiveProfiles(c.Targets[0]); !slices.Equal(got, []string{"system", "if_mib", "lldp_mib"}) {
		t.Errorf("core-sw1 profiles = %v", got)
	}
	if got := c.EffectiveProfiles(c.Targets[1]); !slices.Equal(got, []string{"system", "host_resources", "ucd_snmp"}) {
		t.Errorf("srv1 profiles = %v", got)
	}
	if !slices.Equal(c.Profiles.Files, []string{"/etc/netaiops/profiles/ups.yaml"}) {
		t.Errorf("profiles.files = %v", c.Profiles.Files)
	}
	tr := c.Traps
	if tr == nil || tr.Listen != "127.0.0.1:9162" || len(tr.Communities) != 1 || string(tr.Communities[0]) != "trap-s3cret" ||
		len(tr.Users) != 1 || tr.Users[0].Username != "trapper" || string(tr.Users[0].PrivPassword) != "trap-priv-s3cret" {
		t.Errorf("traps = %+v", tr)
	}
	out := c.Redacted()
	for _, s := range []string{"trap-s3cret", "trap-auth-s3cret", "trap-priv-s3cret"} {
		if strings.Contains(out, s) {
			t.Errorf("Redacted() leaks %s:\n%s", s, out)
		}
	}
	if _, err := Parse([]byte(out), "redacted.yaml"); err != nil {
		t.Errorf("Redacted() does not load: %v\n%s", err, out)
	}

	d, err := Parse([]byte("controller: {address: \"c:1\", insecure: true}\ntargets: [{name: a, address: a.example}]\n"), "mini.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d.Traps != nil || !slices.Equal(d.EffectiveProfiles(d.Targets[0]), DefaultProfiles) || d.SNMP.MaxOIDsPerRequest != 0 {
		t.Errorf("defaults: traps %+v, profiles %v, snmp %+v", d.Traps, d.EffectiveProfiles(d.Targets[0]), d.SNMP)
	}
}

// One fixture per rule of the collector's keys, with its exact message.
func TestInvalidCollector(t *testing.T) {
	tests := map[string]string{
		"invalid-max-oids.yaml":              `:5: snmp.max_oids_per_request: must be at least 1, got 0`,
		"invalid-max-walks.yaml":             `:5: snmp.max_walks_per_device: must be at least 1, got -1`,
		"invalid-profile-name.yaml":          `:5: profiles.default[0]: bad profile name "if-mib": letters, digits and _ only`,
		"invalid-profile-twice.yaml":         `:7: targets[0].profiles[1]: profile "if_mib" listed twice`,
		"invalid-profiles-empty.yaml":        `:7: targets[0].profiles: empty list: name at least one profile, or leave the key out for system, if_mib`,
		"invalid-profile-file-empty.yaml":    `:5: profiles.files[0]: empty file name`,
		"invalid-traps-listen-missing.yaml":  `:4: traps.listen: required (host:port to receive traps on, e.g. 127.0.0.1:9162)`,
		"invalid-traps-listen.yaml":          `:5: traps.listen: bad address "9162": want host:port`,
		"invalid-traps-community-empty.yaml": `:6: traps.communities[0]: must not be empty`,
		"invalid-traps-user-duplicate.yaml":  `:8: traps.users[1].username: duplicate user "ops" (first at traps.users[0])`,
		"invalid-traps-user-auth.yaml":       `:7: traps.users[0].auth_password: required with security_level authNoPriv`,
	}
	files, err := filepath.Glob("testdata/collector/invalid-*.yaml")
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
			path := "testdata/collector/" + name
			_, err := Load(path)
			if err == nil || err.Error() != path+want {
				t.Errorf("error:\n got: %v\nwant: %s", err, path+want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %v is not a *config.Error", err)
			}
		})
	}
}
