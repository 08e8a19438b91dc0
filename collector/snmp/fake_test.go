package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netaiops/netaiops/collector"
)

// fakeDevice answers SNMP on a real loopback socket with replies a test
// scripts (nil varbinds and no error: no answer at all): the faults a real snmpd cannot be made to produce (OIDs that do
// not increase, values of the wrong type, agent errors).
type fakeDevice struct {
	addr    string
	respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)
	// before, when set, returns raw datagrams sent ahead of each answer
	// (garbage, answers to other requests).
	before func(req *gosnmp.SnmpPacket, from net.Addr) [][]byte
}

func newFakeDevice(t *testing.T, respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)) *fakeDevice {
	t.Helper()
	return newHostileDevice(t, respond, nil)
}

// newHostileDevice is a fakeDevice that sends the datagrams before returns
// ahead of each answer.
func newHostileDevice(t *testing.T, respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8),
	before func(req *gosnmp.SnmpPacket, from net.Addr) [][]byte) *fakeDevice {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDevice{addr: conn.LocalAddr().String(), respond: respond, before: before}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		dec := &gosnmp.GoSNMP{}
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed by cleanup
			}
			req, err := dec.SnmpDecodePacket(buf[:n])
			if err != nil {
				t.Errorf("fake device: decode request: %v", err)
				continue
			}
			if d.before != nil {
				for _, b := range d.before(req, from) {
					_, _ = conn.WriteTo(b, from)
				}
			}
			vars, status, index := d.respond(req)
			if vars == nil && status == gosnmp.NoError {
				continue // respond asked for silence
			}
			resp := gosnmp.SnmpPacket{Version: req.Version, Community: req.Community, PDUType: gosnmp.GetResponse,
				RequestID: req.RequestID, Error: status, ErrorIndex: index, Variables: vars}
			out, err := resp.MarshalMsg()
			if err != nil {
				t.Errorf("fake device: encode response: %v", err)
				continue
			}
			_, _ = conn.WriteTo(out, from)
		}
	}()
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return d
}

// served serves Get, GetNext and GetBulk from a list of varbinds, as a
// well-behaved agent does.
func served(in ...gosnmp.SnmpPDU) func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
	vbs := append([]gosnmp.SnmpPDU(nil), in...) // callers share backing arrays
	sort.Slice(vbs, func(i, j int) bool { return cmp(vbs[i].Name, vbs[j].Name) < 0 })
	next := func(name string) gosnmp.SnmpPDU {
		for _, v := range vbs {
			if cmp(v.Name, name) > 0 {
				return v
			}
		}
		return gosnmp.SnmpPDU{Name: name, Type: gosnmp.EndOfMibView}
	}
	return func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
		var out []gosnmp.SnmpPDU
		switch req.PDUType {
		case gosnmp.GetRequest:
			for _, r := range req.Variables {
				v := gosnmp.SnmpPDU{Name: r.Name, Type: gosnmp.NoSuchObject}
				for _, e := range vbs {
					if e.Name == r.Name {
						v = e
					}
				}
				out = append(out, v)
			}
		case gosnmp.GetNextRequest:
			for _, r := range req.Variables {
				out = append(out, next(r.Name))
			}
		case gosnmp.GetBulkRequest:
			name := req.Variables[0].Name
			for i := uint32(0); i < req.MaxRepetitions; i++ {
				v := next(name)
				out = append(out, v)
				if v.Type == gosnmp.EndOfMibView {
					break
				}
				name = v.Name
			}
		}
		return out, gosnmp.NoError, 0
	}
}

func cmp(a, b string) int { return compareOIDs(a, b) }

func str(oid, s string) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.OctetString, Value: []byte(s)}
}
func integer(oid string, i int) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Integer, Value: i}
}
func counter64(oid string, u uint64) gosnmp.SnmpPDU {
	return gosnmp.SnmpPDU{Name: oid, Type: gosnmp.Counter64, Value: u}
}

// oldDevice has the system group and an ifTable, but no ifXTable and no sysName.
func oldDevice() []gosnmp.SnmpPDU {
	return []gosnmp.SnmpPDU{
		{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: uint32(12345)},
		str(oidIfDescr+".1", "Ethernet0\x00"),
		str(oidIfDescr+".2", "Serial\xff0"),
		integer(oidIfAdminStatus+".1", 1), integer(oidIfAdminStatus+".2", 2),
		integer(oidIfOperStatus+".1", 1), integer(oidIfOperStatus+".2", 2),
		integer(".1.3.6.1.2.1.2.2.1.9.1", 0), // ifLastChange: the next column, must not be read
	}
}

func fakeOpts(addr, version string) Options {
	return Options{Target: collector.Target{Name: "fake", Address: addr, Version: version},
		Community: "public", Timeout: 500 * time.Millisecond, MaxRepetitions: 3}
}

func TestPollOldDevice(t *testing.T) {
	dev := newFakeDevice(t, served(oldDevice()...))
	r := NewPoller(nil).Poll(context.Background(), fakeOpts(dev.addr, "2c"))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	var got []string
	for _, s := range r.Samples {
		got = append(got, fmt.Sprintf("%s%s %s %g", s.Metric, s.Labels, s.Kind, s.Value))
	}
	want := []string{
		`sysUpTime{} gauge 123.45`,
		`ifAdminStatus{ifDescr="Ethernet0",ifIndex="1",ifName="Ethernet0"} gauge 1`,
		`ifOperStatus{ifDescr="Ethernet0",ifIndex="1",ifName="Ethernet0"} gauge 1`,
		`ifLastChange{ifDescr="Ethernet0",ifIndex="1",ifName="Ethernet0"} gauge 0`,
		`ifAdminStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} gauge 2`,
		`ifOperStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} gauge 2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const (
	oidIfTable  = ".1.3.6.1.2.1.2.2.1"
	oidIfXTable = ".1.3.6.1.2.1.31.1.1.1"
)

// sampleStrings renders samples as metric{labels} value, one per line.
func sampleStrings(samples []collector.Sample) string {
	var b strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&b, "%s%s %g\n", s.Metric, s.Labels, s.Value)
	}
	return b.String()
}

// Device bugs that end one walk early or spoil one varbind keep the rest of
// the poll: a broken LLDP table must not make a reachable device look down.
func TestPollFaults(t *testing.T) {
	base := append(oldDevice(), str(oidIfName+".1", "et0"), counter64(oidIfHCInOctets+".1", 1<<40), counter64(oidIfHCOutOctets+".1", 7))
	good := served(base...)
	tests := []struct {
		name    string
		version string
		respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)
		has     []string // lines the samples must contain
		hasNot  []string // substrings no sample line may contain
	}{
		{
			name: "same OID again", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && strings.HasPrefix(req.Variables[0].Name, oidIfTable) {
					return []gosnmp.SnmpPDU{str(oidIfDescr+".1", "a")}, gosnmp.NoError, 0
				}
				return good(req)
			},
			has:    []string{`ifHCInOctets{ifDescr="a",ifIndex="1",ifName="et0"} 1.099511627776e+12`},
			hasNot: []string{"ifOperStatus"},
		},
		{
			name: "decreasing OID in one response", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == oidIfTable {
					return []gosnmp.SnmpPDU{integer(oidIfOperStatus+".5", 1), integer(oidIfOperStatus+".3", 1)}, gosnmp.NoError, 0
				}
				return good(req)
			},
			has:    []string{`ifOperStatus{ifIndex="5"} 1`, `ifHCOutOctets{ifIndex="1",ifName="et0"} 7`},
			hasNot: []string{`ifIndex="3"`},
		},
		{
			name: "v1 GetNext going backwards", version: "1",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetNextRequest && strings.HasPrefix(req.Variables[0].Name, oidIfAdminStatus+".2") {
					return []gosnmp.SnmpPDU{integer(oidIfAdminStatus+".1", 1)}, gosnmp.NoError, 0
				}
				return good(req)
			},
			has:    []string{`ifAdminStatus{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 1`, `ifAdminStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} 2`},
			hasNot: []string{"ifOperStatus"},
		},
		{
			name: "number of the wrong type", version: "2c",
			respond: served(append(oldDevice(), str(oidIfName+".1", "et0"), str(oidIfHCInOctets+".1", "lots"),
				str(".1.3.6.1.2.1.31.1.1.1.15.1", " 1000 "), counter64(oidIfHCOutOctets+".1", 7))...),
			has:    []string{`ifHCOutOctets{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 7`, `ifHighSpeed{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 1000`},
			hasNot: []string{"ifHCInOctets"},
		},
		{
			name: "text of the wrong type", version: "2c",
			respond: served(append(base, gosnmp.SnmpPDU{Name: oidSysName, Type: gosnmp.Null})...),
			has:     []string{`sysUpTime{} 123.45`},
			hasNot:  []string{"sysName"},
		},
		{
			name: "index longer than ifIndex", version: "2c",
			respond: served(append(base, str(oidIfName+".1.7", "x"), integer(oidIfOperStatus+".1.7", 1))...),
			has:     []string{`ifOperStatus{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 1`, `ifOperStatus{ifIndex="1.7",ifName="x"} 1`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeDevice(t, tt.respond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := NewPoller(nil).Poll(ctx, fakeOpts(dev.addr, tt.version))
			if r.Err != nil {
				t.Fatalf("err = %v, want a poll that keeps the good data", r.Err)
			}
			got := sampleStrings(r.Samples)
			for _, h := range tt.has {
				if !strings.Contains(got, h+"\n") {
					t.Errorf("samples lack %s:\n%s", h, got)
				}
			}
			for _, h := range tt.hasNot {
				if strings.Contains(got, h) {
					t.Errorf("samples contain %s:\n%s", h, got)
				}
			}
		})
	}
	t.Run("agent error", func(t *testing.T) {
		dev := newFakeDevice(t, func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
			if req.PDUType == gosnmp.GetRequest {
				return req.Variables, gosnmp.GenErr, 1
			}
			return good(req)
		})
		r := NewPoller(nil).Poll(context.Background(), fakeOpts(dev.addr, "2c"))
		want := fmt.Sprintf("poll fake (%s): get scalars: device answered GenErr (error index 1)", dev.addr)
		if r.Err == nil || r.Err.Error() != want || errors.Is(r.Err, ErrTimeout) {
			t.Errorf("err = %v\nwant %s", r.Err, want)
		}
	})
}

// counting wraps a responder and counts requests by PDU type and the
// largest max-repetitions and Get size seen.
type counting struct {
	mu      sync.Mutex
	byType  map[gosnmp.PDUType]int
	maxGet  int
	respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)
}

func (c *counting) serve(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
	c.mu.Lock()
	if c.byType == nil {
		c.byType = map[gosnmp.PDUType]int{}
	}
	c.byType[req.PDUType]++
	if req.PDUType == gosnmp.GetRequest {
		c.maxGet = max(c.maxGet, len(req.Variables))
	}
	c.mu.Unlock()
	return c.respond(req)
}

func (c *counting) count(t gosnmp.PDUType) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byType[t]
}

func (c *counting) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byType, c.maxGet = nil, 0
}

// The failure modes users of other pollers report, each against a device
// scripted to have it: the poll must adapt and read everything.
func TestPollWalkAdapts(t *testing.T) {
	data := append(oldDevice(), str(oidIfName+".1", "et0"), counter64(oidIfHCInOctets+".1", 1<<40), counter64(oidIfHCOutOctets+".1", 7),
		str(oidSysName, "old-router"), str(".1.3.6.1.2.1.1.1.0", "descr"))
	good := served(data...)
	want := []string{`sysName{sysName="old-router"} 1`, `ifOperStatus{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 1`,
		`ifHCInOctets{ifDescr="Ethernet0",ifIndex="1",ifName="et0"} 1.099511627776e+12`, `ifOperStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} 2`}
	tests := []struct {
		name    string
		respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)
		opts    func(o *Options)
		check   func(t *testing.T, c *counting, p *Poller, o Options)
	}{
		{
			name: "GetBulk answered with genErr: fall back to GetNext, and stay there",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest {
					return req.Variables, gosnmp.GenErr, 1
				}
				return good(req)
			},
			check: func(t *testing.T, c *counting, p *Poller, o Options) {
				c.reset()
				if r := p.Poll(context.Background(), o); r.Err != nil {
					t.Fatal(r.Err)
				}
				if n := c.count(gosnmp.GetBulkRequest); n != 0 {
					t.Errorf("second poll sent %d GetBulk requests to a device that cannot answer them", n)
				}
			},
		},
		{
			name: "GetBulk answered with no varbinds: fall back to GetNext",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest {
					return []gosnmp.SnmpPDU{}, gosnmp.NoError, 0
				}
				return good(req)
			},
		},
		{
			name: "GetBulk too big: fewer repetitions",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.MaxRepetitions > 2 {
					return req.Variables, gosnmp.TooBig, 0
				}
				return good(req)
			},
			opts: func(o *Options) { o.MaxRepetitions = 8 },
		},
		{
			name: "large GetBulk never answered (where snmpbulkwalk with -Cr small works): fewer repetitions",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.MaxRepetitions > 2 {
					return nil, gosnmp.NoError, 0 // silence
				}
				return good(req)
			},
			opts: func(o *Options) { o.MaxRepetitions, o.Timeout, o.Retries = 8, 150*time.Millisecond, 0 },
		},
		{
			name: "Get too big: smaller Gets",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetRequest && len(req.Variables) > 1 {
					return req.Variables, gosnmp.TooBig, 0
				}
				return good(req)
			},
		},
		{
			name:    "max OIDs per Get",
			respond: good,
			opts:    func(o *Options) { o.MaxOIDsPerGet = 3 },
			check: func(t *testing.T, c *counting, p *Poller, o Options) {
				c.mu.Lock()
				largest := c.maxGet
				c.mu.Unlock()
				if largest != 3 || c.count(gosnmp.GetRequest) != 2 {
					t.Errorf("Gets: %d, largest %d OIDs; want 2 Gets of at most 3 OIDs for the 4 system scalars", c.count(gosnmp.GetRequest), largest)
				}
			},
		},
		{
			name:    "tables walked whole, two at a time",
			respond: good,
			opts:    func(o *Options) { o.MaxWalks, o.MaxRepetitions = 2, 50 },
			check: func(t *testing.T, c *counting, p *Poller, o Options) {
				// One GetBulk per table: the table is walked as a whole, not column by column.
				if n := c.count(gosnmp.GetBulkRequest); n != 2 {
					t.Errorf("%d GetBulk requests, want 2 (one per table)", n)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &counting{respond: tt.respond}
			dev := newFakeDevice(t, c.serve)
			o := fakeOpts(dev.addr, "2c")
			if tt.opts != nil {
				tt.opts(&o)
			}
			p := NewPoller(nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r := p.Poll(ctx, o)
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			got := sampleStrings(r.Samples)
			for _, w := range want {
				if !strings.Contains(got, w+"\n") {
					t.Errorf("samples lack %s:\n%s", w, got)
				}
			}
			if tt.check != nil {
				tt.check(t, c, p, o)
			}
		})
	}
}

// In SNMPv1 a Get of an object the device lacks fails the whole request with
// noSuchName; the poll asks again without it.
func TestPollV1NoSuchName(t *testing.T) {
	inner := served(oldDevice()...)
	dev := newFakeDevice(t, func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
		if req.PDUType == gosnmp.GetRequest {
			for i, v := range req.Variables {
				if v.Name == oidSysName {
					return req.Variables, gosnmp.NoSuchName, uint8(i + 1)
				}
			}
		}
		if req.PDUType == gosnmp.GetNextRequest && cmp(req.Variables[0].Name, ".1.3.6.1.2.1.2.2.1.9") > 0 {
			return req.Variables, gosnmp.NoSuchName, 1 // v1's end of MIB view
		}
		return inner(req)
	})
	r := NewPoller(nil).Poll(context.Background(), fakeOpts(dev.addr, "1"))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if up, ok := find(r.Samples, "sysUpTime", ""); !ok || up.Value != 123.45 {
		t.Errorf("sysUpTime = %+v (found %v)", up, ok)
	}
	if _, ok := find(r.Samples, "sysName", ""); ok {
		t.Errorf("sysName sample from a device without sysName")
	}
	if _, ok := find(r.Samples, "ifOperStatus", "Ethernet0"); !ok {
		t.Errorf("no ifOperStatus for Ethernet0: %v", r.Samples)
	}
}

// A device that never answers gets exactly retries+1 requests for the first
// step, and the poll fails with ErrTimeout after timeout*(retries+1).
func TestPollRetries(t *testing.T) {
	for _, retries := range []int{0, 2} {
		t.Run(fmt.Sprint("retries ", retries), func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			dev := newFakeDevice(t, func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				mu.Lock()
				requests++
				mu.Unlock()
				return nil, gosnmp.NoError, 0
			})
			o := fakeOpts(dev.addr, "2c")
			o.Timeout, o.Retries = 150*time.Millisecond, retries
			start := time.Now()
			r := NewPoller(nil).Poll(context.Background(), o)
			took := time.Since(start)
			if !errors.Is(r.Err, ErrTimeout) {
				t.Errorf("err = %v, want ErrTimeout", r.Err)
			}
			if min := o.Timeout * time.Duration(retries+1); took < min {
				t.Errorf("took %v, want at least %v", took, min)
			}
			mu.Lock()
			defer mu.Unlock()
			if requests != retries+1 {
				t.Errorf("device got %d requests, want %d", requests, retries+1)
			}
		})
	}
}
