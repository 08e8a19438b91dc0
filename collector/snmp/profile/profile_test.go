package profile

import (
	"os"
	"strings"
	"testing"
)

// Every shipped profile parses and validates.
func TestBuiltin(t *testing.T) {
	b, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"system", "if_mib", "host_resources", "ucd_snmp", "entity_sensor", "lldp_mib"} {
		if b[name] == nil {
			t.Errorf("no builtin profile %s (have %v)", name, len(b))
		}
	}
	ps, err := Resolve(nil, nil)
	if err != nil || len(ps) != 2 || ps[0].Name != "system" || ps[1].Name != "if_mib" {
		t.Errorf("Resolve(nil) = %v, %v; want system, if_mib", ps, err)
	}
}

func TestResolve(t *testing.T) {
	user, err := Parse([]byte("name: if_mib\nscalars: [{name: x, oid: 1.3.6.1.4.1.9.1.0, type: gauge}]\n"), "mine.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Resolve([]string{"if_mib"}, map[string]*Profile{"if_mib": user})
	if err != nil || ps[0] != user {
		t.Errorf("a user profile does not override the builtin of the same name: %v %v", ps, err)
	}
	_, err = Resolve([]string{"nope"}, nil)
	want := `unknown profile "nope" (known: entity_sensor, host_resources, if_mib, lldp_mib, system, ucd_snmp)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// Each rule of Validate, with its message.
func TestParseInvalid(t *testing.T) {
	tests := []struct{ yaml, want string }{
		{"", "profile p.yaml: empty"},
		{"name: a\nfoo: 1\n", "field foo not found"},
		{"name: a-b\nscalars: [{name: x, oid: 1.3, type: gauge}]\n", `name: "a-b" is not a name`},
		{"name: a\n", "no scalars and no tables"},
		{"name: a\nscalars: [{name: x, oid: 1.3.x, type: gauge}]\n", `scalars[0]: bad oid "1.3.x": "x" is not a number`},
		{"name: a\nscalars: [{name: x, oid: 1.3, type: text}]\n", `scalars[0]: bad type "text" (want gauge, counter, label or info)`},
		{"name: a\nscalars: [{name: x, oid: 1.3, type: label}]\n", "scalars[0]: type label is for table columns"},
		{"name: a\nscalars: [{name: x, oid: 1.3, type: gauge}, {name: x, oid: 1.4, type: gauge}]\n", "scalars[1]: name x already used by scalars[0]"},
		{"name: a\nscalars: [{name: x, oid: 1.3, type: gauge, scale: -1}]\n", "scalars[0]: scale must not be negative, got -1"},
		{"name: a\nscalars: [{name: x, oid: 1.3, type: gauge, fallback: y}]\n", "scalars[0]: fallback is for label and info columns"},
		{"name: a\ntables: [{name: t, oid: 1.3.6, index: [i], columns: [{name: c, oid: 1.3.7.1, type: gauge}]}]\n", "tables[0].columns[0]: oid 1.3.7.1 is not under the table's oid 1.3.6"},
		{"name: a\ntables: [{name: t, oid: 1.3.6, columns: [{name: c, oid: 1.3.6.1, type: gauge}]}]\n", "tables[0]: index: at least one name"},
		{"name: a\ntables: [{name: t, oid: 1.3.6, index: [i]}]\n", "tables[0]: no columns"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.yaml), "p.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want it to contain %q", tt.yaml, err, tt.want)
		}
	}
}

// Any input gives a profile or an error; never a panic.
func FuzzParse(f *testing.F) {
	entries, _ := builtinFS.ReadDir("builtin")
	for _, e := range entries {
		data, err := builtinFS.ReadFile("builtin/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: a\ntables: [{name: t, oid: 1.3.6, index: [i], columns: [{name: c, oid: 1.3.6.1, type: gauge}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err == nil && p.Validate() != nil {
			t.Errorf("Parse accepted an invalid profile")
		}
	})
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.yaml", "name: ups\nscalars: [{name: upsBatteryTemperature, oid: 1.3.6.1.2.1.33.1.2.7.0, type: gauge}]\n")
	b := write("b.yaml", "name: ups\nscalars: [{name: x, oid: 1.3.6.1.2.1.33.1.2.8.0, type: gauge}]\n")
	m, err := LoadFiles([]string{a})
	if err != nil || m["ups"] == nil || m["ups"].Scalars[0].Name != "upsBatteryTemperature" {
		t.Errorf("LoadFiles = %v, %v", m, err)
	}
	if _, err := LoadFiles([]string{a, b}); err == nil || !strings.Contains(err.Error(), "name ups already defined in "+a) {
		t.Errorf("duplicate name: err = %v", err)
	}
	if _, err := LoadFiles([]string{dir + "/missing.yaml"}); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
}
