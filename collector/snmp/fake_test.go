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
}

func newFakeDevice(t *testing.T, respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)) *fakeDevice {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDevice{addr: conn.LocalAddr().String(), respond: respond}
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

// table serves Get, GetNext and GetBulk from a list of varbinds, as a
// well-behaved agent does.
func table(vbs ...gosnmp.SnmpPDU) func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
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

func cmp(a, b string) int {
	x, _ := parseOID(a)
	y, _ := parseOID(b)
	return compareOID(x, y)
}

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
	dev := newFakeDevice(t, table(oldDevice()...))
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
		`ifAdminStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} gauge 2`,
		`ifOperStatus{ifDescr="Serial` + "\uFFFD" + `0",ifIndex="2",ifName="Serial` + "\uFFFD" + `0"} gauge 2`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A device that sends back OIDs that do not increase must not make the walk loop.
func TestPollFaults(t *testing.T) {
	good := table(append(oldDevice(),
		str(oidIfName+".1", "et0"), counter64(oidIfHCInOctets+".1", 1<<40), counter64(oidIfHCOutOctets+".1", 7))...)
	tests := []struct {
		name    string
		version string
		respond func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8)
		want    string // error after "poll fake (addr): "
	}{
		{
			name: "same OID again", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && strings.HasPrefix(req.Variables[0].Name, oidIfDescr) {
					return []gosnmp.SnmpPDU{str(oidIfDescr+".1", "a")}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: "walk ifDescr: OID .1.3.6.1.2.1.2.2.1.2.1 does not increase after .1.3.6.1.2.1.2.2.1.2.1",
		},
		{
			name: "decreasing OID in one response", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == oidIfOperStatus {
					return []gosnmp.SnmpPDU{integer(oidIfOperStatus+".5", 1), integer(oidIfOperStatus+".3", 1)}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: "walk ifOperStatus: OID .1.3.6.1.2.1.2.2.1.8.3 does not increase after .1.3.6.1.2.1.2.2.1.8.5",
		},
		{
			name: "v1 GetNext going backwards", version: "1",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetNextRequest && strings.HasPrefix(req.Variables[0].Name, oidIfAdminStatus+".2") {
					return []gosnmp.SnmpPDU{integer(oidIfAdminStatus+".1", 1)}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: "walk ifAdminStatus: OID .1.3.6.1.2.1.2.2.1.7.1 does not increase after .1.3.6.1.2.1.2.2.1.7.2",
		},
		{
			name: "number of the wrong type", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == oidIfHCInOctets {
					return []gosnmp.SnmpPDU{str(oidIfHCInOctets+".1", "lots")}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: "walk ifHCInOctets: .1.3.6.1.2.1.31.1.1.1.6.1: want a number, got OctetString",
		},
		{
			name: "text of the wrong type", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetRequest {
					return []gosnmp.SnmpPDU{{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: uint32(1)}, integer(oidSysName, 3)}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: "get system: sysName: want an OCTET STRING, got Integer",
		},
		{
			name: "bad ifIndex", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetBulkRequest && req.Variables[0].Name == oidIfName {
					return []gosnmp.SnmpPDU{str(oidIfName+".1.7", "x")}, gosnmp.NoError, 0
				}
				return good(req)
			},
			want: `walk ifName: .1.3.6.1.2.1.31.1.1.1.1.1.7: bad ifIndex "1.7" (want 1-2147483647)`,
		},
		{
			name: "agent error", version: "2c",
			respond: func(req *gosnmp.SnmpPacket) ([]gosnmp.SnmpPDU, gosnmp.SNMPError, uint8) {
				if req.PDUType == gosnmp.GetRequest {
					return req.Variables, gosnmp.GenErr, 1
				}
				return good(req)
			},
			want: "get system: device answered GenErr (error index 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeDevice(t, tt.respond)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := NewPoller(nil).Poll(ctx, fakeOpts(dev.addr, tt.version))
			want := fmt.Sprintf("poll fake (%s): %s", dev.addr, tt.want)
			if r.Err == nil || r.Err.Error() != want {
				t.Errorf("err = %v\nwant %s", r.Err, want)
			}
			if errors.Is(r.Err, ErrTimeout) || errors.Is(r.Err, context.DeadlineExceeded) {
				t.Errorf("a protocol fault is classified as a timeout: %v", r.Err)
			}
		})
	}
	t.Run("well-behaved", func(t *testing.T) {
		dev := newFakeDevice(t, good)
		r := NewPoller(nil).Poll(context.Background(), fakeOpts(dev.addr, "2c"))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		in, ok := find(r.Samples, "ifHCInOctets", "et0")
		if !ok || in.Value != 1<<40 || in.Labels.Get("ifDescr") != "Ethernet0" || in.Labels.Get("ifIndex") != "1" {
			t.Errorf("ifHCInOctets = %+v (found %v)", in, ok)
		}
	})
}

// In SNMPv1 a Get of an object the device lacks fails the whole request with
// noSuchName; the poll asks again without it.
func TestPollV1NoSuchName(t *testing.T) {
	inner := table(oldDevice()...)
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
