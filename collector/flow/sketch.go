package flow

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// addrKey is an address as a fixed 16-byte value; IPv4 is IPv4-mapped so
// that no IPv4 address equals an IPv6 one.
type addrKey [16]byte

func addrKeyOf(b *[16]byte, family uint8) addrKey {
	if family == 4 {
		return addrKey{10: 0xff, 11: 0xff, 12: b[0], 13: b[1], 14: b[2], 15: b[3]}
	}
	return addrKey(*b)
}

func (a addrKey) Addr() netip.Addr { return netip.AddrFrom16(a).Unmap() }

func (a *addrKey) hash() uint64 {
	return mix(binary.LittleEndian.Uint64(a[:8])^0x9e3779b97f4a7c15, binary.LittleEndian.Uint64(a[8:])^0xbf58476d1ce4e5b9)
}

// hll is a HyperLogLog distinct counter with 2^p one-byte registers. Its
// relative standard error is 1.04/sqrt(2^p): 1.6% at p=12, 6.5% at p=8;
// below 2.5*2^p items it switches to linear counting, which is nearly exact
// for the small counts that matter for scans.
type hll struct {
	p   uint8
	reg []uint8
}

func newHLL(p uint8) hll { return hll{p: p, reg: make([]uint8, 1<<p)} }

// fmix64 is splitmix64's finalizer: every input bit reaches every output
// bit, which HyperLogLog's register choice and rank need.
func fmix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (h *hll) add(x uint64) {
	x = fmix64(x)
	idx := x >> (64 - h.p)
	w := x<<h.p | 1<<(h.p-1) // guard bit bounds the rank
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > h.reg[idx] {
		h.reg[idx] = r
	}
}

func (h *hll) reset() { clear(h.reg) }

func (h *hll) estimate() float64 {
	m := float64(len(h.reg))
	var sum float64
	zeros := 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	var alpha float64
	switch len(h.reg) {
	case 16:
		alpha = 0.673
	case 32:
		alpha = 0.697
	case 64:
		alpha = 0.709
	default:
		alpha = 0.7213 / (1 + 1.079/m)
	}
	e := alpha * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		return m * math.Log(m/float64(zeros))
	}
	return e
}

// distinct counts distinct values exactly while they are few, and with a
// HyperLogLog past that: a scan of 101 ports reads 101, not a sketch's
// 93 against a threshold of 100. The exact part holds up to distinctExact
// 32-bit fingerprints of the values in an open-addressing set (two values
// share a fingerprint with probability under 1e-5 at the limit); the
// sketch sees every value from the start, so it takes over seamlessly.
type distinct struct {
	n   int // values in the exact set; distinctExact+1 once it overflowed
	set [distinctSlots]uint32
	hll hll
}

const (
	distinctSlots = 256
	distinctExact = 192 // 3/4 load
)

func newDistinct(p uint8) distinct { return distinct{hll: newHLL(p)} }

func (d *distinct) add(x uint64) {
	d.hll.add(x)
	if d.n > distinctExact {
		return
	}
	x = fmix64(x ^ 0x5851f42d4c957f2d) // independent of the register choice
	fp := uint32(x>>32) | 1
	for i := uint32(x) & (distinctSlots - 1); ; i = (i + 1) & (distinctSlots - 1) {
		switch d.set[i] {
		case fp:
			return
		case 0:
			d.set[i] = fp
			d.n++
			return
		}
	}
}

func (d *distinct) reset() {
	if d.n > 0 {
		clear(d.set[:])
		d.n = 0
	}
	d.hll.reset()
}

// estimate is the exact count up to distinctExact, the sketch's past it
// (never below the exact limit it passed).
func (d *distinct) estimate() float64 {
	if d.n <= distinctExact {
		return float64(d.n)
	}
	return max(d.hll.estimate(), distinctExact+1)
}

// spaceSaving finds the heaviest keys of a weighted stream in k counters
// (Metwally et al.): any key heavier than total/k is guaranteed to be held,
// and a held key's count overestimates its true weight by at most its err.
// Counters live in a min-heap so the lightest is replaced in O(log k); a
// small open-addressing index maps keys to counters. Nothing allocates after
// construction.
type spaceSaving struct {
	keys  []addrKey
	count []uint64
	err   []uint64
	pos   []int32 // counter -> heap position
	heap  []int32 // heap of counters by count
	index []int32 // counter+1, 0 empty
	mask  uint64
	// Extra per-counter state for fan-out and fan-in; reset when a counter
	// changes hands.
	hllA, hllB []distinct
	aux        []uint64
	ext        []counterExt
}

// counterExt is what fan-out and fan-in add to a counter, counted exactly
// from when its key entered the list.
type counterExt struct {
	flows    uint64  // new flows
	syns     uint64  // of them opened by a bare SYN
	answered uint64  // flows answered (Event EvEstablished)
	synAns   uint64  // SYN-opened flows whose handshake completed
	peer     addrKey // majority peer (Boyer-Moore vote)
	votes    uint64
	lo, hi   addrKey // lowest and highest peer
	port     uint16  // majority destination port (vote)
	pvotes   uint64
	refl     uint64 // flows opened from a UDP reflector port (fan-in)
	reflB    uint64 // bytes of their first packets
	reflPort uint16 // the reflector port of the latest
}

func (x *counterExt) votePort(p uint16) {
	switch {
	case x.pvotes == 0:
		x.port, x.pvotes = p, 1
	case x.port == p:
		x.pvotes++
	default:
		x.pvotes--
	}
}

func (x *counterExt) vote(peer *addrKey) {
	switch {
	case x.votes == 0:
		x.peer, x.votes = *peer, 1
	case x.peer == *peer:
		x.votes++
	default:
		x.votes--
	}
	if x.flows == 1 || bytesLess(peer, &x.lo) {
		x.lo = *peer
	}
	if x.flows == 1 || bytesLess(&x.hi, peer) {
		x.hi = *peer
	}
}

func bytesLess(a, b *addrKey) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func newSpaceSaving(k int, hllP uint8, withB bool) *spaceSaving {
	size := 1
	for size < 4*k {
		size <<= 1
	}
	s := &spaceSaving{
		keys:  make([]addrKey, 0, k),
		count: make([]uint64, 0, k),
		err:   make([]uint64, 0, k),
		pos:   make([]int32, 0, k),
		heap:  make([]int32, 0, k),
		aux:   make([]uint64, 0, k),
		index: make([]int32, size),
		mask:  uint64(size - 1),
	}
	if hllP > 0 {
		s.ext = make([]counterExt, k)
		s.hllA = make([]distinct, k)
		for i := range s.hllA {
			s.hllA[i] = newDistinct(hllP)
		}
		if withB {
			s.hllB = make([]distinct, k)
			for i := range s.hllB {
				s.hllB[i] = newDistinct(hllP)
			}
		}
	}
	return s
}

func (s *spaceSaving) reset() {
	s.keys, s.count, s.err, s.pos, s.heap, s.aux = s.keys[:0], s.count[:0], s.err[:0], s.pos[:0], s.heap[:0], s.aux[:0]
	clear(s.index)
	for i := range s.hllA {
		s.hllA[i].reset()
	}
	for i := range s.hllB {
		s.hllB[i].reset()
	}
	clear(s.ext)
}

// find returns the counter holding key (hash h), or -1.
func (s *spaceSaving) find(key *addrKey, h uint64) int32 {
	for i := h & s.mask; ; i = (i + 1) & s.mask {
		c := s.index[i]
		if c == 0 {
			return -1
		}
		if s.keys[c-1] == *key {
			return c - 1
		}
	}
}

// changed clears the per-key state of counter c, which got a new key.
func (s *spaceSaving) changed(c int32) {
	s.aux[c] = 0
	if s.hllA != nil {
		s.hllA[c].reset()
		s.ext[c] = counterExt{}
	}
	if s.hllB != nil {
		s.hllB[c].reset()
	}
}

// add adds weight w to key (hash h) and returns its counter.
func (s *spaceSaving) add(key *addrKey, h uint64, w uint64) int32 {
	i := h & s.mask
	for {
		c := s.index[i]
		if c == 0 {
			break
		}
		if s.keys[c-1] == *key {
			s.count[c-1] += w
			s.down(int(s.pos[c-1]))
			return c - 1
		}
		i = (i + 1) & s.mask
	}
	if len(s.keys) < cap(s.keys) {
		c := int32(len(s.keys))
		s.keys = append(s.keys, *key)
		s.count = append(s.count, w)
		s.err = append(s.err, 0)
		s.aux = append(s.aux, 0)
		s.pos = append(s.pos, int32(len(s.heap)))
		s.heap = append(s.heap, c)
		s.index[i] = c + 1
		s.up(len(s.heap) - 1)
		return c
	}
	c := s.heap[0]
	s.unindex(&s.keys[c])
	s.keys[c] = *key
	s.err[c] = s.count[c]
	s.count[c] += w
	s.changed(c)
	j := h & s.mask
	for s.index[j] != 0 {
		j = (j + 1) & s.mask
	}
	s.index[j] = c + 1
	s.down(0)
	return c
}

func (s *spaceSaving) unindex(key *addrKey) {
	i := key.hash() & s.mask
	for s.keys[s.index[i]-1] != *key {
		i = (i + 1) & s.mask
	}
	for {
		s.index[i] = 0
		j := i
		for {
			j = (j + 1) & s.mask
			c := s.index[j]
			if c == 0 {
				return
			}
			home := s.keys[c-1].hash() & s.mask
			if (i < j && (home <= i || home > j)) || (i > j && home <= i && home > j) {
				s.index[i] = c
				i = j
				break
			}
		}
	}
}

func (s *spaceSaving) less(a, b int) bool { return s.count[s.heap[a]] < s.count[s.heap[b]] }

func (s *spaceSaving) swap(a, b int) {
	s.heap[a], s.heap[b] = s.heap[b], s.heap[a]
	s.pos[s.heap[a]] = int32(a)
	s.pos[s.heap[b]] = int32(b)
}

func (s *spaceSaving) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *spaceSaving) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}

// floor is the value a new key must reach to enter: 0 while there is room,
// else the lightest held value. Small enough to inline, it spares most
// packets the call to set.
func (s *spaceSaving) floor() uint64 {
	if len(s.keys) < cap(s.keys) {
		return 0
	}
	return s.count[s.heap[0]]
}

// set records value v for key when v earns it a place: the key is held
// already, or the table has room, or v exceeds the lightest held value. It
// turns the structure into the top-k of a stream of estimates (used with
// cmSketch); err stays 0.
func (s *spaceSaving) set(key *addrKey, h uint64, v uint64) (int32, bool) {
	if len(s.keys) == cap(s.keys) && v <= s.count[s.heap[0]] {
		// Not heavier than the lightest: only an update of a held key
		// matters, and a held key is never below the minimum.
		if v < s.count[s.heap[0]] {
			return -1, false
		}
	}
	i := h & s.mask
	for {
		c := s.index[i]
		if c == 0 {
			break
		}
		if s.keys[c-1] == *key {
			s.count[c-1] = v
			s.down(int(s.pos[c-1]))
			return c - 1, true
		}
		i = (i + 1) & s.mask
	}
	if len(s.keys) < cap(s.keys) {
		c := s.add(key, h, v)
		return c, true
	}
	if v <= s.count[s.heap[0]] {
		return -1, false
	}
	c := s.heap[0]
	s.unindex(&s.keys[c])
	s.keys[c] = *key
	s.count[c], s.err[c] = v, 0
	s.changed(c)
	j := h & s.mask
	for s.index[j] != 0 {
		j = (j + 1) & s.mask
	}
	s.index[j] = c + 1
	s.down(0)
	return c, true
}

// cmSketch is a count-min sketch of bytes and packets per address, two rows
// of 4096 counters (Cormode and Muthukrishnan): an estimate never falls
// short and overshoots by more than e/4096 (0.07%) of the interval's total
// with probability at most e^-2 per query. Feeding its estimates to a
// top-k costs two counter increments per packet and a heap update only for
// the heavy keys, where Space-Saving alone churns its heap on every packet
// of a light source.
type cmSketch struct {
	bytes [2][cmWidth]uint64
	pkts  [2][cmWidth]uint32
}

const cmWidth = 4096

func (c *cmSketch) add(h uint64, bytes uint64) (estBytes uint64, estPkts uint32) {
	i, j := h&(cmWidth-1), (h>>32)&(cmWidth-1)
	c.bytes[0][i] += bytes
	c.bytes[1][j] += bytes
	c.pkts[0][i]++
	c.pkts[1][j]++
	return min(c.bytes[0][i], c.bytes[1][j]), min(c.pkts[0][i], c.pkts[1][j])
}

func (c *cmSketch) reset() { *c = cmSketch{} }

// cmCount is a count-min sketch of small counts (new flows per address),
// two rows of 4096.
type cmCount [2][cmWidth]uint32

func (c *cmCount) add(h uint64) uint32 {
	i, j := h&(cmWidth-1), (h>>32)&(cmWidth-1)
	c[0][i]++
	c[1][j]++
	return min(c[0][i], c[1][j])
}

// top returns the counters sorted by count, heaviest first, at most n.
func (s *spaceSaving) top(n int) []int32 {
	idx := make([]int32, len(s.keys))
	for i := range idx {
		idx[i] = int32(i)
	}
	// insertion sort: k is small and this runs once per interval
	for i := 1; i < len(idx); i++ {
		for j := i; j > 0 && s.count[idx[j]] > s.count[idx[j-1]]; j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	if len(idx) > n {
		idx = idx[:n]
	}
	return idx
}

// topBy is top(n), then up to n more of the other counters ranked by
// score, those scoring 0 left out.
func (s *spaceSaving) topBy(n int, score func(int32) uint64) []int32 {
	all := s.top(len(s.keys))
	if len(all) <= n {
		return all
	}
	rest := all[n:]
	for i := 1; i < len(rest); i++ {
		for j := i; j > 0 && score(rest[j]) > score(rest[j-1]); j-- {
			rest[j], rest[j-1] = rest[j-1], rest[j]
		}
	}
	k := 0
	for k < len(rest) && k < n && score(rest[k]) > 0 {
		k++
	}
	return all[:n+k]
}
