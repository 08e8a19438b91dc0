// Package outbox owns the queue of issue events awaiting the controller's
// ack. Every Record appended gets the next sequence number of the outbox's
// event log (identified by LogID, chosen at random when the log is
// created); the uplink streams entries in seq order and deletes them only
// when the controller acks them, cumulatively. A record is an opaque
// payload with its format (the caller's encoding and its version, which
// the outbox stores and returns but never reads) and whether the drop
// policy may drop it first: the outbox does not depend on the detection
// engine's types, so changing them cannot garble a pending record.
//
// Open keeps the log on disk, in a directory of append-only segment files
// with a CRC-32C per record (see record.go): Append writes and fsyncs its
// events before it returns, so nothing is sent that a crash could lose; the
// log id, the seq counter and the drop counter survive restarts; a segment
// file is deleted once every event in it is acked or dropped, and an active
// segment holding nothing unacked is replaced while running (so a full
// disk frees itself once the controller acks). A segment log rather than
// an embedded B-tree (bbolt) because a torn or flipped record must cost
// that record only: recovery skips a damaged record, counts it (Corrupt)
// and keeps the rest, where a damaged B-tree page fails the whole file. A
// durable log belongs to one agent id (recorded in the file OWNER):
// Open refuses a directory of another agent. New keeps the log in memory
// only (tests, tools).
//
// The queue is bounded in entries and in bytes (the events' encoded size).
// When it is full, an append first drops the oldest expendable entry (the
// caller marks resolves and low-severity changes so), else the oldest
// entry, and counts every drop, as well as the records a failed write
// could not store; the count survives restarts. The controller sees the
// gap in the seq numbers and the count in heartbeats. Dropped and acked
// events stay in their segment file until the whole segment can go; when
// dead records make the files more than twice MaxBytes, the emptiest
// segments are rewritten.
package outbox

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
)

// Defaults for zero Options.
const (
	DefaultMaxEntries = 100_000
	DefaultMaxBytes   = 64 << 20
	minSegmentBytes   = 4 << 10
	maxSegmentBytes   = 8 << 20
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("outbox closed")

// LegacyFormat is the format of the events written before records had
// one: the JSON of the agent's detect.Change of that time. No new record
// may use it.
const LegacyFormat uint8 = 1

// Record is an event to queue: its payload, encoded by the caller in
// Format (not 0, not LegacyFormat), and whether it is dropped before
// others when the outbox is full.
type Record struct {
	Format     uint8
	Payload    []byte
	Expendable bool
}

// Entry is one numbered event. Payload is shared with the outbox; callers
// must not modify it.
type Entry struct {
	Seq     uint64
	Format  uint8
	Payload []byte
}

// Options configure an Outbox.
type Options struct {
	// MaxEntries is the most unacked entries kept; 0 means DefaultMaxEntries.
	MaxEntries int
	// MaxBytes bounds the encoded size of the unacked entries (record
	// framing included); 0 means DefaultMaxBytes.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file starts; 0 means
	// MaxBytes/8 within 4 KiB..8 MiB.
	SegmentBytes int64
	// AgentID is the agent the log belongs to. Open records it in a new
	// directory and refuses a directory recorded for another agent; ""
	// (tools that only inspect a log) checks and records nothing.
	AgentID string
	// Logger reports recovery and file errors; nil discards.
	Logger *slog.Logger

	// createFile creates segment files; tests replace it to fail.
	createFile func(name string) (*os.File, error)
}

// item is an entry in the log; gone is set when it is acked or dropped, so
// the index of expendable items can skip it without a search. A durable
// outbox keeps only where the record is; an in-memory one keeps the data.
type item struct {
	seq    uint64
	size   int64 // framed record bytes
	exp    bool
	gone   bool
	format uint8
	seg    *segment
	off    int64
	data   []byte // in-memory outbox, and until Append returns
}

// Outbox is a bounded, numbered queue of issue events. It is safe for
// concurrent use: the detection goroutine appends, the uplink reads and
// acks.
type Outbox struct {
	logID      string
	rawID      [16]byte
	maxEntries int
	maxBytes   int64
	log        *slog.Logger
	disk       *disk // nil for an in-memory outbox
	// memSeg stands for "no file" in an in-memory outbox, so that segment
	// counters need no nil checks.
	memSeg *segment

	mu        sync.Mutex
	items     []*item // seq order; may hold gone items until compacted
	live      int     // items not gone
	liveBytes int64   // size of the items not gone
	exp       []*item // expendable items in seq order; may hold gone items
	nextSeq   uint64
	acked     uint64
	dropped   uint64
	// droppedSaved is the dropped total the files hold; when dropped is
	// higher, a state record is due.
	droppedSaved uint64
	corrupt      uint64
	closed       bool
	notify       chan struct{}
}

func (o Options) check() (Options, error) {
	switch {
	case o.MaxEntries < 0:
		return o, fmt.Errorf("max entries %d is negative", o.MaxEntries)
	case o.MaxBytes < 0:
		return o, fmt.Errorf("max bytes %d is negative", o.MaxBytes)
	case o.SegmentBytes < 0:
		return o, fmt.Errorf("segment bytes %d is negative", o.SegmentBytes)
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = min(max(o.MaxBytes/8, minSegmentBytes), maxSegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.createFile == nil {
		o.createFile = func(name string) (*os.File, error) {
			return os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		}
	}
	return o, nil
}

func newOutbox(opts Options) *Outbox {
	return &Outbox{
		maxEntries: opts.MaxEntries,
		maxBytes:   opts.MaxBytes,
		log:        opts.Logger,
		memSeg:     &segment{},
		nextSeq:    1,
		notify:     make(chan struct{}, 1),
	}
}

func (o *Outbox) setLogID(id [16]byte) {
	o.rawID = id
	o.logID = hex.EncodeToString(id[:])
}

func randomLogID() ([16]byte, error) {
	var b [16]byte
	_, err := rand.Read(b[:])
	return b, err
}

// New creates an empty in-memory outbox with a fresh random log id. Its
// entries are lost with the process; Open keeps them on disk.
func New(opts Options) (*Outbox, error) {
	opts, err := opts.check()
	if err != nil {
		return nil, fmt.Errorf("create outbox: %w", err)
	}
	o := newOutbox(opts)
	id, err := randomLogID()
	if err != nil {
		return nil, fmt.Errorf("create outbox: log id: %w", err)
	}
	o.setLogID(id)
	return o, nil
}

// LogID identifies this outbox's event log; seq numbers are unique within it.
func (o *Outbox) LogID() string { return o.logID }

// Append numbers the records, stores them (on disk: written and fsynced)
// and returns the new entries. When the outbox is full, older entries are
// dropped to make room (see the package comment) and counted in Dropped. On
// a write error (or a record larger than MaxBytes) the entries stored before
// it are returned with the error; the other records are not queued and are
// counted in Dropped too. A record of format 0 or LegacyFormat, or with an
// empty payload, is refused and nothing is queued.
func (o *Outbox) Append(recs ...Record) ([]Entry, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	for i, r := range recs {
		switch {
		case r.Format == 0 || r.Format == LegacyFormat:
			return nil, fmt.Errorf("append to outbox: record %d: format %d is reserved", i, r.Format)
		case len(r.Payload) == 0:
			return nil, fmt.Errorf("append to outbox: record %d: empty payload", i)
		}
	}

	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, fmt.Errorf("append to outbox: %w", ErrClosed)
	}
	if o.disk != nil && o.disk.failed {
		// The last write failed (disk full?): free what the acks allow
		// before trying again.
		o.collectLocked()
	}
	out, err := o.appendLocked(recs)
	if err != nil && len(out) == 0 && o.disk != nil && o.disk.failed {
		// A full disk may be full of acked events: once they are freed,
		// try again.
		n := o.disk.reclaims
		if o.collectLocked(); o.disk.reclaims > n {
			o.log.Info("outbox: write failed; reclaimed the acked segment and retried", "err", err)
			out, err = o.appendLocked(recs)
		}
	}
	if lost := len(recs) - len(out); lost > 0 {
		// Not stored, so never sent: the controller must hear of them,
		// after a restart too.
		o.dropped += uint64(lost)
	}
	o.compactLocked()
	if o.disk != nil {
		o.collectLocked()
		if serr := o.saveCountsLocked(); serr != nil && err != nil {
			err = errors.Join(err, serr)
		} else if serr != nil {
			o.log.Warn("outbox: drop count not yet on disk", "err", serr)
		}
	}
	o.mu.Unlock()
	if len(out) > 0 {
		select {
		case o.notify <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	if err != nil {
		return out, fmt.Errorf("append to outbox: %w", err)
	}
	return out, nil
}

// appendLocked stores what it can of recs and returns the stored entries.
func (o *Outbox) appendLocked(recs []Record) ([]Entry, error) {
	var (
		out     = make([]Entry, 0, len(recs))
		pending []*item // written to the buffer, not yet stored
		buf     []byte
		// bufDropped is the dropped total the buffer's drop records carry.
		bufDropped uint64
		err        error
	)
	// commit stores the buffer (on disk: write and fsync) and queues the
	// pending items.
	commit := func() error {
		if o.disk != nil && len(buf) > 0 {
			if err := o.disk.write(buf, true); err != nil {
				o.live -= len(pending)
				for _, it := range pending {
					o.liveBytes -= it.size
					it.seg.live--
					it.seg.liveBytes -= it.size
				}
				o.nextSeq -= uint64(len(pending))
				pending, buf = nil, nil
				return err
			}
			o.droppedSaved = max(o.droppedSaved, bufDropped)
		}
		for _, it := range pending {
			o.items = append(o.items, it)
			if it.exp {
				o.exp = append(o.exp, it)
			}
			out = append(out, Entry{Seq: it.seq, Format: it.format, Payload: it.data})
			if o.disk != nil {
				it.data = nil // read back from the file when sent
			}
		}
		pending, buf = nil, nil
		return nil
	}
	for i, r := range recs {
		exp := r.Expendable
		payload := recordPayload(o.nextSeq, exp, r.Format, r.Payload)
		size := int64(frameHeader + len(payload))
		if size > o.maxBytes || len(payload) > maxPayload {
			err = fmt.Errorf("record %d is %d bytes, more than the outbox's %d or a record's %d", i, size, o.maxBytes, frameHeader+maxPayload)
			break
		}
		for o.live >= o.maxEntries || o.liveBytes+size > o.maxBytes {
			if rec, ok := o.dropOneLocked(); ok {
				buf = append(buf, rec...)
				bufDropped = o.dropped
				continue
			}
			// Only this call's own entries are left: store them, so
			// that they can be dropped like any other.
			if err = commit(); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
		it := &item{seq: o.nextSeq, size: size, exp: exp, format: r.Format, data: r.Payload, seg: o.memSeg}
		if o.disk != nil {
			// A segment whose base is the next seq holds no event yet; a
			// new one would get the same name.
			if o.disk.needsRotation(int64(len(buf))+size) && o.disk.active().base < o.nextSeq {
				if err = commit(); err != nil {
					break
				}
				if err = o.newSegmentLocked(); err != nil {
					break
				}
			}
			it.seg = o.disk.active()
			it.off = it.seg.size + int64(len(buf))
			it.seg.live++
			it.seg.liveBytes += size
			buf = appendFrame(buf, payload)
		}
		o.nextSeq++
		o.live++
		o.liveBytes += size
		pending = append(pending, it)
	}
	if err == nil {
		err = commit()
	} else if cerr := commit(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return out, err
}

// header is the header a new segment gets now.
func (o *Outbox) header() segHeader {
	return segHeader{logID: o.rawID, base: o.nextSeq, acked: o.acked, dropped: o.dropped}
}

// newSegmentLocked starts a new active segment, durably, whose header
// carries the counters.
func (o *Outbox) newSegmentLocked() error {
	if err := o.disk.create(o.header()); err != nil {
		return err
	}
	o.droppedSaved = max(o.droppedSaved, o.dropped)
	return nil
}

// saveCountsLocked writes a state record when the dropped total on disk is
// behind (records a failed write could not store). When that write fails
// too, the count stays due: the next append, new segment or Close writes
// it.
func (o *Outbox) saveCountsLocked() error {
	if o.dropped <= o.droppedSaved {
		return nil
	}
	if err := o.disk.write(appendFrame(nil, statePayloadOf(o.acked, o.nextSeq-1, o.dropped)), true); err != nil {
		return fmt.Errorf("record dropped total %d: %w", o.dropped, err)
	}
	o.droppedSaved = o.dropped
	return nil
}

// dropOneLocked drops the oldest expendable live item, else the oldest live
// item, and returns the drop record to write (nil in memory). ok is false
// when no stored item is left to drop.
func (o *Outbox) dropOneLocked() (rec []byte, ok bool) {
	var victim *item
	for len(o.exp) > 0 && victim == nil {
		it := o.exp[0]
		o.exp[0] = nil
		o.exp = o.exp[1:]
		if !it.gone {
			victim = it
		}
	}
	if victim == nil {
		for _, it := range o.items {
			if !it.gone {
				victim = it
				break
			}
		}
	}
	if victim == nil {
		return nil, false
	}
	o.goneLocked(victim)
	o.dropped++
	if o.disk == nil {
		return nil, true
	}
	o.disk.active().tombs = append(o.disk.active().tombs, victim.seq)
	return appendFrame(nil, dropPayloadOf(victim.seq, o.dropped)), true
}

// goneLocked marks a live item acked or dropped.
func (o *Outbox) goneLocked(it *item) {
	it.gone = true
	o.live--
	o.liveBytes -= it.size
	it.seg.live--
	it.seg.liveBytes -= it.size
}

// compactLocked trims gone items from the front and, when more than half of
// the log is gone, rebuilds it, so that drops and acks cost amortized O(1).
func (o *Outbox) compactLocked() {
	i := 0
	for i < len(o.items) && o.items[i].gone {
		o.items[i] = nil
		i++
	}
	o.items = o.items[i:]
	if len(o.items) > 64 && o.live < len(o.items)/2 {
		kept := make([]*item, 0, o.live)
		for _, it := range o.items {
			if !it.gone {
				kept = append(kept, it)
			}
		}
		o.items = kept
	}
	j := 0
	for j < len(o.exp) && o.exp[j].gone {
		o.exp[j] = nil
		j++
	}
	o.exp = o.exp[j:]
}

// Pending returns up to max entries with seq > afterSeq, in seq order. max <= 0
// means no limit. The entries' issues share attribute maps with the outbox;
// callers must not modify them. A record that cannot be read back is
// logged, counted in Corrupt and forgotten.
func (o *Outbox) Pending(afterSeq uint64, max int) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.items), func(i int) bool { return o.items[i].seq > afterSeq })
	var out []Entry
	for ; i < len(o.items); i++ {
		if max > 0 && len(out) >= max {
			break
		}
		it := o.items[i]
		if it.gone {
			continue
		}
		if it.data != nil {
			out = append(out, Entry{Seq: it.seq, Format: it.format, Payload: it.data})
			continue
		}
		format, data, err := o.disk.read(it)
		if err != nil {
			o.log.Error("outbox: unreadable event skipped", "seq", it.seq, "err", err)
			o.goneLocked(it)
			o.corrupt++
			continue
		}
		out = append(out, Entry{Seq: it.seq, Format: format, Payload: data})
	}
	return out
}

// Ack deletes every entry with seq <= seq: the controller stored them. An
// ack beyond the last seq (the controller holds events this log lost, say
// after power loss) moves the seq counter past it, so that new events are
// not taken for replays.
func (o *Outbox) Ack(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if seq <= o.acked || o.closed {
		return
	}
	for _, it := range o.items {
		if it.seq > seq {
			break
		}
		if !it.gone {
			o.goneLocked(it)
		}
	}
	o.acked = seq
	if seq >= o.nextSeq {
		o.log.Warn("outbox: controller acked seqs this log never wrote (lost on disk?): skipping them",
			"acked_seq", seq, "last_seq", o.nextSeq-1)
		o.nextSeq = seq + 1
	}
	o.compactLocked()
	if o.disk != nil {
		if err := o.disk.write(appendFrame(nil, ackPayloadOf(seq)), false); err != nil {
			o.log.Warn("outbox: record ack", "seq", seq, "err", err)
		}
		o.collectLocked()
	}
}

// OldestUnacked returns the seq of the oldest entry still held, 0 when empty.
func (o *Outbox) OldestUnacked() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, it := range o.items {
		if !it.gone {
			return it.seq
		}
	}
	return 0
}

// LastSeq returns the seq of the newest entry ever appended, 0 for none.
func (o *Outbox) LastSeq() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.nextSeq - 1
}

// Len returns how many entries await an ack.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live
}

// Bytes returns the encoded size of the entries awaiting an ack.
func (o *Outbox) Bytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.liveBytes
}

// Dropped returns how many entries were dropped because the outbox was
// full or could not be written, over the log's whole life (it survives
// restarts).
func (o *Outbox) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Corrupt returns how many damaged records were skipped: at Open, and
// records that could not be read back since.
func (o *Outbox) Corrupt() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.corrupt
}

// Notify returns a channel that receives a value after entries are appended.
// Wake-ups coalesce: one receive may stand for many appends, so a reader
// calls Pending after each receive. It is meant for a single reader.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Close releases the outbox's files; appends fail afterwards. Closing an
// in-memory outbox or closing twice is harmless.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	if o.disk == nil {
		return nil
	}
	err := o.saveCountsLocked()
	if cerr := o.disk.close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("close outbox %s: %w", o.disk.dir, err)
	}
	return nil
}
