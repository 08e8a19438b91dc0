package main

import (
	"strings"
	"testing"
	"time"
)

// TestNetEval runs the network evaluation small (2 series per kind, 3
// days at 10 s) through the agent's engine: a link saturating is always
// found within 10 minutes, healthy diurnal traffic raises nothing, and the
// report names every fault kind.
func TestNetEval(t *testing.T) {
	res, healthy, err := runNet(2, 3, 10*time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		t.Logf("%s: %d of %d detected, %d openings, %d in faults, ttd %v", r.kind, r.detected, r.faults, r.detections, r.inFaults, r.ttd)
		if r.kind == "saturation" {
			if r.detected != r.faults || r.detections != r.inFaults {
				t.Errorf("saturation: %d of %d found, %d of %d openings in faults; want all, and no other opening", r.detected, r.faults, r.inFaults, r.detections)
			}
			for _, d := range r.ttd {
				if d > 10*time.Minute {
					t.Errorf("saturation found after %v, want within 10m", d)
				}
			}
		}
	}
	if n := len(healthy["ifHCInOctets_rate"]); n != 0 {
		t.Errorf("healthy traffic raised %d metric_anomaly: %v", n, healthy["ifHCInOctets_rate"])
	}
	var out strings.Builder
	printNet(&out, res, healthy, 2, 3, 10*time.Second)
	for _, fk := range faultKinds {
		if !strings.Contains(out.String(), fk.name) {
			t.Errorf("report lacks %s:\n%s", fk.name, out.String())
		}
	}
}

func TestNetFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"net", "--series", "0"}, "--series: must be at least 1"},
		{[]string{"net", "--days", "2"}, "--days: must be at least 3"},
		{[]string{"net", "--interval", "10m"}, "--interval: must be from 1s to 5m"},
	} {
		var out strings.Builder
		if err := run(c.args, &out, &out); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}
