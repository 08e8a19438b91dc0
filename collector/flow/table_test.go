package flow

import (
	"math/rand/v2"
	"testing"
	"time"
)

func meta4(src, dst byte, sport, dport uint16, proto, flags uint8) Meta {
	m := Meta{SrcPort: sport, DstPort: dport, Proto: proto, Family: 4, TCPFlags: flags}
	m.Src = [16]byte{198, 18, 0, src}
	m.Dst = [16]byte{198, 18, 0, dst}
	return m
}

const sec = int64(time.Second)

func TestTableBidirectional(t *testing.T) {
	var ended []Record
	tab := NewTable(TableConfig{OnEnd: func(r *Record) { ended = append(ended, *r) }})
	t0 := 1000 * sec
	syn := meta4(2, 1, 40000, 80, 6, 0x02) // 198.18.0.2 sorts after .1: initiator is B
	synack := meta4(1, 2, 80, 40000, 6, 0x12)
	ack := meta4(2, 1, 40000, 80, 6, 0x10)
	if isNew, fromInit := tab.Update(&syn, t0, 60); !isNew || !fromInit {
		t.Fatalf("syn: new=%v fromInitiator=%v", isNew, fromInit)
	}
	if st := tab.Stats(); st.HalfOpen != 1 {
		t.Fatalf("half open after SYN = %d", st.HalfOpen)
	}
	if isNew, fromInit := tab.Update(&synack, t0+1e6, 60); isNew || fromInit {
		t.Fatalf("synack: new=%v fromInitiator=%v", isNew, fromInit)
	}
	tab.Update(&ack, t0+2e6, 52)
	tab.Update(&ack, t0+3e6, 1500)
	if st := tab.Stats(); st.Active != 1 || st.HalfOpen != 0 || st.Packets != 4 || st.Bytes != 1672 {
		t.Fatalf("stats %+v", st)
	}
	tab.Flush()
	if len(ended) != 1 {
		t.Fatalf("ended %d flows", len(ended))
	}
	r := ended[0]
	if r.Packets != [2]uint64{3, 1} || r.Bytes != [2]uint64{1612, 60} || r.TCPFlags != [2]uint8{0x12, 0x12} {
		t.Errorf("record %+v", r)
	}
	if r.First != t0 || r.Last != t0+3e6 || r.End != EndFlush {
		t.Errorf("times %d..%d end %v", r.First, r.Last, r.End)
	}
	fk := r.FlowKey()
	if fk.Src.String() != "198.18.0.2" || fk.SrcPort != 40000 || fk.Dst.String() != "198.18.0.1" || fk.DstPort != 80 {
		t.Errorf("flow key %v", fk)
	}
	if got := fk.String(); got != "tcp 198.18.0.2:40000 -> 198.18.0.1:80" {
		t.Errorf("FlowKey.String = %q", got)
	}
}

func TestTableSynAckFirstMakesReceiverInitiator(t *testing.T) {
	tab := NewTable(TableConfig{})
	synack := meta4(1, 2, 80, 40000, 6, 0x12)
	if _, fromInit := tab.Update(&synack, 5*sec, 60); fromInit {
		t.Fatal("SYN-ACK sender taken as initiator")
	}
	if tab.Stats().HalfOpen != 0 {
		t.Fatal("SYN-ACK counted as half open")
	}
}

func TestTableTimeoutsFollowPacketTime(t *testing.T) {
	var ended []Record
	tab := NewTable(TableConfig{IdleTimeout: 10 * time.Second, ActiveTimeout: 60 * time.Second,
		TCPEndTimeout: 2 * time.Second, OnEnd: func(r *Record) { ended = append(ended, *r) }})
	t0 := 100 * sec
	udp := meta4(1, 2, 1000, 53, 17, 0)
	busy := meta4(3, 4, 1000, 5000, 17, 0)
	fin1 := meta4(5, 6, 1, 2, 6, 0x11)
	fin2 := meta4(6, 5, 2, 1, 6, 0x11)
	tab.Update(&udp, t0, 100)
	tab.Update(&fin1, t0, 100)
	tab.Update(&fin2, t0+sec/2, 100)
	// busy sends every second for 70 s: ends by the active timeout at 60 s.
	for i := int64(0); i <= 70; i++ {
		tab.Update(&busy, t0+i*sec, 200)
		switch i {
		case 2:
			if len(ended) != 0 {
				t.Fatalf("at +2s ended %+v", ended)
			}
		case 3:
			if len(ended) != 1 || ended[0].End != EndTCP || ended[0].Packets != [2]uint64{1, 1} {
				t.Fatalf("at +3s want the FIN flow ended: %+v", ended)
			}
		case 10:
			if len(ended) != 2 || ended[1].End != EndIdle || ended[1].Key.Proto != 17 {
				t.Fatalf("at +10s want the UDP flow idle: %+v", ended)
			}
		case 60:
			if len(ended) != 3 || ended[2].End != EndActive || ended[2].Packets[0] != 60 {
				t.Fatalf("at +60s want busy ended by active timeout after 60 packets: %+v", ended)
			}
		}
	}
	if tab.Len() != 1 {
		t.Fatalf("active flows %d, want busy only", tab.Len())
	}
	// No packets: nothing expires however long we wait (no wall clock).
	if len(ended) != 3 {
		t.Fatalf("ended %d", len(ended))
	}
	// A packet an hour later expires busy on the way.
	tab.Update(&udp, t0+3600*sec, 100)
	if len(ended) != 4 || ended[3].End != EndIdle || ended[3].Packets[0] != 11 {
		t.Fatalf("after the jump: %+v", ended[3:])
	}
	st := tab.Stats()
	if st.EndedTCP != 1 || st.EndedIdle != 2 || st.EndedActive != 1 || st.Active != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestTableEvictsAtMaxFlows(t *testing.T) {
	tab := NewTable(TableConfig{MaxFlows: 100})
	for i := range 150 {
		m := meta4(1, 2, uint16(i), 80, 6, 0x02)
		tab.Update(&m, 10*sec+int64(i)*1e6, 60)
	}
	st := tab.Stats()
	if st.Active != 100 || st.Evicted != 50 || st.Created != 150 || st.HalfOpen != 100 {
		t.Fatalf("stats %+v", st)
	}
	// The newest flows survive.
	m := meta4(1, 2, 149, 80, 6, 0x10)
	if isNew, _ := tab.Update(&m, 11*sec, 60); isNew {
		t.Error("newest flow was evicted")
	}
}

// refFlow and the loop below are a plain map model of the table: expire
// everything due at the packet's tick, then count the packet.
type refFlow struct {
	first, last int64
	pkts        uint64
}

func TestTableMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := TableConfig{MaxFlows: 4096, IdleTimeout: 5 * time.Second, ActiveTimeout: 20 * time.Second, TCPEndTimeout: 5 * time.Second}
	endedPkts := map[Key]uint64{}
	cfg.OnEnd = func(r *Record) { endedPkts[r.Key] += r.Packets[0] + r.Packets[1] }
	tab := NewTable(cfg)
	ref := map[Key]*refFlow{}
	refEnded := map[Key]uint64{}
	ts := 50 * sec
	for i := range 60000 {
		switch rng.IntN(1000) {
		case 0:
			ts += int64(rng.IntN(40)) * sec // a jump, sometimes past the wheel
		default:
			ts += int64(rng.IntN(2000)) * 1e4
		}
		m := meta4(byte(rng.IntN(30)), byte(rng.IntN(30)), uint16(rng.IntN(40)), 53, 17, 0)
		k, _ := KeyOf(&m)
		now := ts / sec * sec
		for rk, f := range ref {
			d := min(f.last+int64(cfg.IdleTimeout), f.first+int64(cfg.ActiveTimeout))
			if d <= now {
				refEnded[rk] += f.pkts
				if f.first+int64(cfg.ActiveTimeout) < f.last+int64(cfg.IdleTimeout) {
					f.first, f.pkts = f.last, 0 // active timeout: restart
				} else {
					delete(ref, rk)
				}
			}
		}
		f := ref[k]
		if f == nil {
			f = &refFlow{first: ts}
			ref[k] = f
		}
		f.last, f.pkts = ts, f.pkts+1
		tab.Update(&m, ts, 64)
		if i%1000 == 0 && tab.Len() != len(ref) {
			t.Fatalf("packet %d: table has %d flows, model %d", i, tab.Len(), len(ref))
		}
	}
	got := map[Key]uint64{}
	tab.Each(func(r *Record) bool { got[r.Key] = r.Packets[0] + r.Packets[1]; return true })
	if len(got) != len(ref) {
		t.Fatalf("Each saw %d flows, model %d", len(got), len(ref))
	}
	for k, f := range ref {
		if got[k] != f.pkts {
			t.Fatalf("flow %v: %d packets, model %d", k, got[k], f.pkts)
		}
	}
	for k, n := range refEnded {
		if endedPkts[k] != n {
			t.Fatalf("ended flow %v: %d packets, model %d", k, endedPkts[k], n)
		}
	}
	if len(endedPkts) != len(refEnded) {
		t.Fatalf("ended keys %d, model %d", len(endedPkts), len(refEnded))
	}
}

func TestTableUpdateAllocatesNothing(t *testing.T) {
	tab := NewTable(TableConfig{MaxFlows: 1000, IdleTimeout: time.Second})
	ms := make([]Meta, 3000)
	for i := range ms {
		ms[i] = meta4(byte(i), byte(i>>8), uint16(i), 443, 6, 0x10)
	}
	ts := 10 * sec
	for i := range ms { // fill: entries grow to MaxFlows once
		ts += 1e6
		tab.Update(&ms[i], ts, 100)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		ts += 1e6
		tab.Update(&ms[i%len(ms)], ts, 100)
		i++
	})
	if allocs != 0 {
		t.Errorf("allocs per update = %v", allocs)
	}
	if tab.Stats().EndedIdle == 0 {
		t.Error("nothing expired: the test did not exercise expiry")
	}
}

func TestStateBytesPerFlow(t *testing.T) {
	tab := NewTable(TableConfig{MaxFlows: 1 << 20})
	b := tab.StateBytesPerFlow()
	t.Logf("entry %d bytes, %.1f bytes per flow with index and wheel", EntryBytes, b)
	if EntryBytes > 128 || b > 160 {
		t.Errorf("state per flow grew: entry %d, total %.1f bytes", EntryBytes, b)
	}
}

// TestTableCounterCarries drives one direction past the 16-bit packet and
// 32-bit byte counters kept in an entry's hot part: the record joins the
// carries kept in the cold part, and Each and an active-timeout restart see
// the same.
func TestTableCounterCarries(t *testing.T) {
	var ended []Record
	tab := NewTable(TableConfig{ActiveTimeout: 10 * time.Second, OnEnd: func(r *Record) { ended = append(ended, *r) }})
	m := meta4(1, 2, 5000, 6000, 17, 0)
	back := meta4(2, 1, 6000, 5000, 17, 0)
	t0 := 1000 * sec
	const n, size = 3*65536 + 7, 65535
	for i := range n {
		tab.Update(&m, t0+int64(i), size)
	}
	tab.Update(&back, t0+n, 100)
	wantP, wantB := [2]uint64{n, 1}, [2]uint64{n * size, 100}
	tab.Each(func(r *Record) bool {
		if r.Packets != wantP || r.Bytes != wantB {
			t.Errorf("Each: packets %v bytes %v, want %v %v", r.Packets, r.Bytes, wantP, wantB)
		}
		return true
	})
	tab.Advance(t0 + 12*sec) // active timeout: exported, counters restart
	tab.Update(&m, t0+13*sec, 10)
	tab.Flush()
	if len(ended) < 2 || ended[0].End != EndActive || ended[0].Packets != wantP || ended[0].Bytes != wantB {
		t.Fatalf("ended %+v", ended)
	}
	if r := ended[len(ended)-1]; r.End != EndFlush || r.Packets != [2]uint64{1, 0} || r.Bytes != [2]uint64{10, 0} {
		t.Errorf("after restart: %+v", r)
	}
}

// An active timeout shorter than the idle timeout: a silent flow is cut
// once, with its packets, then idle-expires; it is never re-exported with
// zero counts every tick. Packets after a cut start the next record at
// their own time.
func TestTableActiveTimeoutBelowIdle(t *testing.T) {
	var ended []Record
	tab := NewTable(TableConfig{IdleTimeout: 30 * time.Second, ActiveTimeout: 5 * time.Second,
		OnEnd: func(r *Record) { ended = append(ended, *r) }})
	t0 := 100 * sec
	quiet := meta4(1, 2, 1000, 53, 17, 0)
	talky := meta4(3, 4, 1000, 5000, 17, 0)
	tab.Update(&quiet, t0, 100)
	tab.Update(&quiet, t0+sec, 100)
	tab.Update(&talky, t0, 100)
	tab.Update(&talky, t0+7*sec, 100) // after its first cut at +5s
	for i := int64(8); i <= 60; i++ {
		tab.Advance(t0 + i*sec)
	}
	for _, r := range ended {
		if r.Packets == [2]uint64{} {
			t.Errorf("record with zero counts: %+v", r)
		}
	}
	var q, k []Record
	for _, r := range ended {
		if r.Key.Proto == 17 && r.Key.PortA == 53 || r.Key.PortB == 53 {
			q = append(q, r)
		} else {
			k = append(k, r)
		}
	}
	if len(q) != 1 || q[0].End != EndActive || q[0].Packets[0] != 2 {
		t.Errorf("quiet flow records %+v", q)
	}
	if len(k) != 2 || k[0].End != EndActive || k[0].Packets[0] != 1 || k[1].End != EndActive || k[1].Packets[0] != 1 ||
		k[1].First != t0+7*sec {
		t.Errorf("talky flow records %+v", k)
	}
	if tab.Len() != 0 {
		t.Errorf("%d flows left after they went idle", tab.Len())
	}
	if st := tab.Stats(); st.EndedIdle != 2 || st.EndedActive != 3 {
		t.Errorf("stats %+v", st)
	}
}

// probeLengths are the longest and the mean distance of the table's flows
// from their home slot in the index.
func probeLengths(t *Table) (longest int, mean float64) {
	total, n := 0, 0
	for i, s := range t.index {
		if s == 0 {
			continue
		}
		home := t.hashOf(s&^t.tagMask-1) & t.mask
		d := int((uint32(i) - home) & t.mask)
		longest = max(longest, d)
		total += d
		n++
	}
	return longest, float64(total) / float64(max(n, 1))
}

// Keys crafted to share a home slot under a known hash seed (here 0, what
// a fixed-constant hash gives every table) pile into one probe chain of a
// table with that seed; a table's own random seed spreads them.
func TestTableHashFloodResistance(t *testing.T) {
	const n, slots = 2000, 4096 // the index holds 2000 flows in 4096 slots
	var crafted []Meta
	m := meta4(1, 2, 0, 80, 6, 0x02)
	for p := uint32(0); len(crafted) < n; p++ {
		m.Src[2], m.Src[3] = byte(p>>24), byte(p>>16)
		m.SrcPort = uint16(p)
		k, _ := KeyOf(&m)
		if k.Hash(0)&(slots-1) == 0 {
			crafted = append(crafted, m)
		}
	}
	fill := func(tab *Table) (int, float64, time.Duration) {
		start := time.Now()
		for i := range crafted {
			tab.Update(&crafted[i], sec+int64(i), 60)
		}
		el := time.Since(start)
		if tab.Len() != n || len(tab.index) != slots {
			t.Fatalf("table holds %d flows in %d slots", tab.Len(), len(tab.index))
		}
		l, mean := probeLengths(tab)
		return l, mean, el
	}
	fixed := NewTable(TableConfig{})
	fixed.seed = 0
	fl, fm, ft := fill(fixed)
	seeded := NewTable(TableConfig{})
	sl, sm, st := fill(seeded)
	t.Logf("fixed seed: longest probe %d, mean %.1f, %s; random seed: longest %d, mean %.2f, %s", fl, fm, ft, sl, sm, st)
	if fl < n/2 {
		t.Fatalf("the crafted keys do not collide under seed 0 (longest probe %d): the test proves nothing", fl)
	}
	if sl > 64 || sm > 2 {
		t.Errorf("random seed: longest probe %d, mean %.2f; want at most 64 and 2", sl, sm)
	}
	if NewTable(TableConfig{}).seed == seeded.seed {
		t.Errorf("two tables drew the same seed")
	}
}
