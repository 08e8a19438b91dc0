package snmpsim

import (
	"bytes"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// requestSeeds are well-formed requests of every kind the simulator answers.
func requestSeeds(t testing.TB) [][]byte {
	var out [][]byte
	vbs := []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.31.1.1.1.6", Type: gosnmp.Null},
		{Name: ".1.3.6.1.2.1.2.2.1.2.99", Type: gosnmp.Null},
	}
	for _, v := range []gosnmp.SnmpVersion{gosnmp.Version1, gosnmp.Version2c} {
		enc := &gosnmp.GoSNMP{Version: v, Community: "core-sw1"}
		for _, pdu := range []gosnmp.PDUType{gosnmp.GetRequest, gosnmp.GetNextRequest, gosnmp.GetBulkRequest, gosnmp.SetRequest} {
			b, err := enc.SnmpEncodePacket(pdu, vbs, 1, 25)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
	}
	return out
}

// FuzzHandlePacket feeds arbitrary datagrams to the request path: it must
// never panic, and whatever it answers must be a decodable GetResponse
// within the size cap carrying the request's id.
func FuzzHandlePacket(f *testing.F) {
	for _, s := range requestSeeds(f) {
		f.Add(s)
	}
	for _, s := range malformedInputs(f) {
		f.Add(s)
	}
	clk := newFakeClock()
	srv := newServer(f, DefaultScenario(), clk, Options{MaxMessageSize: 1472})
	f.Fuzz(func(t *testing.T, req []byte) {
		out := srv.HandlePacket(req)
		if out == nil {
			return
		}
		if len(out) > 1472 {
			t.Fatalf("response of %d bytes exceeds the 1472 cap", len(out))
		}
		in, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(req)
		if err != nil {
			t.Fatalf("answered a request gosnmp cannot decode: %v", err)
		}
		resp, err := (&gosnmp.GoSNMP{}).SnmpDecodePacket(out)
		if err != nil {
			t.Fatalf("response does not decode: %v\n% x", err, out)
		}
		if resp.PDUType != gosnmp.GetResponse || resp.RequestID != in.RequestID || resp.Community != in.Community {
			t.Fatalf("response %v id %d community %q for request id %d community %q",
				resp.PDUType, resp.RequestID, resp.Community, in.RequestID, in.Community)
		}
	})
}

// FuzzParseRecording: any file content loads or fails with an error, and
// what loads is sorted without duplicates.
func FuzzParseRecording(f *testing.F) {
	f.Add([]byte("1.3.6.1.2.1.1.5.0|4|sw\n1.3.6.1.2.1.1.3.0|67|100\n1.3.6.1.2.1.1.1.0|4x|6869\n"))
	f.Add([]byte(".1.3.6.1.2.1.1.5.0 = STRING: \"a\nb\"\n.1.3.6.1.2.1.1.3.0 = Timeticks: (5) 0:00:00.05\n"))
	f.Add([]byte("1.3.6.1.2.1.1.5.0|4e|\\x00\\t\n1.3.6|70|18446744073709551615\n1.3.6|2|x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, _, err := parseRecording(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for i := 1; i < len(tab.entries); i++ {
			if tab.entries[i-1].oid.Compare(tab.entries[i].oid) >= 0 {
				t.Fatalf("entries %d and %d out of order: %s, %s", i-1, i, tab.entries[i-1].name, tab.entries[i].name)
			}
		}
	})
}
