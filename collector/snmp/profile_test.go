package snmp

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/profile"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
	"github.com/netaiops/netaiops/collector/snmpsim"
)

func allProfiles(t testing.TB) *Plan {
	t.Helper()
	ps, err := profile.Resolve([]string{"system", "if_mib", "host_resources", "ucd_snmp", "entity_sensor", "lldp_mib"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(ps)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// net-snmp's snmpd serves HOST-RESOURCES and UCD-SNMP: every shipped profile
// polls it, with derived memory and CPU utilisation.
func TestPollProfilesSNMPD(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{})
	o := opts(dev.Addr(), "2c", "public", 2*time.Second, 1)
	o.Plan, o.MaxWalks = allProfiles(t), 3
	p := NewPoller(nil)
	if r := p.Poll(context.Background(), o); r.Err != nil {
		t.Fatal(r.Err)
	}
	time.Sleep(1100 * time.Millisecond) // sysUpTime counts hundredths; a rate needs time to pass
	r := p.Poll(context.Background(), o)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if s, ok := find(r.Samples, "ifHCInOctets_rate", "lo"); !ok || s.Kind != collector.Rate || s.Value < 0 {
		t.Errorf("second poll: ifHCInOctets_rate for lo = %+v (found %v), want a rate (snmpd caches counters for seconds, so it may be 0)", s, ok)
	}
	for _, m := range []string{"sysUpTime", "sysName", "sysDescr", "ifOperStatus", "ifHCInOctets", "ifHighSpeed",
		"hrStorageSize", "memTotalReal", "ssCpuRawIdle", "laLoad", MetricMemoryUtilization} {
		if _, ok := find(r.Samples, m, ""); !ok {
			t.Errorf("no %s sample", m)
		}
	}
	if s, ok := find(r.Samples, "laLoad", ""); ok && (s.Labels.Get("laNames") != "Load-1" || s.Labels.Get("laIndex") != "1") {
		t.Errorf("laLoad = %+v, want laNames Load-1 on laIndex 1", s)
	}
	if s, ok := find(r.Samples, MetricMemoryUtilization, ""); ok && (s.Value <= 0 || s.Value > 100) {
		t.Errorf("memoryUtilization = %g", s.Value)
	}
	if s, ok := find(r.Samples, "ifHCInOctets", "lo"); !ok || s.Kind != collector.Counter || s.Labels.Get("ifDescr") != "lo" {
		t.Errorf("ifHCInOctets for lo = %+v", s)
	}
}

// Derived metrics from scripted values: ENTITY-SENSOR scale and precision,
// HOST-RESOURCES RAM.
func TestDerive(t *testing.T) {
	at := collector.Sample{Device: "d", Time: time.Unix(1, 0)}
	g := func(m string, v float64, kv ...string) collector.Sample {
		s := at
		s.Metric, s.Value, s.Labels = m, v, collector.NewLabels(kv...)
		return s
	}
	in := []collector.Sample{
		g("entPhySensorType", 8, "entPhysicalIndex", "5"), g("entPhySensorScale", 9, "entPhysicalIndex", "5"),
		g("entPhySensorPrecision", 1, "entPhysicalIndex", "5"), g("entPhySensorValue", 415, "entPhysicalIndex", "5"),
		g("entPhySensorType", 8, "entPhysicalIndex", "6"), g("entPhySensorScale", 8, "entPhysicalIndex", "6"),
		g("entPhySensorValue", 41000, "entPhysicalIndex", "6"),
		g("entPhySensorType", 4, "entPhysicalIndex", "7"), g("entPhySensorValue", 12, "entPhysicalIndex", "7"), // volts DC
		g("entPhySensorType", 8, "entPhysicalIndex", "8"), g("entPhySensorValue", 99, "entPhysicalIndex", "8"),
		g("entPhySensorOperStatus", 2, "entPhysicalIndex", "8"), // unavailable
		g("hrStorageSize", 1000, "hrStorageIndex", "1", "hrStorageType", hrStorageRAM),
		g("hrStorageUsed", 250, "hrStorageIndex", "1", "hrStorageType", hrStorageRAM),
		g("ssCpuIdle", 93),
	}
	out := derive(in, at)[len(in):]
	var got []string
	for _, s := range out {
		got = append(got, fmt.Sprintf("%s%s %g", s.Metric, s.Labels, s.Value))
	}
	want := []string{`memoryUtilization{} 25`, `cpuUtilization{} 7`,
		`temperatureCelsius{entPhysicalIndex="5"} 41.5`, `temperatureCelsius{entPhysicalIndex="6"} 41`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("derived:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The recorded walks of real devices (duplicated OIDs, wrong types, text
// under Opaque, interface counts without rows) poll through the simulator
// with every profile: no panic, no hang, no poll error, no NaN.
func TestPollRecordings(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "snmprec")
	files, _ := filepath.Glob(filepath.Join(dir, "*.snmprec"))
	if len(files) == 0 {
		t.Skipf("no recordings in %s", dir)
	}
	sc := &snmpsim.Scenario{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".snmprec")
		sc.Devices = append(sc.Devices, snmpsim.DeviceSpec{Name: name, SNMPRec: abs})
	}
	srv, err := snmpsim.NewServer(sc, snmpsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addr := startSim(t, srv)
	plan := allProfiles(t)
	p := NewPoller(nil)
	for _, d := range sc.Devices {
		t.Run(d.Name, func(t *testing.T) {
			for _, version := range []string{"2c", "1"} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				o := Options{Target: collector.Target{Name: d.Name, Address: addr, Version: version}, Community: d.Name,
					Timeout: 2 * time.Second, Retries: 1, MaxRepetitions: 25, Plan: plan, MaxWalks: 2}
				r := p.Poll(ctx, o)
				cancel()
				if r.Err != nil {
					t.Fatalf("v%s: %v", version, r.Err)
				}
				for _, s := range r.Samples {
					if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
						t.Errorf("v%s: %s%s = %g", version, s.Metric, s.Labels, s.Value)
					}
				}
			}
		})
	}
}

func startSim(t *testing.T, srv *snmpsim.Server) string {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, conn) }()
	t.Cleanup(func() { cancel(); <-done })
	return conn.LocalAddr().String()
}

func TestCompareOIDs(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{".1.3.6", ".1.3.6", 0}, {".1.3.6", ".1.3.6.1", -1}, {".1.3.6.1", ".1.3.6", 1},
		{".1.3.9", ".1.3.10", -1}, {".1.3.10", ".1.3.9", 1}, {".1.3.10.1", ".1.3.9.5", 1},
		{".1.3.6.1.2.1.2.2.1.2.1", ".1.3.6.1.2.1.2.2.1.10.1", -1}, {"1.7", "1", 1}, {"2", "10", -1},
		{".1.3.6.1.4.1.4294967295", ".1.3.6.1.4.1.4294967294.9", 1}, {"", "1", -1}, {".1.3", ".1.3.0", -1},
	}
	for _, tt := range tests {
		if got := compareOIDs(tt.a, tt.b); got != tt.want {
			t.Errorf("compareOIDs(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareOIDs(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareOIDs(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// LLDP remote tables are known for OIDs that do not increase: the walk stops
// there, the neighbours read before are kept, with the local port joined from
// lldpLocPortTable through lldpLocPortNum.
func TestPollLLDPLoop(t *testing.T) {
	const (
		rem = ".1.0.8802.1.1.2.1.4.1.1"
		loc = ".1.0.8802.1.1.2.1.3.7.1"
	)
	data := []gosnmp.SnmpPDU{
		{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: uint32(100)},
		str(loc+".3.1", "Gi0/1"), str(loc+".3.2", "Gi0/2"),
		str(rem+".7.0.1.1", "Eth1"), str(rem+".7.0.2.1", "Eth9"),
		str(rem+".9.0.1.1", "peer-a"), str(rem+".9.0.2.1", "peer-b"),
	}
	good := served(data...)
	dev := newFakeDevice(t, func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
		// After peer-a's sysName the device goes back to the first row.
		if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == rem+".9.0.1.1" {
			return []gosnmp.SnmpPDU{str(rem+".7.0.1.1", "Eth1")}, gosnmp.NoError, 0
		}
		return good(req)
	})
	ps, err := profile.Resolve([]string{"system", "lldp_mib"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := fakeOpts(dev.addr, "2c")
	if o.Plan, err = Compile(ps); err != nil {
		t.Fatal(err)
	}
	o.MaxRepetitions = 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r := NewPoller(nil).Poll(ctx, o)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	got := sampleStrings(r.Samples)
	want := `lldpRemSysName{lldpLocPortId="Gi0/1",lldpLocPortNum="1",lldpRemIndex="1",lldpRemPortId="Eth1",lldpRemSysName="peer-a",lldpRemTimeMark="0"} 1`
	if !strings.Contains(got, want+"\n") || strings.Contains(got, "peer-b") {
		t.Errorf("samples:\n%s\nwant %s and no peer-b (after the loop)", got, want)
	}
}
