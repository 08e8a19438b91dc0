package snmpsim

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

func TestLoadSNMPRec(t *testing.T) {
	tab, warns, err := loadRecording("testdata/small.snmprec")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, w := range warns {
		msgs = append(msgs, w.Error())
	}
	want := []string{
		"small.snmprec:7: .1.3.6.1.2.1.1.5.0: duplicate oid, keeping the first value; line skipped",
		`small.snmprec:8: .1.3.6.1.2.1.1.2.0: tag 6: object identifier "not.an.oid" is not encodable; line skipped`,
		`small.snmprec:9: .1.3.6.1.2.1.2.2.1.3.2: tag 2: integer "ethernet": invalid syntax; line skipped`,
		"small.snmprec:15: want OID|TAG|VALUE; line skipped",
	}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(want, "\n"))
	}
	got := map[string]entry{}
	for i, e := range tab.entries {
		if i > 0 && tab.entries[i-1].oid.Compare(e.oid) >= 0 {
			t.Errorf("not sorted at %d: %s after %s", i, e.name, tab.entries[i-1].name)
		}
		got[e.name] = e
	}
	if len(tab.entries) != 10 {
		t.Errorf("%d entries, want 10", len(tab.entries))
	}
	check := func(name string, typ gosnmp.Asn1BER, val string) {
		t.Helper()
		e, ok := got[name]
		if !ok {
			t.Errorf("%s missing", name)
			return
		}
		if e.typ != typ {
			t.Errorf("%s type %v, want %v", name, e.typ, typ)
		}
		var s string
		switch v := e.val.(type) {
		case []byte:
			s = string(v)
		case string:
			s = v
		case uint64:
			s = strconv.FormatUint(v, 10)
		}
		if s != val {
			t.Errorf("%s = %q, want %q", name, s, val)
		}
	}
	check(".1.3.6.1.2.1.1.5.0", gosnmp.OctetString, "rec-one")
	check(".1.3.6.1.2.1.1.1.0", gosnmp.OctetString, "Simulated")
	check(".1.3.6.1.4.1.2021.10.1.6.1", gosnmp.Opaque, "forward")
	check(".1.3.6.1.2.1.4.20.1.1.10.0.0.1", gosnmp.IPAddress, "\x0a\x00\x00\x01")
	check(".1.3.6.1.2.1.4.20.1.1.10.0.0.2", gosnmp.IPAddress, "\x0a\x00\x00\x02")
	check(".1.3.6.1.2.1.31.1.1.1.6.2", gosnmp.Counter64, "18446744073709551615")
	check(".1.3.6.1.4.1.29671.1.1.4.1.1.2", gosnmp.OctetString, "\x02\x02\x00f")
	if tab.entries[0].name != ".1.3.6.1.2.1.1.1.0" || got[".1.3.6.1.2.1.1.3.0"].col != colSysUpTime {
		t.Errorf("first entry %s; sysUpTime column %v", tab.entries[0].name, got[".1.3.6.1.2.1.1.3.0"].col)
	}
	// Numeric order: ifInOctets.2 before ifInOctets.10.
	var idx []string
	for _, e := range tab.entries {
		if strings.HasPrefix(e.name, ".1.3.6.1.2.1.2.2.1.10.") {
			idx = append(idx, e.name)
		}
	}
	if strings.Join(idx, " ") != ".1.3.6.1.2.1.2.2.1.10.2 .1.3.6.1.2.1.2.2.1.10.10" {
		t.Errorf("ifInOctets order: %v", idx)
	}
}

func TestLoadSNMPWalk(t *testing.T) {
	tab, warns, err := loadRecording("testdata/small.snmpwalk")
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if len(tab.entries) != 10 {
		t.Fatalf("%d entries, want 10", len(tab.entries))
	}
	byName := map[string]entry{}
	for _, e := range tab.entries {
		byName[e.name] = e
	}
	if v := string(byName[".1.3.6.1.2.1.1.1.0"].val.([]byte)); v != "first line\nsecond line" {
		t.Errorf("multi-line sysDescr = %q", v)
	}
	if e := byName[".1.3.6.1.2.1.2.2.1.10.1"]; e.typ != gosnmp.Counter32 || e.val != uint32(77) {
		t.Errorf(`"Counter 32: 77" read as %v %v`, e.typ, e.val)
	}
	if e := byName[".1.3.6.1.2.1.2.2.1.8.1"]; e.val != 1 {
		t.Errorf("up(1) read as %v", e.val)
	}
	if e := byName[".1.3.6.1.2.1.2.2.1.6.1"]; string(e.val.([]byte)) != "\x00\x1a\x2b\x3c\x4d\x5e" {
		t.Errorf("Hex-STRING read as % x", e.val)
	}
	if e := byName[".1.3.6.1.2.1.1.2.0"]; e.typ != gosnmp.ObjectIdentifier || e.val != ".1.3.6.1.4.1.12356.101.1.9999" {
		t.Errorf("OID read as %v %v", e.typ, e.val)
	}
	if e := byName[".1.3.6.1.2.1.1.3.0"]; e.val != uint32(4200) || e.col != colSysUpTime {
		t.Errorf("Timeticks read as %v (column %v)", e.val, e.col)
	}
}

func TestRecordedDevice(t *testing.T) {
	sc, err := LoadScenario("testdata/valid-recorded.yaml")
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	addr := serve(t, newServer(t, sc, clk, Options{}))
	g := client(t, addr, "rec1", gosnmp.Version2c)
	clk.Set(10 * time.Second)
	vs := mustGet(t, g, ".1.3.6.1.2.1.1.5.0", ".1.3.6.1.2.1.1.3.0", ".1.3.6.1.2.1.2.2.1.10.2")
	if string(vs[0].Value.([]byte)) != "rec-one" || u64(vs[1].Value) != 361000 || u64(vs[2].Value) != 20 {
		t.Errorf("rec1 at 10s: %v %v %v; want rec-one, 360000+1000 ticks, 20", vs[0].Value, vs[1].Value, vs[2].Value)
	}
	clk.Set(101 * time.Second)
	if vs := mustGet(t, g, ".1.3.6.1.2.1.1.3.0"); u64(vs[0].Value) != 100 {
		t.Errorf("rec1 uptime 1s after reboot = %v, want 100", vs[0].Value)
	}
	all, err := g.BulkWalkAll(".1.3.6.1")
	if err != nil || len(all) != 10 {
		t.Errorf("bulkwalk rec1: %d varbinds, %v; want 10", len(all), err)
	}
	// The generated device in the same scenario answers to its community.
	mustGet(t, client(t, addr, "public", gosnmp.Version2c), ".1.3.6.1.2.1.1.5.0")
}

// TestSharedRecordings loads every recording in ../shared/snmprec (the
// quirky real-world set) and walks each device over the wire.
func TestSharedRecordings(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "snmprec")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("recordings not present at %s: %v", dir, err)
	}
	devs, err := RecordingsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) < 38 {
		t.Errorf("%d recordings, want at least 38", len(devs))
	}
	warned := 0
	for _, d := range devs {
		tab, warns, err := loadRecording(d.SNMPRec)
		if err != nil {
			t.Errorf("%s: %v", d.Name, err)
			continue
		}
		warned += len(warns)
		for _, w := range warns {
			t.Logf("warning: %v", w)
		}
		for i := 1; i < len(tab.entries); i++ {
			if tab.entries[i-1].oid.Compare(tab.entries[i].oid) >= 0 {
				t.Errorf("%s: not sorted at %s", d.Name, tab.entries[i].name)
			}
		}
	}
	sc := &Scenario{Devices: devs, Source: dir}
	srv := newServer(t, sc, newFakeClock(), Options{})
	addr := serve(t, srv)
	for _, d := range devs {
		g := client(t, addr, d.Name, gosnmp.Version2c)
		n := 0
		for _, root := range []string{".1.0", ".1.3"} { // LLDP lives under 1.0.8802
			vs, err := g.BulkWalkAll(root)
			if err != nil {
				t.Errorf("%s: bulkwalk %s: %v", d.Name, root, err)
			}
			n += len(vs)
		}
		if want := len(srv.devices[d.Name].tab.entries); n != want {
			t.Errorf("%s: walked %d varbinds, the recording serves %d", d.Name, n, want)
		}
	}
	if st := srv.Stats(); st.Dropped() != 0 {
		t.Errorf("drops while walking recordings: %+v", st)
	}
	t.Logf("%d recordings, %d line warnings", len(devs), warned)
}

// TestTooBigValue: a recorded value larger than the message cap answers
// tooBig to Get and GetBulk instead of an oversized datagram.
func TestTooBigValue(t *testing.T) {
	dir := t.TempDir()
	rec := "1.3.6.1.2.1.1.1.0|4|" + strings.Repeat("x", 600) + "\n1.3.6.1.2.1.1.5.0|4|big\n"
	if err := os.WriteFile(filepath.Join(dir, "big.snmprec"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	devs, err := RecordingsIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, &Scenario{Devices: devs, Source: dir}, newFakeClock(), Options{MaxMessageSize: 484})
	dec := &gosnmp.GoSNMP{}
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
		enc := &gosnmp.GoSNMP{Version: v, Community: "big"}
		for _, pdu := range []gosnmp.PDUType{gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.GetBulkRequest} {
			if v == gosnmp.Version1 && pdu == gosnmp.GetBulkRequest {
				continue
			}
			name := ".1.3.6.1.2.1.1.1.0"
			if pdu != gosnmp.GetRequest {
				name = ".1.3.6.1.2.1.1"
			}
			req, err := enc.SnmpEncodePacket(pdu, []gosnmp.SnmpPDU{{Name: name, Type: gosnmp.Null}}, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			out := srv.HandlePacket(req)
			p, err := dec.SnmpDecodePacket(out)
			if err != nil {
				t.Fatalf("%v %v: %v", v, pdu, err)
			}
			if p.Error != gosnmp.TooBig || len(out) > 484 {
				t.Errorf("%v %v: error %v, %d bytes; want tooBig within 484", v, pdu, p.Error, len(out))
			}
		}
	}
	if got := srv.Stats().TooBig; got != 5 {
		t.Errorf("tooBig count %d, want 5", got)
	}
}
