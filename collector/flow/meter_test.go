package flow

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

type stamped struct {
	ts   time.Time
	data []byte
	wire int
}

// conversation is 25 s of traffic: a TCP connection with a FIN exchange, a
// UDP exchange every second, a ping, and junk.
func conversation() []stamped {
	t0 := time.Unix(1_700_000_000, 0)
	var out []stamped
	add := func(at time.Duration, f synth.Frame) {
		b, w := synth.Append(nil, &f)
		out = append(out, stamped{t0.Add(at), b, w})
	}
	tcp := func(src, dst netip4, sp, dp uint16, fl uint8, pl int) synth.Frame {
		return synth.Frame{Src: src.a, Dst: dst.a, Proto: 6, SrcPort: sp, DstPort: dp, TCPFlags: fl, Payload: pl}
	}
	c, s := netip4{v4a}, netip4{v4b}
	add(0, tcp(c, s, 40000, 80, 0x02, 0))
	add(time.Millisecond, tcp(s, c, 80, 40000, 0x12, 0))
	add(2*time.Millisecond, tcp(c, s, 40000, 80, 0x10, 0))
	add(3*time.Millisecond, tcp(c, s, 40000, 80, 0x18, 500))
	add(4*time.Millisecond, tcp(s, c, 80, 40000, 0x18, 1400))
	add(12*time.Second, tcp(c, s, 40000, 80, 0x11, 0))
	add(12*time.Second+time.Millisecond, tcp(s, c, 80, 40000, 0x11, 0))
	for i := range 25 {
		add(time.Duration(i)*time.Second+5*time.Millisecond, synth.Frame{VLANs: []uint16{7}, Src: v6a, Dst: v6b, Proto: 17, SrcPort: 5000, DstPort: 53, Payload: 40})
	}
	add(21*time.Second, synth.Frame{Src: v4a, Dst: v4b, Proto: 1, ICMPType: 8, Payload: 56})
	add(21*time.Second+time.Millisecond, synth.Frame{Src: v4b, Dst: v4a, Proto: 1, ICMPType: 0, Payload: 56})
	out = append(out, stamped{t0.Add(22 * time.Second), []byte{1, 2, 3}, 3})
	sort.SliceStable(out, func(i, j int) bool { return out[i].ts.Before(out[j].ts) })
	return out
}

type netip4 struct{ a netip.Addr }

func writePcap(t *testing.T, pkts []stamped, ng bool) string {
	t.Helper()
	var buf bytes.Buffer
	if ng {
		w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: p.wire}
			if err := w.WritePacket(ci, p.data); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	} else {
		w := pcapgo.NewWriterNanos(&buf)
		if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: p.wire}
			if err := w.WritePacket(ci, p.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "c.pcap")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runFile(t *testing.T, path string, paced bool) ([]Snapshot, []Record, *Meter) {
	t.Helper()
	src, err := OpenFile(path, FileOptions{Paced: paced})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var snaps []Snapshot
	var recs []Record
	cfg := MeterConfig{Name: "test", Features: FeatureConfig{Interval: 10 * time.Second},
		Table: TableConfig{IdleTimeout: 15 * time.Second, OnEnd: func(r *Record) { recs = append(recs, *r) }}}
	mt := NewMeter(cfg, src.LinkType(), slog.New(slog.DiscardHandler), func(s *Snapshot) { snaps = append(snaps, *s) })
	if err := mt.Run(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	return snaps, recs, mt
}

func TestMeterReplaysPcapAndPcapng(t *testing.T) {
	pkts := conversation()
	for _, ng := range []bool{false, true} {
		snaps, recs, mt := runFile(t, writePcap(t, pkts, ng), false)
		if len(snaps) != 3 {
			t.Fatalf("ng=%v: %d intervals, want 3", ng, len(snaps))
		}
		var packets, bytes, newFlows uint64
		for i, s := range snaps {
			if want := time.Unix(1_700_000_000, 0).Add(time.Duration(i) * 10 * time.Second); !s.Start.Equal(want) {
				t.Errorf("interval %d starts %v, want %v", i, s.Start, want)
			}
			packets += s.Packets
			bytes += s.Bytes
			newFlows += s.NewFlows
		}
		if packets != uint64(len(pkts)-1) || newFlows != 3 || snaps[0].NewFlows != 2 || snaps[2].NewFlows != 1 {
			t.Errorf("ng=%v: packets %d new flows %d (%d,%d,%d)", ng, packets, newFlows, snaps[0].NewFlows, snaps[1].NewFlows, snaps[2].NewFlows)
		}
		if snaps[0].HalfOpen != 0 || snaps[0].Active != 2 {
			t.Errorf("first interval: %+v", snaps[0])
		}
		if mt.DecodeStats().Bad[ReasonTruncatedLink] != 1 {
			t.Errorf("junk not counted: %+v", mt.DecodeStats())
		}
		ends := map[EndReason]int{}
		for _, r := range recs {
			ends[r.End]++
		}
		// TCP ends 5 s after its FINs (by packet time, at 17 s); ICMP and
		// UDP are flushed at the end of the file.
		if ends[EndTCP] != 1 || ends[EndFlush] != 2 || len(recs) != 3 {
			t.Errorf("ng=%v: ends %v", ng, ends)
		}
	}
}

func TestPacedReplayFollowsRecordedTime(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var pkts []stamped
	for i := range 3 {
		b, w := synth.Append(nil, &synth.Frame{Src: v4a, Dst: v4b, Proto: 17, SrcPort: 1, DstPort: 2})
		pkts = append(pkts, stamped{t0.Add(time.Duration(i) * 150 * time.Millisecond), b, w})
	}
	src, err := OpenFile(writePcap(t, pkts, false), FileOptions{Paced: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	start := time.Now()
	for {
		if _, _, err := src.ReadPacket(context.Background()); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("paced replay of 300 ms took %v", el)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src2, _ := OpenFile(writePcap(t, pkts, false), FileOptions{Paced: true})
	defer src2.Close()
	src2.ReadPacket(ctx)
	if _, _, err := src2.ReadPacket(ctx); err != context.Canceled {
		t.Errorf("cancelled paced read: %v", err)
	}
}

func TestOpenFileErrors(t *testing.T) {
	if _, err := OpenFile(filepath.Join(t.TempDir(), "missing.pcap"), FileOptions{}); err == nil {
		t.Error("missing file opened")
	}
	p := filepath.Join(t.TempDir(), "junk.pcap")
	os.WriteFile(p, []byte("not a capture file at all"), 0o644)
	if _, err := OpenFile(p, FileOptions{}); err == nil {
		t.Error("junk file opened")
	}
}

func TestRunAllRunsSourcesSideBySide(t *testing.T) {
	pkts := conversation()
	paths := []string{writePcap(t, pkts, false), writePcap(t, pkts, true)}
	var caps []Capture
	var mu sync.Mutex
	intervals := map[string]int{}
	for i, p := range paths {
		src, err := OpenFile(p, FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		name := []string{"pcap", "pcapng"}[i]
		mt := NewMeter(MeterConfig{Name: name}, src.LinkType(), slog.New(slog.DiscardHandler), func(s *Snapshot) {
			mu.Lock()
			intervals[s.Capture]++
			mu.Unlock()
		})
		caps = append(caps, Capture{Source: src, Meter: mt})
	}
	broken, err := OpenFile(writePcap(t, pkts[:3], false), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	broken.Close() // reading a closed file fails: one capture errors, the others finish
	caps = append(caps, Capture{Source: broken, Meter: NewMeter(MeterConfig{Name: "broken"}, broken.LinkType(), slog.New(slog.DiscardHandler), nil)})
	err = RunAll(context.Background(), caps)
	if err == nil || !strings.Contains(err.Error(), "capture broken") {
		t.Errorf("RunAll error %v, want the broken capture's", err)
	}
	if intervals["pcap"] != 3 || intervals["pcapng"] != 3 {
		t.Errorf("intervals %v, want 3 each", intervals)
	}
}

func TestMeterTickClosesIntervalsOnSilence(t *testing.T) {
	var snaps []Snapshot
	mt := NewMeter(MeterConfig{Name: "eth0", Table: TableConfig{IdleTimeout: 5 * time.Second}},
		layers.LinkTypeEthernet, slog.New(slog.DiscardHandler), func(s *Snapshot) { snaps = append(snaps, *s) })
	t0 := time.Unix(1_700_000_000, 0).UnixNano()
	data := frame(synth.Frame{Src: v4a, Dst: v4b, Proto: 17, SrcPort: 1, DstPort: 2, Payload: 10})
	mt.Packet(data, t0+int64(time.Second), len(data))
	mt.Tick(t0 + int64(9*time.Second)) // inside the interval: nothing closes
	if len(snaps) != 0 {
		t.Fatalf("closed early: %+v", snaps)
	}
	mt.Tick(t0 + int64(25*time.Second)) // closes [0,10) and one empty [10,20)
	if len(snaps) != 2 || snaps[0].Packets != 1 || snaps[1].Packets != 0 || snaps[1].Active != 0 {
		t.Fatalf("after silence: %+v", snaps)
	}
	if mt.Table().Len() != 0 || mt.Table().Stats().EndedIdle != 1 {
		t.Errorf("the idle flow did not expire on the tick: %+v", mt.Table().Stats())
	}
	mt.Tick(t0 + int64(26*time.Second))
	if len(snaps) != 2 {
		t.Errorf("a tick inside the open interval closed it: %d", len(snaps))
	}
}

func TestTruncatedFileEndsAtLastWholePacket(t *testing.T) {
	pkts := conversation()
	for _, ng := range []bool{false, true} {
		full, err := os.ReadFile(writePcap(t, pkts, ng))
		if err != nil {
			t.Fatal(err)
		}
		cut := filepath.Join(t.TempDir(), "cut.pcap")
		os.WriteFile(cut, full[:len(full)-10], 0o644)
		src, err := OpenFile(cut, FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			_, _, err := src.ReadPacket(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("ng=%v: %v", ng, err)
			}
			n++
		}
		src.Close()
		if n != len(pkts)-1 || src.Truncated() != !ng {
			t.Errorf("ng=%v: read %d of %d packets, truncated=%v", ng, n, len(pkts), src.Truncated())
		}
	}
}
