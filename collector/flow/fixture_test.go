package flow

import (
	"bytes"
	"math"
	"os"
	"reflect"
	"testing"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

// The mixed fixtures are written by netaiops-pcapgen -preset small (pcap and
// -pcapng): regenerate them with
//
//	go run ./cmd/netaiops-pcapgen -preset small -o testdata/flow/mixed-small.pcap
//	go run ./cmd/netaiops-pcapgen -preset small -pcapng -o testdata/flow/mixed-small.pcapng
const (
	mixedPcap   = "../../testdata/flow/mixed-small.pcap"
	mixedPcapng = "../../testdata/flow/mixed-small.pcapng"
)

func TestMixedFixturesAreTheGeneratorsOutput(t *testing.T) {
	for _, c := range []struct {
		path string
		ng   bool
	}{{mixedPcap, false}, {mixedPcapng, true}} {
		want, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := synth.Write(&got, synth.SmallMix(), c.ng); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s differs from the seeded generator's output (%d vs %d bytes): regenerate it", c.path, got.Len(), len(want))
		}
	}
}

func TestReplayMixedFixtures(t *testing.T) {
	snaps, recs, mt := runFile(t, mixedPcap, false)
	snapsNG, recsNG, _ := runFile(t, mixedPcapng, false)
	if !reflect.DeepEqual(recs, recsNG) || !reflect.DeepEqual(snaps, snapsNG) {
		for i := range min(len(snaps), len(snapsNG)) {
			if !reflect.DeepEqual(snaps[i], snapsNG[i]) {
				t.Logf("interval %d:\n pcap   %+v\n pcapng %+v", i, snaps[i], snapsNG[i])
			}
		}
		t.Fatalf("pcap and pcapng replays of the same packets differ: %d/%d records, %d/%d intervals", len(recs), len(recsNG), len(snaps), len(snapsNG))
	}
	cfg := synth.SmallMix()
	var packets uint64
	for _, s := range snaps {
		packets += s.Packets
	}
	// Every packet of the mix (TCP, UDP, ICMP, up to two tags) takes the
	// fast path; decode_test and the fuzzer hold it to the general path.
	if d := mt.DecodeStats(); packets != uint64(cfg.Packets) || d.BadTotal() != 0 || d.Fast != uint64(cfg.Packets) {
		t.Fatalf("packets %d of %d, decode %+v", packets, cfg.Packets, d)
	}

	var scanFlows, scanErr uint64
	var scanPorts float64
	var floodSYNs uint64
	var floodSources float64
	maxHalfOpen := 0
	for _, s := range snaps {
		for _, f := range s.FanOut {
			if f.Src == synth.Scanner {
				scanFlows += f.Flows
				scanErr += f.Error
				scanPorts += f.DstPorts
			}
		}
		for _, f := range s.FanIn {
			if f.Dst == synth.FloodVictim {
				floodSYNs += f.SYNs
				floodSources += f.Sources
			}
		}
		maxHalfOpen = max(maxHalfOpen, s.HalfOpen)
	}
	// Space-Saving: the true count lies in [Flows-Error, Flows].
	if scanFlows-scanErr > uint64(cfg.ScanPorts) || scanFlows < uint64(cfg.ScanPorts) || math.Abs(scanPorts-float64(cfg.ScanPorts)) > 0.05*float64(cfg.ScanPorts) {
		t.Errorf("scan: %d (error %d) flows over %.0f distinct ports, want %d", scanFlows, scanErr, scanPorts, cfg.ScanPorts)
	}
	if floodSYNs != uint64(cfg.FloodSYNs) || math.Abs(floodSources-float64(cfg.FloodSYNs)) > 0.1*float64(cfg.FloodSYNs) {
		t.Errorf("flood: %d SYN flows from %.0f sources, want %d", floodSYNs, floodSources, cfg.FloodSYNs)
	}
	if maxHalfOpen < cfg.FloodSYNs {
		t.Errorf("half-open flows peaked at %d, want at least the %d flood SYNs", maxHalfOpen, cfg.FloodSYNs)
	}
	var v6, vlan, icmp, rst int
	for i := range recs {
		r := &recs[i]
		if r.Key.Family == 6 {
			v6++
		}
		if r.Key.VLAN >= 100 && r.Key.VLAN <= 103 {
			vlan++
		}
		if r.Key.Proto == 1 || r.Key.Proto == 58 {
			icmp++
		}
		if fk := r.FlowKey(); fk.Src == synth.Scanner && r.TCPFlags[1] == 0x14 {
			rst++
		}
	}
	if v6 == 0 || vlan == 0 || icmp == 0 || rst != cfg.ScanPorts {
		t.Errorf("flows: %d IPv6, %d tagged, %d ICMP, %d scan probes answered by RST", v6, vlan, icmp, rst)
	}
	if top := snaps[0].TopTalkers[0].Addr; !top.Is4() && !top.Is6() {
		t.Errorf("no top talker: %+v", snaps[0].TopTalkers)
	}
}
