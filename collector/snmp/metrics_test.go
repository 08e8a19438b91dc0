package snmp

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netaiops/netaiops/collector"
)

// Every poll is counted by target and result, and timed.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPoller(nil, WithMetrics(m))

	// ok, with a walk fault and a dropped varbind
	good := served(append(oldDevice(), str(oidIfName+".1", "et0"), str(oidIfHCInOctets+".1", "lots"))...)
	dev := newFakeDevice(t, func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
		if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == oidIfTable {
			return []gosnmp.SnmpPDU{integer(oidIfOperStatus+".5", 1), integer(oidIfOperStatus+".3", 1)}, gosnmp.NoError, 0
		}
		return good(req)
	})
	if r := p.Poll(context.Background(), fakeOpts(dev.addr, "2c")); r.Err != nil {
		t.Fatal(r.Err)
	}
	// timeout
	silent := newFakeDevice(t, func(*gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) { return nil, gosnmp.NoError, 0 })
	o := fakeOpts(silent.addr, "2c")
	o.Target.Name, o.Timeout, o.Retries = "dead", 50*time.Millisecond, 0
	p.Poll(context.Background(), o)
	// error
	o = fakeOpts(dev.addr, "2")
	o.Target.Name = "misconfigured"
	p.Poll(context.Background(), o)
	m.Skipped("dead", 2)

	want := `
# HELP netaiops_snmp_polls_total SNMP polls by target and result (ok, timeout, auth_failure, error).
# TYPE netaiops_snmp_polls_total counter
netaiops_snmp_polls_total{result="error",target="misconfigured"} 1
netaiops_snmp_polls_total{result="ok",target="fake"} 1
netaiops_snmp_polls_total{result="timeout",target="dead"} 1
# HELP netaiops_snmp_walk_faults_total Table walks ended early on a device bug (rows read before are kept), by target and fault.
# TYPE netaiops_snmp_walk_faults_total counter
netaiops_snmp_walk_faults_total{fault="not_increasing",target="fake"} 1
# HELP netaiops_snmp_varbinds_dropped_total Varbinds dropped as undecodable (wrong type, not a number), by target.
# TYPE netaiops_snmp_varbinds_dropped_total counter
netaiops_snmp_varbinds_dropped_total{target="fake"} 1
# HELP netaiops_snmp_polls_skipped_total Polls not started because the previous poll of the target overran its interval.
# TYPE netaiops_snmp_polls_skipped_total counter
netaiops_snmp_polls_skipped_total{target="dead"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "netaiops_snmp_polls_total",
		"netaiops_snmp_walk_faults_total", "netaiops_snmp_varbinds_dropped_total", "netaiops_snmp_polls_skipped_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 3 {
		t.Errorf("%d duration histograms, want one per target (3)", n)
	}
	if v := testutil.ToFloat64(m.varbinds.WithLabelValues("fake")); v < 3 {
		t.Errorf("varbinds of fake = %g, want the walked ones", v)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Error("registering twice did not fail")
	}
}

func TestResult(t *testing.T) {
	for err, want := range map[error]string{nil: ResultOK, fmt.Errorf("poll x: %w", ErrTimeout): ResultTimeout,
		fmt.Errorf("x: %w", ErrAuthFailure): ResultAuthFailure, fmt.Errorf("x"): ResultError} {
		if got := Result(err); got != want {
			t.Errorf("Result(%v) = %s, want %s", err, got, want)
		}
	}
	_ = collector.Poll{}
}
