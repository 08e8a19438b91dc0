package snmpsim

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// fakeClock is the injected time source: tests move it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

var t0 = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set puts the clock at d after the simulator's start.
func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t0.Add(d)
}

// serve starts srv on 127.0.0.1:0 and stops it (waiting for Serve) at the
// end of the test.
func serve(t testing.TB, srv *Server) *net.UDPAddr {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("serve did not stop within 5s of cancel")
		}
	})
	return conn.LocalAddr().(*net.UDPAddr)
}

func newServer(t testing.TB, sc *Scenario, clk *fakeClock, opts Options) *Server {
	t.Helper()
	if clk != nil {
		opts.Clock = clk.Now
		opts.Start = t0
	}
	srv, err := NewServer(sc, opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	return srv
}

func client(t testing.TB, addr *net.UDPAddr, community string, v gosnmp.SnmpVersion) *gosnmp.GoSNMP {
	t.Helper()
	g := &gosnmp.GoSNMP{
		Target:         addr.IP.String(),
		Port:           uint16(addr.Port),
		Community:      community,
		Version:        v,
		Timeout:        time.Second,
		Retries:        0,
		MaxRepetitions: 25,
	}
	if err := g.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

func mustGet(t *testing.T, g *gosnmp.GoSNMP, oids ...string) []gosnmp.SnmpPDU {
	t.Helper()
	p, err := g.Get(oids)
	if err != nil {
		t.Fatalf("get %v: %v", oids, err)
	}
	if p.Error != gosnmp.NoError {
		t.Fatalf("get %v: error status %v index %d", oids, p.Error, p.ErrorIndex)
	}
	return p.Variables
}

func demo(t *testing.T) (*Server, *fakeClock, *net.UDPAddr) {
	clk := newFakeClock()
	srv := newServer(t, DefaultScenario(), clk, Options{})
	return srv, clk, serve(t, srv)
}

func TestGetV2c(t *testing.T) {
	_, _, addr := demo(t)
	g := client(t, addr, "core-sw1", gosnmp.Version2c)
	vs := mustGet(t, g, ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.2.1.0", ".1.3.6.1.2.1.2.2.1.2.3",
		".1.3.6.1.2.1.31.1.1.1.6.24", ".1.3.6.1.2.1.1.5.1", ".1.3.6.1.2.1.1.99.0", ".1.3.6.1.2.1.2.2.1.2.25")
	if got := string(vs[0].Value.([]byte)); got != "core-sw1" {
		t.Errorf("sysName = %q, want core-sw1", got)
	}
	if got := vs[1].Value; got != 24 {
		t.Errorf("ifNumber = %v, want 24", got)
	}
	if got := string(vs[2].Value.([]byte)); got != "GigabitEthernet1/0/3" {
		t.Errorf("ifDescr.3 = %q", got)
	}
	if vs[3].Type != gosnmp.Counter64 {
		t.Errorf("ifHCInOctets.24 type = %v, want Counter64", vs[3].Type)
	}
	for i, want := range map[int]gosnmp.Asn1BER{4: gosnmp.NoSuchInstance, 5: gosnmp.NoSuchObject, 6: gosnmp.NoSuchInstance} {
		if vs[i].Type != want {
			t.Errorf("varbind %d (%s) type = %v, want %v", i, vs[i].Name, vs[i].Type, want)
		}
	}
}

func TestGetV1(t *testing.T) {
	_, _, addr := demo(t)
	g := client(t, addr, "edge-sw2", gosnmp.Version1)
	vs := mustGet(t, g, ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.2.2.1.8.1")
	if string(vs[0].Value.([]byte)) != "edge-sw2" || vs[1].Value != 1 {
		t.Errorf("got %v, %v; want edge-sw2, up(1)", vs[0].Value, vs[1].Value)
	}
	// A missing OID, and a Counter64 (which v1 cannot carry), are noSuchName
	// with the 1-based index of the first offender.
	for _, tc := range []struct {
		oids  []string
		index uint8
	}{
		{[]string{".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.99.0"}, 2},
		{[]string{".1.3.6.1.2.1.31.1.1.1.6.1"}, 1},
	} {
		p, err := g.Get(tc.oids)
		if err != nil {
			t.Fatalf("get %v: %v", tc.oids, err)
		}
		if p.Error != gosnmp.NoSuchName || p.ErrorIndex != tc.index {
			t.Errorf("get %v: error %v index %d, want noSuchName index %d", tc.oids, p.Error, p.ErrorIndex, tc.index)
		}
	}
	// GetNext over the HC columns skips the Counter64s.
	p, err := g.GetNext([]string{".1.3.6.1.2.1.31.1.1.1.1.8"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Variables[0].Name; got != ".1.3.6.1.2.1.31.1.1.1.15.1" {
		t.Errorf("v1 getnext after ifName.8 = %s, want ifHighSpeed.1", got)
	}
	// Past the end: noSuchName in v1, endOfMibView in v2c.
	p, err = g.GetNext([]string{".1.3.6.1.2.1.99"})
	if err != nil || p.Error != gosnmp.NoSuchName {
		t.Errorf("v1 getnext past end: %v, error %v; want noSuchName", err, p.Error)
	}
	g2 := client(t, addr, "edge-sw2", gosnmp.Version2c)
	p, err = g2.GetNext([]string{".1.3.6.1.2.1.99"})
	if err != nil || p.Variables[0].Type != gosnmp.EndOfMibView {
		t.Errorf("v2c getnext past end: %v, %v; want endOfMibView", err, p.Variables)
	}
}

func TestBulkWalkIfMIB(t *testing.T) {
	_, _, addr := demo(t)
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version2c, gosnmp.Version1} {
		t.Run(v.String(), func(t *testing.T) {
			g := client(t, addr, "core-sw1", v)
			walk := g.BulkWalkAll
			if v == gosnmp.Version1 {
				walk = g.WalkAll
			}
			rows, err := walk(".1.3.6.1.2.1.2.2")
			if err != nil {
				t.Fatalf("walk ifTable: %v", err)
			}
			if want := 24 * 17; len(rows) != want {
				t.Fatalf("ifTable: %d varbinds, want %d", len(rows), want)
			}
			for i := range 24 {
				if rows[i].Value != i+1 {
					t.Errorf("ifIndex row %d = %v, want %d", i, rows[i].Value, i+1)
				}
			}
			x, err := walk(".1.3.6.1.2.1.31.1.1")
			if err != nil {
				t.Fatalf("walk ifXTable: %v", err)
			}
			want := 24 * 8
			if v == gosnmp.Version1 {
				want = 24 * 4 // the four HC columns are Counter64
			}
			if len(x) != want {
				t.Fatalf("ifXTable: %d varbinds, want %d", len(x), want)
			}
			if got := string(x[2].Value.([]byte)); got != "Gi1/0/3" {
				t.Errorf("ifName.3 = %q", got)
			}
		})
	}
}

func TestUnknownCommunityIsSilent(t *testing.T) {
	srv, _, addr := demo(t)
	g := client(t, addr, "not-a-device", gosnmp.Version2c)
	g.Timeout = 200 * time.Millisecond
	if _, err := g.Get([]string{".1.3.6.1.2.1.1.5.0"}); err == nil {
		t.Fatal("get with an unknown community got an answer")
	}
	if st := srv.Stats(); st.DroppedUnknownCommunity != 1 || st.Responses != 0 {
		t.Errorf("stats = %+v, want one unknown-community drop and no response", st)
	}
}

func TestSetIsRefused(t *testing.T) {
	srv, _, addr := demo(t)
	g := client(t, addr, "core-sw1", gosnmp.Version2c)
	p, err := g.Set([]gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.OctetString, Value: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Error != gosnmp.NoAccess {
		t.Errorf("set: error %v, want noAccess", p.Error)
	}
	if srv.Stats().Set != 1 {
		t.Errorf("set not counted")
	}
}

func TestGetBulkLimits(t *testing.T) {
	sc, err := GenerateScenario(1, 200)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, sc, newFakeClock(), Options{MaxMessageSize: 1472, MaxVarbinds: 60})
	enc := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: "sim-00001"}
	dec := &gosnmp.GoSNMP{}

	// Non-repeaters 1 (sysUpTime's successor), then ifDescr and ifSpeed rows.
	req, err := enc.SnmpEncodePacket(gosnmp.GetBulkRequest, []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.1.3", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.2.2.1.2", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.2.2.1.5", Type: gosnmp.Null},
	}, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dec.SnmpDecodePacket(srv.HandlePacket(req))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Variables) != 11 {
		t.Fatalf("getbulk nr=1 mr=5 over 2 columns: %d varbinds, want 11", len(p.Variables))
	}
	if p.Variables[0].Name != ".1.3.6.1.2.1.1.3.0" || p.Variables[1].Name != ".1.3.6.1.2.1.2.2.1.2.1" ||
		p.Variables[2].Name != ".1.3.6.1.2.1.2.2.1.5.1" || p.Variables[10].Name != ".1.3.6.1.2.1.2.2.1.5.5" {
		t.Errorf("getbulk order wrong: %v ... %v", p.Variables[:3], p.Variables[10])
	}

	// A huge max-repetitions is cut by the varbind cap, and by the size cap
	// for long values; both stay within the budget and are counted.
	for _, tc := range []struct {
		col  string
		want int
	}{{".1.3.6.1.2.1.2.2.1.1", 60}, {".1.3.6.1.2.1.2.2.1.2", 0}} {
		req, _ = enc.SnmpEncodePacket(gosnmp.GetBulkRequest, []gosnmp.SnmpPDU{{Name: tc.col, Type: gosnmp.Null}}, 0, 100000)
		out := srv.HandlePacket(req)
		if len(out) > 1472 {
			t.Errorf("%s: response %d bytes, cap 1472", tc.col, len(out))
		}
		p, err = dec.SnmpDecodePacket(out)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want > 0 && len(p.Variables) != tc.want {
			t.Errorf("%s: %d varbinds, want %d", tc.col, len(p.Variables), tc.want)
		}
		if len(p.Variables) == 0 || len(p.Variables) >= 60 && tc.want == 0 {
			t.Errorf("%s: %d varbinds, want some but fewer than the cap", tc.col, len(p.Variables))
		}
	}
	if got := srv.Stats().Truncated; got != 2 {
		t.Errorf("truncated = %d, want 2", got)
	}

	// A Get whose answer cannot fit answers tooBig with no varbinds.
	var many []gosnmp.SnmpPDU
	for i := 1; i <= 100; i++ {
		many = append(many, gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.2.2.1.2." + itoa(i), Type: gosnmp.Null})
	}
	req, _ = enc.SnmpEncodePacket(gosnmp.GetRequest, many, 0, 0)
	p, err = dec.SnmpDecodePacket(srv.HandlePacket(req))
	if err != nil {
		t.Fatal(err)
	}
	if p.Error != gosnmp.TooBig || len(p.Variables) != 0 {
		t.Errorf("oversized get: error %v with %d varbinds, want tooBig and none", p.Error, len(p.Variables))
	}
}

func itoa(i int) string { return OID{uint32(i)}.String()[1:] }

// TestVarbindSize checks the size estimate used for budgets against
// gosnmp's encoder, for every entry of a generated device.
func TestVarbindSize(t *testing.T) {
	clk := newFakeClock()
	srv := newServer(t, DefaultScenario(), clk, Options{})
	d := srv.devices["core-sw1"]
	snap := d.snapshot(12345)
	base := gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "c", PDUType: gosnmp.GetResponse, RequestID: 1}
	empty, _ := base.MarshalMsg()
	for i := range d.tab.entries {
		e := &d.tab.entries[i]
		typ, val := d.value(e, snap)
		vb := gosnmp.SnmpPDU{Name: e.name, Type: typ, Value: val}
		if e.nlen != oidContent(e.name) {
			t.Errorf("%s: precomputed oid length %d, want %d", e.name, e.nlen, oidContent(e.name))
		}
		p := base
		p.Variables = []gosnmp.SnmpPDU{vb}
		out, err := p.MarshalMsg()
		if err != nil {
			t.Fatalf("%s: marshal: %v", e.name, err)
		}
		// Both messages are under 128 bytes, so only the varbind differs.
		if got, want := vbSize(vb), len(out)-len(empty); got != want {
			t.Errorf("%s (%v %v): vbSize %d, encoded %d", e.name, typ, val, got, want)
		}
	}
	for _, vb := range []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1", Type: gosnmp.Integer, Value: -129},
		{Name: ".1.3.6.1", Type: gosnmp.Integer, Value: 128},
		{Name: ".1.3.6.1", Type: gosnmp.Counter32, Value: uint32(0xFFFFFFFF)},
		{Name: ".1.3.6.1", Type: gosnmp.Counter64, Value: uint64(1) << 63},
		{Name: ".1.3.6.1.4294967295", Type: gosnmp.ObjectIdentifier, Value: ".2.999.1"},
		{Name: ".1.3.6.1", Type: gosnmp.EndOfMibView},
	} {
		p := base
		p.Variables = []gosnmp.SnmpPDU{vb}
		out, err := p.MarshalMsg()
		if err != nil {
			t.Fatalf("%v: marshal: %v", vb, err)
		}
		if got, want := vbSize(vb), len(out)-len(empty); got != want {
			t.Errorf("%v: vbSize %d, encoded %d", vb, got, want)
		}
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newServer(t, DefaultScenario(), nil, Options{Workers: 3})
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	if _, err := conn.WriteTo([]byte{1}, conn.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("conn still open after serve returned: %v", err)
	}
	// Serve waited for its workers: nothing it started is left (the only
	// other goroutine is the one that ran Serve, which has returned).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after serve returned, %d before", n, before)
	}
}
