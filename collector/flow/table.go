package flow

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"

	"github.com/netaiops/netaiops/collector"
)

// Key is the canonical, direction-free identity of a flow: the (address,
// port) pair that sorts first is A. Both directions of a conversation map to
// the same Key. It is comparable and holds no pointers.
type Key struct {
	A, B         [16]byte
	PortA, PortB uint16
	VLAN         uint16
	Proto        uint8
	Family       uint8
}

// KeyOf returns the canonical key of a packet and whether the packet travels
// from A to B.
func KeyOf(m *Meta) (k Key, fromA bool) {
	s0, s1 := binary.BigEndian.Uint64(m.Src[:8]), binary.BigEndian.Uint64(m.Src[8:])
	d0, d1 := binary.BigEndian.Uint64(m.Dst[:8]), binary.BigEndian.Uint64(m.Dst[8:])
	fromA = s0 < d0 || (s0 == d0 && (s1 < d1 || (s1 == d1 && m.SrcPort <= m.DstPort)))
	if fromA {
		k = Key{A: m.Src, B: m.Dst, PortA: m.SrcPort, PortB: m.DstPort}
	} else {
		k = Key{A: m.Dst, B: m.Src, PortA: m.DstPort, PortB: m.SrcPort}
	}
	k.VLAN, k.Proto, k.Family = m.VLAN, m.Proto, m.Family
	return k, fromA
}

// Hash mixes the key into 64 bits (three 128-bit multiply-folds over its
// five words) under seed. It is computed once per packet; the table keeps
// the low 32 bits. Each table draws its seed at random: with a fixed one,
// keys crafted to share a home slot (12 000 crafted SYNs made packets 36
// times slower) pile into one probe chain.
func (k *Key) Hash(seed uint64) uint64 {
	const (
		m1 = 0xa0761d6478bd642f
		m2 = 0xe7037ed1a0b428db
		m3 = 0x8ebc6af09c88c6e3
		m4 = 0x589965cc75374cc3
	)
	a0 := binary.LittleEndian.Uint64(k.A[:8])
	a1 := binary.LittleEndian.Uint64(k.A[8:])
	b0 := binary.LittleEndian.Uint64(k.B[:8])
	b1 := binary.LittleEndian.Uint64(k.B[8:])
	w := uint64(k.PortA) | uint64(k.PortB)<<16 | uint64(k.VLAN)<<32 | uint64(k.Proto)<<48 | uint64(k.Family)<<56
	h := mix(a0^m1^seed, a1^m2^seed)
	h = mix(h^b0, b1^m3)
	// The last fold of a full 128-bit product already spreads every input
	// bit over the low 32 the table uses; no finaliser needed.
	return mix(h^w, m4)
}

// keyEqual compares two keys as five machine words; == on the struct calls
// a generic memory compare.
func keyEqual(a, b *Key) bool {
	x, y := (*[5]uint64)(unsafe.Pointer(a)), (*[5]uint64)(unsafe.Pointer(b))
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4]
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func addrOf(b *[16]byte, family uint8) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(*b)
}

// EndReason says why a flow left the table.
type EndReason uint8

// Why flows end.
const (
	EndIdle    EndReason = iota // no packet for the idle timeout
	EndActive                   // alive longer than the active timeout: exported, counting restarts
	EndTCP                      // FIN both ways or RST, then the short TCP timeout
	EndEvicted                  // the table was full and a new flow needed the slot
	EndFlush                    // Flush at the end of a capture
)

func (r EndReason) String() string {
	return [...]string{"idle", "active", "tcp_end", "evicted", "flush"}[r]
}

// Record is a flow as the table reports it when the flow ends. Index 0 of
// the per-direction arrays is initiator to responder.
type Record struct {
	Key          Key
	InitiatorIsA bool
	First, Last  int64 // packet timestamps, Unix nanoseconds
	Packets      [2]uint64
	Bytes        [2]uint64
	TCPFlags     [2]uint8 // OR of the flags seen in each direction
	End          EndReason
}

// FlowKey converts to the shared domain key, initiator first.
func (r *Record) FlowKey() collector.FlowKey {
	k := &r.Key
	a, b := addrOf(&k.A, k.Family), addrOf(&k.B, k.Family)
	if r.InitiatorIsA {
		return collector.FlowKey{VLAN: k.VLAN, Proto: k.Proto, Src: a, Dst: b, SrcPort: k.PortA, DstPort: k.PortB}
	}
	return collector.FlowKey{VLAN: k.VLAN, Proto: k.Proto, Src: b, Dst: a, SrcPort: k.PortB, DstPort: k.PortA}
}

// TableConfig sizes the table and sets its timeouts. Zero values take the
// defaults noted.
type TableConfig struct {
	MaxFlows      int           // hard limit; default 1<<20
	IdleTimeout   time.Duration // default 30s
	ActiveTimeout time.Duration // default 30m
	TCPEndTimeout time.Duration // after FIN both ways or RST; default 5s
	Tick          time.Duration // timing-wheel granularity; default 1s
	// OnEnd, if set, receives every flow that leaves the table. It runs on
	// the goroutine that feeds the table and must not keep the pointer.
	OnEnd func(*Record)
}

func (c *TableConfig) defaults() {
	if c.MaxFlows <= 0 {
		c.MaxFlows = 1 << 20
	}
	c.MaxFlows = min(c.MaxFlows, 1<<30)
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.ActiveTimeout <= 0 {
		c.ActiveTimeout = 30 * time.Minute
	}
	if c.TCPEndTimeout <= 0 {
		c.TCPEndTimeout = 5 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
}

// TableStats are the table's counters since it was made.
type TableStats struct {
	Active        int    // flows in the table now
	HalfOpen      int    // TCP flows whose initiator sent SYN and no ACK yet
	Created       uint64 // flows ever inserted
	EndedIdle     uint64
	EndedActive   uint64
	EndedTCP      uint64
	Evicted       uint64 // flows pushed out because MaxFlows was reached
	Packets       uint64
	Bytes         uint64
	OutOfOrderTS  uint64 // packets older than the table's clock
	IndexMisses   uint64 // a flow missing from the index at removal (a bug if ever non-zero)
	WheelReinsert uint64 // entries the wheel looked at early and rescheduled
}

const (
	stHalfOpen = 1 << iota
	stFinA
	stFinB
	stEnded    // FIN both ways or RST
	stLinked   // in a wheel list; entries in the table are, except while their slot runs
	stFree     // on the free list
	stAnswered // EvEstablished reported, or never will be (a refused handshake)
)

// A flow is split in two parts kept in parallel arrays, neither holding
// pointers so the GC never scans the table. hot is what a packet of a known
// flow reads and writes: exactly one cache line. It keeps the low bits of
// the counters; carries go to cold, which holds the rest and is touched
// when a flow starts, ends or is rescheduled, and once per 65536 packets or
// 4 GiB in one direction.
type hot struct {
	key   Key
	last  int64
	bytes [2]uint32 // low 32 bits of the byte counts
	pkts  [2]uint16 // low 16 bits of the packet counts
	flags [2]uint8
	initA bool
	state uint8
}

type cold struct {
	first   int64
	bytesHi [2]uint32 // bytes = bytesHi<<32 | hot.bytes
	pktsHi  [2]uint32 // packets = pktsHi<<16 | hot.pkts
	// Timing-wheel list, entry indices, -1 ends. prev below -1 marks the
	// head of slot -2-prev. The free list runs through next.
	next, prev int32
}

func (c *cold) packets(h *hot, dir int) uint64 {
	return uint64(c.pktsHi[dir])<<16 | uint64(h.pkts[dir])
}
func (c *cold) octets(h *hot, dir int) uint64 {
	return uint64(c.bytesHi[dir])<<32 | uint64(h.bytes[dir])
}

// Table is the flow table of one capture point. Not safe for concurrent
// use: one goroutine feeds it.
type Table struct {
	cfg     TableConfig
	index   []uint32 // tag<<idxBits | entry index+1; 0 is empty
	mask    uint32
	idxBits uint8  // bits for entry index+1; the rest hold a tag from the hash
	tagMask uint32 // the tag bits of a slot
	hot     []hot
	cold    []cold // parallel to hot
	free    int32  // free list through cold.next
	wheel   []int32
	wmask   int64
	tickNs  int64
	idleNs  int64
	actNs   int64
	endNs   int64
	curTick int64
	now     int64
	stats   TableStats
	rec     Record
	seed    uint64 // of the key hash, random per table
}

// newSeed draws a hash seed from the runtime's random source.
func newSeed() uint64 {
	var h maphash.Hash
	h.SetSeed(maphash.MakeSeed())
	return h.Sum64()
}

// NewTable builds a table with room for cfg.MaxFlows flows; the index is
// allocated at once, entries grow on demand up to the limit.
func NewTable(cfg TableConfig) *Table {
	cfg.defaults()
	// The index starts small and doubles with the flow count (load <= 3/4),
	// so a table sized for millions of flows keeps a cache-sized index
	// while it holds thousands.
	size := uint64(1024)
	t := &Table{
		cfg:    cfg,
		index:  make([]uint32, size),
		mask:   uint32(size - 1),
		free:   -1,
		tickNs: int64(cfg.Tick),
		idleNs: int64(cfg.IdleTimeout),
		actNs:  int64(cfg.ActiveTimeout),
		endNs:  int64(cfg.TCPEndTimeout),
		seed:   newSeed(),
	}
	span := (max(t.idleNs, t.endNs)+t.tickNs-1)/t.tickNs + 2
	w := int64(1)
	for w < span {
		w <<= 1
	}
	t.wheel = make([]int32, w)
	for i := range t.wheel {
		t.wheel[i] = -1
	}
	t.wmask = w - 1
	t.idxBits = uint8(bits.Len32(uint32(cfg.MaxFlows) + 1))
	t.tagMask = ^uint32(0) << t.idxBits
	t.hot = make([]hot, 0, min(cfg.MaxFlows, 1<<16))
	t.cold = make([]cold, 0, min(cfg.MaxFlows, 1<<16))
	return t
}

// Stats returns the counters.
func (t *Table) Stats() TableStats { return t.stats }

// Len is the number of flows in the table.
func (t *Table) Len() int { return t.stats.Active }

// Now is the table's clock: the newest packet timestamp seen, Unix ns.
func (t *Table) Now() int64 { return t.now }

// EntryBytes is the size of one flow entry, both parts.
const EntryBytes = int(unsafe.Sizeof(hot{}) + unsafe.Sizeof(cold{}))

// StateBytesPerFlow is the memory the table holds per flow when full: the
// entry plus its share of the index and the wheel.
func (t *Table) StateBytesPerFlow() float64 {
	size := 1024
	for size/4*3 < t.cfg.MaxFlows {
		size *= 2
	}
	return float64(EntryBytes) + float64(size*4+len(t.wheel)*4)/float64(t.cfg.MaxFlows)
}

// Advance moves the table's clock to ts (Unix ns) without a packet,
// expiring what is due: a live capture calls it when the link is silent.
func (t *Table) Advance(ts int64) {
	if ts > t.now {
		t.now = ts
		if tick := ts / t.tickNs; tick > t.curTick {
			t.advance(tick)
		}
	}
}

// Event says what one packet did to its flow (Table.Observe).
type Event uint8

const (
	// EvNew: the packet created the flow.
	EvNew Event = 1 << iota
	// EvFromInitiator: the packet travels from the flow's initiator.
	EvFromInitiator
	// EvEstablished: with this packet the flow was answered, once per
	// flow. A TCP flow that began with a bare SYN is answered when the
	// initiator acknowledges (the handshake completed; seen even when only
	// one direction is captured); any other flow when the responder first
	// sends something other than a RST. A refused probe (RST), a spoofed
	// SYN and an unanswered UDP probe are never answered.
	EvEstablished
	// EvSYN: the packet created the flow with a bare SYN.
	EvSYN
)

// Update accounts one packet of wireLen bytes at ts (Unix ns) to its flow,
// creating the flow if needed, and expires flows whose time has come. It
// reports whether the flow is new and whether the packet travels from the
// flow's initiator.
func (t *Table) Update(m *Meta, ts int64, wireLen int) (isNew, fromInitiator bool) {
	ev := t.Observe(m, ts, wireLen)
	return ev&EvNew != 0, ev&EvFromInitiator != 0
}

// Observe is Update, reporting everything the packet did to its flow.
func (t *Table) Observe(m *Meta, ts int64, wireLen int) Event {
	k, fromA := KeyOf(m)
	h := k.Hash(t.seed)
	return t.update(&k, uint32(h), fromA, m.TCPFlags, ts, wireLen)
}

func (t *Table) update(k *Key, h uint32, fromA bool, flags uint8, ts int64, wireLen int) (ev Event) {
	if ts > t.now {
		t.now = ts
		if tick := ts / t.tickNs; tick > t.curTick {
			t.advance(tick)
		}
	} else if ts < t.now {
		t.stats.OutOfOrderTS++
	}
	t.stats.Packets++
	t.stats.Bytes += uint64(wireLen)

	i := h & t.mask
	tag := h & t.tagMask
	var e *hot
	var idx int32
	for {
		s := t.index[i]
		if s == 0 {
			break
		}
		if s&t.tagMask == tag {
			if c := &t.hot[s&^t.tagMask-1]; keyEqual(&c.key, k) {
				e, idx = c, int32(s&^t.tagMask-1)
				break
			}
		}
		i = (i + 1) & t.mask
	}
	if e == nil {
		if t.stats.Active >= t.cfg.MaxFlows {
			t.evictOne()
			// the eviction may have shifted index slots: probe again
			i = h & t.mask
			for t.index[i] != 0 {
				i = (i + 1) & t.mask
			}
		}
		if uint32(t.stats.Active+1) > (t.mask+1)/4*3 {
			t.grow()
			i = h & t.mask
			for t.index[i] != 0 {
				i = (i + 1) & t.mask
			}
		}
		idx = t.alloc()
		e = &t.hot[idx]
		*e = hot{key: *k, last: ts}
		t.cold[idx] = cold{first: ts}
		// The initiator sent the first packet, unless that packet is a
		// SYN-ACK: then the SYN was missed and the receiver initiated.
		e.initA = fromA
		if flags&0x12 == 0x12 {
			e.initA = !fromA
		}
		if k.Proto == 6 && flags&0x12 == 0x02 {
			e.state = stHalfOpen
			t.stats.HalfOpen++
			ev |= EvSYN
		}
		t.index[i] = tag | uint32(idx+1)
		t.stats.Active++
		t.stats.Created++
		ev |= EvNew
	}
	dir := 1
	if fromA == e.initA {
		dir = 0
		ev |= EvFromInitiator
	}
	if e.pkts == [2]uint16{} && ev&EvNew == 0 && t.empty(idx, e) {
		t.cold[idx].first = ts // the first packet after an active timeout's record
	}
	if e.state&(stAnswered|stHalfOpen) == 0 && dir == 1 && flags&0x04 == 0 {
		e.state |= stAnswered
		ev |= EvEstablished
	}
	if e.pkts[dir]++; e.pkts[dir] == 0 {
		t.cold[idx].pktsHi[dir]++
	}
	b := uint64(e.bytes[dir]) + uint64(wireLen)
	e.bytes[dir] = uint32(b)
	if b>>32 != 0 {
		t.cold[idx].bytesHi[dir] += uint32(b >> 32)
	}
	e.flags[dir] |= flags
	if ts > e.last {
		e.last = ts
	}
	if ev&EvNew != 0 {
		t.schedule(idx, e) // counted first: a flow with packets has an active deadline
	}
	if k.Proto == 6 && flags != 0 {
		ev |= t.tcpState(idx, e, dir, flags)
	}
	return ev
}

func (t *Table) tcpState(idx int32, e *hot, dir int, flags uint8) (ev Event) {
	const fin, rst, ack = 0x01, 0x04, 0x10
	if e.state&stHalfOpen != 0 && ((dir == 0 && flags&ack != 0) || flags&rst != 0) {
		e.state &^= stHalfOpen
		t.stats.HalfOpen--
		// A handshake completed; a RST ends the flow unanswered.
		e.state |= stAnswered
		if flags&rst == 0 {
			ev = EvEstablished
		}
	}
	if flags&fin != 0 {
		e.state |= stFinA << dir
	}
	if e.state&stEnded == 0 && (flags&rst != 0 || e.state&(stFinA|stFinB) == stFinA|stFinB) {
		// The deadline moves earlier: the lazy wheel only handles later
		// deadlines, so reschedule now (once per flow).
		e.state |= stEnded
		t.unlink(idx, e)
		t.schedule(idx, e)
	}
	return ev
}

// hashOf is the hash of entry idx, recomputed from its key: cheaper to
// recompute on the rare paths (grow, removal) than to store per flow.
func (t *Table) hashOf(idx uint32) uint32 { return uint32(t.hot[idx].key.Hash(t.seed)) }

// grow doubles the index.
func (t *Table) grow() {
	old := t.index
	t.index = make([]uint32, 2*len(old))
	t.mask = uint32(len(t.index) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := t.hashOf(s&^t.tagMask-1) & t.mask
		for t.index[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.index[i] = s
	}
}

func (t *Table) alloc() int32 {
	if t.free >= 0 {
		idx := t.free
		t.free = t.cold[idx].next
		return idx
	}
	t.hot = append(t.hot, hot{})
	t.cold = append(t.cold, cold{})
	return int32(len(t.hot) - 1)
}

// deadline is when the flow ends unless more packets arrive, in ns.
func (t *Table) deadline(idx int32, e *hot) (int64, EndReason) {
	idle, why := t.idleNs, EndIdle
	if e.state&stEnded != 0 {
		idle, why = t.endNs, EndTCP
	}
	d := e.last + idle
	// The active timeout cuts long flows into records; a flow silent since
	// its last record has nothing to cut and ends when idle, however short
	// the active timeout.
	if a := t.cold[idx].first + t.actNs; a < d && !t.empty(idx, e) {
		return a, EndActive
	}
	return d, why
}

// empty reports whether the flow counted no packet since its last record
// (an active timeout restarted it).
func (t *Table) empty(idx int32, e *hot) bool {
	return e.pkts == [2]uint16{} && t.cold[idx].pktsHi == [2]uint32{}
}

// schedule puts the entry in the wheel slot of its deadline, or of the
// wheel's far end when the deadline lies beyond it. Entries are not moved
// when packets extend their life: the wheel looks at them when their first
// scheduled slot comes round and reschedules them then, so a packet costs no
// wheel work.
func (t *Table) schedule(idx int32, e *hot) {
	d, _ := t.deadline(idx, e)
	tick := (d + t.tickNs - 1) / t.tickNs
	if tick <= t.curTick {
		tick = t.curTick + 1
	}
	if tick > t.curTick+t.wmask {
		tick = t.curTick + t.wmask
	}
	s := int32(tick & t.wmask)
	e.state |= stLinked
	c := &t.cold[idx]
	c.prev = -2 - s
	c.next = t.wheel[s]
	if c.next >= 0 {
		t.cold[c.next].prev = idx
	}
	t.wheel[s] = idx
}

func (t *Table) unlink(idx int32, e *hot) {
	c := &t.cold[idx]
	if c.prev >= 0 {
		t.cold[c.prev].next = c.next
	} else {
		t.wheel[-2-c.prev] = c.next
	}
	if c.next >= 0 {
		t.cold[c.next].prev = c.prev
	}
	e.state &^= stLinked
}

// advance moves the wheel to tick, expiring what is due on the way. A jump
// longer than the wheel visits every slot once.
func (t *Table) advance(tick int64) {
	if t.curTick == 0 {
		t.curTick = tick
		return
	}
	if tick-t.curTick > t.wmask {
		t.curTick = tick
		for s := int64(0); s <= t.wmask; s++ {
			t.runSlot(s, tick)
		}
		return
	}
	for t.curTick < tick {
		t.curTick++
		t.runSlot(t.curTick&t.wmask, t.curTick)
	}
}

func (t *Table) runSlot(s int64, now int64) {
	idx := t.wheel[s]
	t.wheel[s] = -1
	nowNs := now * t.tickNs
	for idx >= 0 {
		e := &t.hot[idx]
		next := t.cold[idx].next
		e.state &^= stLinked // detached: end and schedule must not unlink it
		if d, why := t.deadline(idx, e); d <= nowNs {
			t.end(idx, e, why)
		} else {
			t.stats.WheelReinsert++
			t.schedule(idx, e)
		}
		idx = next
	}
}

// end reports the flow, removes it from index and wheel and frees the entry.
// An active-timeout end restarts the flow's counters instead of removing it.
func (t *Table) end(idx int32, e *hot, why EndReason) {
	if !t.empty(idx, e) {
		t.report(idx, e, why) // an empty flow was reported whole already
	}
	c := &t.cold[idx]
	if why == EndActive {
		t.stats.EndedActive++
		c.first = e.last
		e.pkts, e.bytes, e.flags = [2]uint16{}, [2]uint32{}, [2]uint8{}
		c.pktsHi, c.bytesHi = [2]uint32{}, [2]uint32{}
		if e.state&stLinked != 0 {
			t.unlink(idx, e)
		}
		t.schedule(idx, e)
		return
	}
	switch why {
	case EndIdle:
		t.stats.EndedIdle++
	case EndTCP:
		t.stats.EndedTCP++
	case EndEvicted:
		t.stats.Evicted++
	}
	if e.state&stLinked != 0 {
		t.unlink(idx, e)
	}
	t.removeIndex(t.hashOf(uint32(idx)), idx)
	if e.state&stHalfOpen != 0 {
		t.stats.HalfOpen--
	}
	t.stats.Active--
	e.state = stFree
	c.next = t.free
	t.free = idx
}

func (t *Table) report(idx int32, e *hot, why EndReason) {
	if t.cfg.OnEnd == nil {
		return
	}
	r := &t.rec
	t.record(idx, e, r)
	r.End = why
	t.cfg.OnEnd(r)
}

// record fills r from entry idx, counters joined from both parts.
func (t *Table) record(idx int32, e *hot, r *Record) {
	c := &t.cold[idx]
	*r = Record{Key: e.key, InitiatorIsA: e.initA, First: c.first, Last: e.last,
		Packets:  [2]uint64{c.packets(e, 0), c.packets(e, 1)},
		Bytes:    [2]uint64{c.octets(e, 0), c.octets(e, 1)},
		TCPFlags: e.flags}
}

// removeIndex deletes the index slot of entry idx with backward-shift
// deletion, so no tombstones slow later probes.
func (t *Table) removeIndex(h uint32, idx int32) {
	want := h&t.tagMask | uint32(idx+1)
	i := h & t.mask
	for t.index[i] != want {
		if t.index[i] == 0 {
			t.stats.IndexMisses++ // cannot happen; counted, not fatal
			return
		}
		i = (i + 1) & t.mask
	}
	for {
		t.index[i] = 0
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.index[j]
			if s == 0 {
				return
			}
			home := t.hashOf(s&^t.tagMask-1) & t.mask
			// Move s back to i unless its home lies cyclically in (i, j].
			if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				t.index[i] = s
				i = j
				break
			}
		}
	}
}

// evictOne ends the flow closest to its deadline: the head of the first
// non-empty wheel slot after now.
func (t *Table) evictOne() {
	for d := int64(1); d <= t.wmask+1; d++ {
		s := (t.curTick + d) & t.wmask
		if idx := t.wheel[s]; idx >= 0 {
			t.end(idx, &t.hot[idx], EndEvicted)
			return
		}
	}
}

// Flush ends every flow (end of a capture file), reporting each as EndFlush.
func (t *Table) Flush() {
	for s := range t.wheel {
		for t.wheel[s] >= 0 {
			idx := t.wheel[s]
			t.end(idx, &t.hot[idx], EndFlush)
		}
	}
}

// Each calls fn for every flow in the table (for evidence and tests); fn
// must not keep the pointer. Iteration stops when fn returns false.
func (t *Table) Each(fn func(*Record) bool) {
	for i := range t.hot {
		e := &t.hot[i]
		if e.state&stFree != 0 {
			continue
		}
		var r Record
		t.record(int32(i), e, &r)
		if !fn(&r) {
			return
		}
	}
}

// keyEqual reads a Key as five words: keep it exactly 40 bytes. The hot
// part of an entry is one cache line.
var _ [40 - unsafe.Sizeof(Key{})]byte
var _ [unsafe.Sizeof(Key{}) - 40]byte
var _ [64 - unsafe.Sizeof(hot{})]byte
var _ [unsafe.Sizeof(hot{}) - 64]byte
