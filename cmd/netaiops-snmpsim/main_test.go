package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildScenario(t *testing.T) {
	sc, err := buildScenario("", "", 0, 24)
	if err != nil || len(sc.Devices) != 3 || sc.Devices[0].Name != "core-sw1" {
		t.Fatalf("default: %v, %+v", err, sc)
	}
	sc, err = buildScenario("", "", 5, 8)
	if err != nil || len(sc.Devices) != 5 || sc.Devices[4].Name != "sim-00005" || sc.Devices[4].Interfaces != 8 {
		t.Fatalf("--devices 5: %v, %+v", err, sc)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sw-a.snmprec"), []byte("1.3.6.1.2.1.1.5.0|4|a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err = buildScenario("", dir, 0, 24)
	if err != nil || len(sc.Devices) != 1 || sc.Devices[0].Community != "sw-a" {
		t.Fatalf("--snmprec-dir: %v, %+v", err, sc)
	}
	for _, tc := range []struct {
		file, dir string
		n         int
		want      string
	}{
		{"x.yaml", dir, 0, "exclusive"},
		{"", dir, 3, "exclusive"},
		{"", "", -1, "--devices: -1"},
		{"", t.TempDir(), 0, "no .snmprec or .snmpwalk files"},
		{filepath.Join(dir, "missing.yaml"), "", 0, "missing.yaml"},
	} {
		_, err := buildScenario(tc.file, tc.dir, tc.n, 24)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("buildScenario(%q, %q, %d): %v, want error containing %q", tc.file, tc.dir, tc.n, err, tc.want)
		}
	}
}
