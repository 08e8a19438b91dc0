package snmpsim

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
)

// TestNetSNMPBulkWalk walks the whole MIB-2 of core-sw1 with net-snmp's
// snmpbulkwalk and parses its output back with the recording loader.
func TestNetSNMPBulkWalk(t *testing.T) {
	bin, err := exec.LookPath("snmpbulkwalk")
	if err != nil {
		t.Skip("snmpbulkwalk not installed (Debian package snmp): skipping the net-snmp interoperability test")
	}
	srv, _, addr := demo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-v2c", "-c", "core-sw1", "-On", "-t", "2", "-r", "1",
		"127.0.0.1:"+strconv.Itoa(addr.Port), ".1.3.6.1.2.1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("snmpbulkwalk: %v: %s", err, stderr.Bytes())
	}
	tab, warns, err := parseRecording(bytes.NewReader(out), "snmpbulkwalk output")
	if err != nil {
		t.Fatalf("parse snmpbulkwalk output: %v", err)
	}
	for _, w := range warns {
		t.Errorf("snmpbulkwalk output: %v", w)
	}
	want := srv.devices["core-sw1"].tab.entries
	if len(tab.entries) != len(want) {
		t.Fatalf("snmpbulkwalk returned %d oids, the device has %d", len(tab.entries), len(want))
	}
	for i := range want {
		if tab.entries[i].name != want[i].name || tab.entries[i].typ != want[i].typ {
			t.Fatalf("oid %d: walked %s (%v), served %s (%v)", i, tab.entries[i].name, tab.entries[i].typ, want[i].name, want[i].typ)
		}
	}
	if st := srv.Stats(); st.GetBulk == 0 || st.Dropped() != 0 {
		t.Errorf("stats after walk: %+v", st)
	}
}

// malformedInputs are datagrams an agent must survive.
func malformedInputs(t testing.TB) map[string][]byte {
	enc := &gosnmp.GoSNMP{Version: gosnmp.Version2c, Community: "core-sw1"}
	good, err := enc.SnmpEncodePacket(gosnmp.GetRequest, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.5.0", Type: gosnmp.Null}}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	trap, err := enc.SnmpEncodePacket(gosnmp.SNMPv2Trap, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(5)}}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	v3 := append([]byte(nil), good...)
	v3[4] = 3 // version field
	badLen := append([]byte(nil), good...)
	badLen[1]++
	return map[string][]byte{
		"empty":            {},
		"one byte":         {0x30},
		"not a sequence":   []byte("hello, agent"),
		"truncated":        good[:len(good)-3],
		"length mismatch":  badLen,
		"snmpv3":           v3,
		"trap":             trap,
		"indefinite":       {0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00},
		"huge length":      {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01},
		"garbage varbinds": append(append([]byte(nil), good[:len(good)-16]...), bytes.Repeat([]byte{0x30}, 16)...),
	}
}

func TestMalformedPackets(t *testing.T) {
	srv, _, addr := demo(t)
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ins := malformedInputs(t)
	for name, in := range ins {
		if out := srv.HandlePacket(in); out != nil {
			t.Errorf("%s: answered % x", name, out)
		}
		if _, err := conn.Write(in); err != nil {
			t.Fatalf("%s: write: %v", name, err)
		}
	}
	// The socket still answers afterwards.
	g := client(t, addr, "core-sw1", gosnmp.Version2c)
	mustGet(t, g, ".1.3.6.1.2.1.1.5.0")
	st := srv.Stats()
	if got := st.DroppedMalformed + st.DroppedUnsupported; got != uint64(2*len(ins)) {
		t.Errorf("malformed+unsupported drops = %d, want %d (stats %+v)", got, 2*len(ins), st)
	}
	if st.DroppedUnsupported != 4 {
		t.Errorf("unsupported drops = %d, want 4 (v3 and trap, twice)", st.DroppedUnsupported)
	}
}
