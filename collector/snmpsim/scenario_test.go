package snmpsim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// One fixture per rule, each asserting its exact message.
func TestScenarioInvalid(t *testing.T) {
	for file, want := range map[string]string{
		"invalid-unknown-key.yaml":         `scenario testdata/invalid-unknown-key.yaml: line 4: unknown key "colour"`,
		"invalid-unknown-fault-key.yaml":   `scenario testdata/invalid-unknown-fault-key.yaml: line 7: unknown key "when"`,
		"invalid-fault-kind.yaml":          `scenario testdata/invalid-fault-kind.yaml: devices[0] (sw1): faults[0]: kind: "explode" unknown, allowed: interface_down, unreachable, reboot`,
		"invalid-interface-range.yaml":     `scenario testdata/invalid-interface-range.yaml: devices[0] (sw1): faults[0]: interface: 5 out of range, allowed 1..4`,
		"invalid-every-short.yaml":         `scenario testdata/invalid-every-short.yaml: devices[0] (sw1): faults[0]: every: 30s must exceed duration 1m0s`,
		"invalid-duplicate-community.yaml": `scenario testdata/invalid-duplicate-community.yaml: devices[1] (sw2): community "sw1": already used by devices[0]`,
		"invalid-no-interfaces.yaml":       `scenario testdata/invalid-no-interfaces.yaml: devices[0] (sw1): interfaces: 0 out of range, allowed 1..4096 (or set snmprec)`,
		"invalid-duration.yaml":            "scenario testdata/invalid-duration.yaml: line 6: cannot unmarshal !!str `soon` into time.Duration",
		"invalid-empty.yaml":               `scenario testdata/invalid-empty.yaml: empty document, want a devices list`,
	} {
		_, err := LoadScenario(filepath.Join("testdata", file))
		if err == nil {
			t.Errorf("%s: loaded without error", file)
			continue
		}
		if err.Error() != want {
			t.Errorf("%s:\n got %s\nwant %s", file, err, want)
		}
	}
	if _, err := LoadScenario("testdata/missing.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestDefaultScenario(t *testing.T) {
	sc := DefaultScenario()
	want := []struct {
		name  string
		ifs   int
		fault Fault
	}{
		{"core-sw1", 24, Fault{Kind: InterfaceDown, Interface: 3, At: 20 * time.Second, Duration: 60 * time.Second, Every: 180 * time.Second}},
		{"edge-sw1", 8, Fault{Kind: Unreachable, At: 30 * time.Second, Duration: 90 * time.Second, Every: 240 * time.Second}},
		{"edge-sw2", 8, Fault{Kind: Reboot, At: 150 * time.Second, Every: 300 * time.Second}},
	}
	if len(sc.Devices) != len(want) {
		t.Fatalf("default scenario has %d devices, want %d", len(sc.Devices), len(want))
	}
	for i, w := range want {
		d := sc.Devices[i]
		if d.Name != w.name || d.Community != w.name || d.Interfaces != w.ifs || len(d.Faults) != 1 || d.Faults[0] != w.fault {
			t.Errorf("device %d = %+v, want %s with %d interfaces and %+v", i, d, w.name, w.ifs, w.fault)
		}
	}
}

// TestDemoAgentConfig keeps docs/examples/agent-demo.yaml in step with the
// embedded scenario: one v2c target per device on 127.0.0.1:1161.
func TestDemoAgentConfig(t *testing.T) {
	data, err := os.ReadFile("../../docs/examples/agent-demo.yaml")
	if err != nil {
		t.Fatalf("read demo agent config: %v", err)
	}
	var cfg struct {
		Agent      map[string]any                                       `yaml:"agent"`
		Controller map[string]any                                       `yaml:"controller"`
		SNMP       map[string]any                                       `yaml:"snmp"`
		Targets    []struct{ Name, Address, Version, Community string } `yaml:"targets"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode demo agent config: %v", err)
	}
	if cfg.Agent["id"] != "demo-agent" || cfg.Controller["address"] != "127.0.0.1:7443" || cfg.SNMP["interval"] != "10s" {
		t.Errorf("demo config header = %+v %+v %+v", cfg.Agent, cfg.Controller, cfg.SNMP)
	}
	sc := DefaultScenario()
	if len(cfg.Targets) != len(sc.Devices) {
		t.Fatalf("demo config has %d targets, the scenario %d devices", len(cfg.Targets), len(sc.Devices))
	}
	for i, d := range sc.Devices {
		tg := cfg.Targets[i]
		if tg.Name != d.Name || tg.Community != d.Community || tg.Address != "127.0.0.1:1161" || tg.Version != "2c" {
			t.Errorf("target %d = %+v, want %s/%s at 127.0.0.1:1161 v2c", i, tg, d.Name, d.Community)
		}
	}
}

func TestGenerateScenario(t *testing.T) {
	sc, err := GenerateScenario(3, 48)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Devices[2].Name != "sim-00003" || sc.Devices[2].Community != "sim-00003" || sc.Devices[2].Interfaces != 48 {
		t.Errorf("device 3 = %+v", sc.Devices[2])
	}
	if _, err := GenerateScenario(0, 4); err == nil {
		t.Error("0 devices accepted")
	}
	if _, err := GenerateScenario(1, 0); err == nil {
		t.Error("0 interfaces accepted")
	}
}
