package outbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/netaiops/netaiops/agent/detect"
)

// segment is one file of the log. Its events have seqs from base up to the
// next segment's base.
type segment struct {
	base      uint64
	path      string
	f         *os.File
	size      int64
	live      int
	liveBytes int64
	// tombs are the seqs whose drop records this segment holds and that
	// may still matter: the dropped event may still be in an older file.
	tombs []uint64
}

// disk is the directory of a durable outbox. The Outbox's mutex guards it.
type disk struct {
	dir      string
	lock     *os.File
	segs     []*segment // base order; the last one is the active one
	segBytes int64
	bytes    int64 // size of all segment files
	rewrites int   // segments rewritten to shed dead records
}

const (
	headerFrame = frameHeader + headerPayload
	tombFrame   = frameHeader + dropPayload
	// maxSeq bounds any seq read back; a larger one is damage (the
	// controller takes seqs up to 2^63-1).
	maxSeq = 1 << 62
)

// Open opens the durable outbox in dir, creating the directory and a new
// log (with a random log id) when it holds none. An existing log is
// recovered: its log id, seq counter and drop counter are kept, acked and
// dropped events are forgotten, damaged records are skipped and counted in
// Corrupt, and every other event is queued again. A process holds the
// directory exclusively until Close.
func Open(dir string, opts Options) (*Outbox, error) {
	opts, err := opts.check()
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	o, err := open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", dir, err)
	}
	return o, nil
}

func open(dir string, opts Options) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("lock: in use by another process: %w", err)
	}
	o := newOutbox(opts)
	o.disk = &disk{dir: dir, lock: lock, segBytes: opts.SegmentBytes}
	if err := o.recover(); err != nil {
		o.disk.close()
		return nil, err
	}
	return o, nil
}

// event is an intact event record found by recovery.
type event struct {
	seq       uint64
	exp       bool
	off, size int64
	seg       *segment
}

// recover reads every segment, rebuilds the queue and starts the active
// segment.
func (o *Outbox) recover() error {
	d := o.disk
	names, err := os.ReadDir(d.dir)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var (
		events    []event
		dropSet   = map[uint64]bool{}
		id        [16]byte
		haveID    bool
		acked     uint64
		dropped   uint64
		nextFloor uint64 = 1
		damaged   []*segment
	)
	for _, de := range names {
		name := de.Name()
		if strings.HasSuffix(name, ".tmp") { // an interrupted rewrite; the original is intact
			if err := os.Remove(filepath.Join(d.dir, name)); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
			continue
		}
		num, ok := strings.CutSuffix(name, ".seg")
		if !ok {
			continue
		}
		base, err := strconv.ParseUint(num, 10, 64)
		if err != nil || base > maxSeq {
			o.log.Warn("outbox: ignoring a file with a bad segment name", "file", name)
			continue
		}
		d.segs = append(d.segs, &segment{base: base, path: filepath.Join(d.dir, name)})
	}
	sort.Slice(d.segs, func(i, j int) bool { return d.segs[i].base < d.segs[j].base })

	for _, s := range d.segs {
		data, err := os.ReadFile(s.path)
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(s.path), err)
		}
		s.size = int64(len(data))
		d.bytes += s.size
		var segID [16]byte
		segHasID := false
		bad := scanFrames(data, func(off, n int, p []byte) bool {
			switch p[0] {
			case kindHeader:
				h, ok := parseHeader(p)
				if !ok || h.base != s.base || h.acked > maxSeq || h.base > maxSeq {
					return false
				}
				segID, segHasID = h.logID, true
				acked, dropped = max(acked, h.acked), max(dropped, h.dropped)
			case kindEvent:
				seq, exp, _, ok := parseEvent(p)
				if !ok || seq < s.base || seq > maxSeq {
					return false
				}
				events = append(events, event{seq: seq, exp: exp, off: int64(off), size: int64(n), seg: s})
			case kindDrop:
				seq := uint64(0)
				if len(p) == dropPayload {
					seq = leUint64(p[1:9])
				}
				if seq == 0 || seq > maxSeq {
					return false
				}
				dropSet[seq] = true
				s.tombs = append(s.tombs, seq)
				dropped = max(dropped, leUint64(p[9:17]))
			case kindAck:
				if len(p) != ackPayload || leUint64(p[1:9]) > maxSeq {
					return false
				}
				acked = max(acked, leUint64(p[1:9]))
			default:
				return false
			}
			return true
		})
		if segHasID {
			if haveID && segID != id {
				return fmt.Errorf("segment %s belongs to log %x, older segments to log %x: two logs in one directory",
					filepath.Base(s.path), segID, id)
			}
			id, haveID = segID, true
		}
		nextFloor = max(nextFloor, s.base)
		if bad > 0 {
			o.corrupt += uint64(bad)
			damaged = append(damaged, s)
			o.log.Warn("outbox: skipped damaged records (torn write or corruption)", "file", filepath.Base(s.path), "damaged", bad)
		}
		if s.f, err = os.OpenFile(s.path, os.O_RDWR, 0); err != nil {
			return fmt.Errorf("open %s: %w", filepath.Base(s.path), err)
		}
	}
	if !haveID {
		if id, err = randomLogID(); err != nil {
			return fmt.Errorf("log id: %w", err)
		}
		if len(d.segs) > 0 {
			o.log.Warn("outbox: no intact segment header; starting a new log id", "segments", len(d.segs), "events", len(events))
		}
	}
	o.setLogID(id)

	sort.Slice(events, func(i, j int) bool { return events[i].seq < events[j].seq })
	var highest uint64
	for i, e := range events {
		highest = max(highest, e.seq)
		if (i > 0 && e.seq == events[i-1].seq) || e.seq <= acked || dropSet[e.seq] {
			continue
		}
		it := &item{seq: e.seq, size: e.size, exp: e.exp, seg: e.seg, off: e.off}
		o.items = append(o.items, it)
		if it.exp {
			o.exp = append(o.exp, it)
		}
		o.live++
		o.liveBytes += it.size
		e.seg.live++
		e.seg.liveBytes += it.size
	}
	for t := range dropSet {
		highest = max(highest, t)
	}
	o.acked, o.dropped = acked, dropped
	o.nextSeq = max(nextFloor, highest+1, acked+1)
	for _, s := range d.segs {
		s.tombs = o.neededTombs(s)
	}

	// Rewrite damaged segments, so that the damage is counted once.
	for _, s := range damaged {
		if err := o.rewrite(s); err != nil {
			return err
		}
	}
	if n := len(d.segs); n > 0 && d.segs[n-1].base == o.nextSeq {
		// The newest segment holds no event yet: keep appending to it.
	} else if err := d.create(o.header()); err != nil {
		return err
	}

	// A smaller bound than the log was written with: drop down to it.
	var buf []byte
	for o.live > o.maxEntries || o.liveBytes > o.maxBytes {
		rec, ok := o.dropOneLocked()
		if !ok {
			break
		}
		buf = append(buf, rec...)
	}
	if len(buf) > 0 {
		if err := d.write(buf, true); err != nil {
			return err
		}
	}
	o.compactLocked()
	o.collectLocked()
	o.log.Info("outbox opened", "dir", d.dir, "log_id", o.logID, "pending", o.live, "pending_bytes", o.liveBytes,
		"last_seq", o.nextSeq-1, "acked_seq", o.acked, "dropped", o.dropped, "corrupt", o.corrupt, "segments", len(d.segs))
	return nil
}

func leUint64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// neededTombs returns the drop records of s that still matter: the dropped
// event is unacked and may still be in an older file, where recovery would
// otherwise find it alive.
func (o *Outbox) neededTombs(s *segment) []uint64 {
	oldest := o.disk.segs[0].base
	kept := s.tombs[:0]
	for _, t := range s.tombs {
		if t > o.acked && t >= oldest && t < s.base {
			kept = append(kept, t)
		}
	}
	return kept
}

func (d *disk) active() *segment { return d.segs[len(d.segs)-1] }

// needsRotation reports whether n more bytes would overfill the active
// segment. A segment holding only its header takes any record.
func (d *disk) needsRotation(n int64) bool {
	a := d.active()
	return a.size > headerFrame && a.size+n > d.segBytes
}

// create starts a new active segment with header h, durably.
func (d *disk) create(h segHeader) error {
	s := &segment{base: h.base, path: filepath.Join(d.dir, segName(h.base))}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	buf := appendFrame(nil, h.payload())
	if _, err = f.Write(buf); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(d.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(s.path)
		return fmt.Errorf("create segment %s: %w", filepath.Base(s.path), err)
	}
	s.f, s.size = f, int64(len(buf))
	d.segs = append(d.segs, s)
	d.bytes += s.size
	return nil
}

// rotate ends the active segment (already synced by the last append) and
// starts a new one.
func (d *disk) rotate(h segHeader) error { return d.create(h) }

// write appends buf to the active segment, with fsync when sync is set. On
// failure the segment is cut back to where it was.
func (d *disk) write(buf []byte, sync bool) error {
	a := d.active()
	_, err := a.f.WriteAt(buf, a.size)
	if err == nil && sync {
		err = a.f.Sync()
	}
	if err != nil {
		if terr := a.f.Truncate(a.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("write %s: %w", filepath.Base(a.path), err)
	}
	a.size += int64(len(buf))
	d.bytes += int64(len(buf))
	return nil
}

// readRaw returns an item's whole record, checked.
func (d *disk) readRaw(it *item) ([]byte, []byte, error) {
	raw := make([]byte, it.size)
	if _, err := it.seg.f.ReadAt(raw, it.off); err != nil {
		return nil, nil, fmt.Errorf("read seq %d from %s: %w", it.seq, filepath.Base(it.seg.path), err)
	}
	p, n, ok := parseFrame(raw, 0)
	if !ok || int64(n) != it.size {
		return nil, nil, fmt.Errorf("read seq %d from %s at %d: damaged record", it.seq, filepath.Base(it.seg.path), it.off)
	}
	return raw, p, nil
}

// read decodes an item's change from its segment.
func (d *disk) read(it *item) (detect.Change, error) {
	_, p, err := d.readRaw(it)
	if err != nil {
		return detect.Change{}, err
	}
	seq, _, js, ok := parseEvent(p)
	if !ok || seq != it.seq {
		return detect.Change{}, fmt.Errorf("read seq %d from %s: record holds seq %d", it.seq, filepath.Base(it.seg.path), seq)
	}
	var c detect.Change
	if err := json.Unmarshal(js, &c); err != nil {
		return detect.Change{}, fmt.Errorf("decode seq %d: %w", it.seq, err)
	}
	return c, nil
}

// collectLocked deletes the segments (never the active one) whose events
// are all acked or dropped and whose drop records no longer matter, then
// rewrites the emptiest segments while the files hold more than twice
// MaxBytes.
func (o *Outbox) collectLocked() {
	d := o.disk
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(d.segs)-1; i++ {
			s := d.segs[i]
			if s.live > 0 {
				continue
			}
			if s.tombs = o.neededTombs(s); len(s.tombs) > 0 {
				continue
			}
			s.f.Close()
			if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				o.log.Warn("outbox: remove segment", "file", filepath.Base(s.path), "err", err)
			}
			d.bytes -= s.size
			d.segs = append(d.segs[:i], d.segs[i+1:]...)
			changed = true
			break
		}
	}
	for d.bytes > 2*o.maxBytes {
		var best *segment
		var bestWaste int64
		for _, s := range d.segs[:len(d.segs)-1] {
			s.tombs = o.neededTombs(s)
			waste := s.size - headerFrame - s.liveBytes - int64(len(s.tombs))*tombFrame
			if waste > bestWaste {
				best, bestWaste = s, waste
			}
		}
		if best == nil || bestWaste < best.size/4 {
			return
		}
		if err := o.rewrite(best); err != nil {
			o.log.Warn("outbox: rewrite segment", "err", err)
			return
		}
	}
}

// rewrite replaces segment s by a file holding only its header, its live
// events and its drop records that still matter. The new file is complete
// and synced before it replaces the old one, so a crash leaves one of them.
func (o *Outbox) rewrite(s *segment) error {
	d := o.disk
	next := uint64(math.MaxUint64)
	for i, t := range d.segs {
		if t == s && i+1 < len(d.segs) {
			next = d.segs[i+1].base
		}
	}
	buf := appendFrame(nil, segHeader{logID: o.rawID, base: s.base, acked: o.acked, dropped: o.dropped}.payload())
	type move struct {
		it  *item
		off int64
	}
	var moves []move
	start := sort.Search(len(o.items), func(i int) bool { return o.items[i].seq >= s.base })
	for _, it := range o.items[start:] {
		if it.seq >= next {
			break
		}
		if it.gone || it.seg != s {
			continue
		}
		raw, _, err := d.readRaw(it)
		if err != nil {
			o.log.Error("outbox: unreadable event skipped", "seq", it.seq, "err", err)
			o.goneLocked(it)
			o.corrupt++
			continue
		}
		moves = append(moves, move{it, int64(len(buf))})
		buf = append(buf, raw...)
	}
	s.tombs = o.neededTombs(s)
	for _, t := range s.tombs {
		buf = appendFrame(buf, dropPayloadOf(t, o.dropped))
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", filepath.Base(s.path), err)
	}
	if _, err = f.Write(buf); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err == nil {
		err = syncDir(d.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("rewrite %s: %w", filepath.Base(s.path), err)
	}
	s.f.Close()
	s.f = f
	d.bytes += int64(len(buf)) - s.size
	s.size = int64(len(buf))
	for _, m := range moves {
		m.it.off = m.off
	}
	d.rewrites++
	return nil
}

// close syncs the active segment (acks are written without fsync) and
// releases the files and the lock.
func (d *disk) close() error {
	var errs []error
	for i, s := range d.segs {
		if s.f == nil {
			continue
		}
		if i == len(d.segs)-1 {
			if err := s.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("sync %s: %w", filepath.Base(s.path), err))
			}
		}
		if err := s.f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.segs = nil
	if err := d.lock.Close(); err != nil { // closing releases the flock
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
