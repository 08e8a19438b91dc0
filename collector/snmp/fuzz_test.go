package snmp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/profile"
)

// Whatever a device answers, our side of the reply path (decoding varbinds
// into rows, joining labels, deriving metrics, computing rates) never
// panics: every reply gosnmp can decode is run through it, as scalars and
// as rows of every table of every profile.
func FuzzReply(f *testing.F) {
	for _, vbs := range [][]gosnmp.SnmpPDU{
		oldDevice(),
		{str(oidIfName+".1.2.3", "x\xff\x00"), counter64(oidIfHCInOctets+".4294967295", 1<<63), integer(oidIfOperStatus+".0", -7)},
		{{Name: oidSysUpTime, Type: gosnmp.Opaque, Value: []byte("12")}, {Name: ".1.3.6.1.4.1.2021.10.1.3.1", Type: gosnmp.OctetString, Value: []byte("0.15")}},
		{{Name: ".1.0.8802.1.1.2.1.4.1.1.9.0.5.1", Type: gosnmp.OctetString, Value: []byte("peer")}, {Name: ".1.3.6.1.2.1.99.1.1.1.4.7", Type: gosnmp.Integer, Value: 415}},
	} {
		pkt := gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetResponse, RequestID: 1, Variables: vbs}
		b, err := pkt.MarshalMsg()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	plan := allProfiles(f)
	r := newRates()
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	at := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, data []byte) {
		pkt, err := dec.SnmpDecodePacket(data)
		if err != nil || pkt == nil {
			return
		}
		res := newResult(plan)
		for i := range pkt.Variables {
			v := &pkt.Variables[i]
			res.addScalar(v)
			for ti := range plan.tables {
				res.addColumn(ti, v)
			}
		}
		base := collector.Sample{Device: "d", Time: at}
		samples, counters := res.samples("d", base)
		samples = derive(samples, base)
		at = at.Add(10 * time.Second)
		_ = r.observe(samples, counters, at)
	})
}

// A device (or anyone on the path) that sends garbage, replies with another
// request ID or replies from another port before the real answer does not
// spoil the poll: those datagrams are dropped.
func TestPollHostileReplies(t *testing.T) {
	// A stranger on another address answers each request first, with the
	// right request ID and a wrong value.
	stranger, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 to send from: %v", err)
	}
	defer stranger.Close()
	good := served(oldDevice()...)
	// Ahead of each answer: broken BER, not SNMP, an answer to another
	// request, a truncated answer.
	dev := newHostileDevice(t, good, func(req *gosnmp.SnmpPacket, from net.Addr) [][]byte {
		spoof := gosnmp.SnmpPacket{Version: req.Version, Community: req.Community, PDUType: gosnmp.GetResponse,
			RequestID: req.RequestID, Variables: []gosnmp.SnmpPDU{{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: uint32(1)}}}
		b, _ := spoof.MarshalMsg()
		_, _ = stranger.WriteTo(b, from)
		spoof.RequestID++
		wrongID, _ := spoof.MarshalMsg()
		return [][]byte{{0x30, 0x82, 0xff, 0xff, 0x02}, []byte("not snmp at all"), wrongID, wrongID[:len(wrongID)/2]}
	})
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPoller(nil, WithMetrics(m))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o := fakeOpts(dev.addr, "2c")
	o.Plan = systemOnly(t)
	r := p.Poll(ctx, o)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if up, ok := find(r.Samples, "sysUpTime", ""); !ok || up.Value != 123.45 {
		t.Errorf("sysUpTime = %+v (found %v), want the real answer's 123.45", up, ok)
	}
	if v := testutil.ToFloat64(m.badReply.WithLabelValues("fake", "malformed")); v < 2 {
		t.Errorf("malformed replies counted: %g, want at least 2 (broken BER, truncated)", v)
	}
	if v := testutil.ToFloat64(m.badReply.WithLabelValues("fake", "foreign_source")); v < 1 {
		t.Errorf("replies from another address counted: %g, want at least 1", v)
	}
}

// systemOnly is a plan of the system profile only.
func systemOnly(t testing.TB) *Plan {
	t.Helper()
	ps, err := profile.Resolve([]string{"system"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(ps)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}
