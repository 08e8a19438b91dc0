package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
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
	reclaims int   // active segments replaced while running
	// failed is set while the last write or segment creation failed
	// (the disk may be full), so that acked space is freed first.
	failed     bool
	createFile func(name string) (*os.File, error)
}

const (
	headerFrame = frameHeader + headerPayload
	tombFrame   = frameHeader + dropPayload
	stateFrame  = frameHeader + statePayload
	// maxSeq bounds any seq read back; a larger one is damage (the
	// controller takes seqs up to 2^63-1).
	maxSeq = 1 << 62
)

// Open opens the durable outbox in dir, creating the directory and a new
// log (with a random log id) when it holds none. An existing log is
// recovered: its log id, seq counter and drop counter are kept, acked and
// dropped events are forgotten, damaged records are skipped and counted in
// Corrupt, and every other event is queued again. A process holds the
// directory exclusively until Close. A directory recorded for another
// agent id than opts.AgentID is refused; one without an owner is recorded
// for opts.AgentID.
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
	if err := claim(dir, opts.AgentID, opts.Logger); err != nil {
		lock.Close()
		return nil, err
	}
	o := newOutbox(opts)
	o.disk = &disk{dir: dir, lock: lock, segBytes: opts.SegmentBytes, createFile: opts.createFile}
	if err := o.recover(); err != nil {
		o.disk.close()
		return nil, err
	}
	return o, nil
}

// ownerFile names the agent a log belongs to.
const ownerFile = "OWNER"

// claim checks that dir belongs to agentID and records agentID when the
// directory has no owner yet. Another agent's log must not be continued:
// its seqs would look like this agent's and the controller would take the
// jump for lost events.
func claim(dir, agentID string, log *slog.Logger) error {
	if agentID == "" {
		return nil
	}
	path := filepath.Join(dir, ownerFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if owner := strings.TrimSuffix(string(b), "\n"); owner != agentID {
			return fmt.Errorf("belongs to agent %q, not to agent %q: give each agent its own data_dir, "+
				"or remove the directory to discard the events agent %q has not delivered", owner, agentID, owner)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", ownerFile, err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) > 0 {
		log.Warn("outbox: log written before owners were recorded; recording this agent as its owner",
			"dir", dir, "agent_id", agentID)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("record owner: %w", err)
	}
	if _, err = f.Write([]byte(agentID + "\n")); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record owner: %w", err)
	}
	return nil
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
		lastSeq   uint64 // from state records
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
			case kindEvent, kindRecord:
				seq, exp, _, _, ok := parseEvent(p)
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
			case kindState:
				if len(p) != statePayload || leUint64(p[1:9]) > maxSeq || leUint64(p[9:17]) > maxSeq {
					return false
				}
				acked, lastSeq = max(acked, leUint64(p[1:9])), max(lastSeq, leUint64(p[9:17]))
				dropped = max(dropped, leUint64(p[17:25]))
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
	o.acked, o.dropped, o.droppedSaved = acked, dropped, dropped
	o.nextSeq = max(nextFloor, highest+1, acked+1, lastSeq+1)
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
	} else if err := o.newSegmentLocked(); err != nil {
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
	f, err := d.createFile(s.path)
	if err != nil {
		d.failed = true
		return fmt.Errorf("create segment %s: %w", filepath.Base(s.path), err)
	}
	buf := appendFrame(nil, h.payload())
	if _, err = f.WriteAt(buf, 0); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(d.dir)
	}
	if err != nil {
		d.failed = true
		f.Close()
		os.Remove(s.path)
		return fmt.Errorf("create segment %s: %w", filepath.Base(s.path), err)
	}
	s.f, s.size = f, int64(len(buf))
	d.segs = append(d.segs, s)
	d.bytes += s.size
	return nil
}

// write appends buf to the active segment, with fsync when sync is set. On
// failure the segment is cut back to where it was.
func (d *disk) write(buf []byte, sync bool) error {
	a := d.active()
	_, err := a.f.WriteAt(buf, a.size)
	if err == nil && sync {
		err = a.f.Sync()
	}
	if err != nil {
		d.failed = true
		if terr := a.f.Truncate(a.size); terr != nil {
			err = errors.Join(err, terr)
		}
		return fmt.Errorf("write %s: %w", filepath.Base(a.path), err)
	}
	d.failed = false
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

// read returns an item's format and payload from its segment.
func (d *disk) read(it *item) (uint8, []byte, error) {
	_, p, err := d.readRaw(it)
	if err != nil {
		return 0, nil, err
	}
	seq, _, format, data, ok := parseEvent(p)
	if !ok || seq != it.seq {
		return 0, nil, fmt.Errorf("read seq %d from %s: record holds seq %d", it.seq, filepath.Base(it.seg.path), seq)
	}
	return format, data, nil
}

// collectLocked deletes the segments (never the active one) whose events
// are all acked or dropped and whose drop records no longer matter,
// replaces an active segment in that state when it is large or a write
// failed, then rewrites the emptiest segments while the files hold more
// than twice MaxBytes.
func (o *Outbox) collectLocked() {
	d := o.disk
	o.deleteDeadLocked()
	if a := d.active(); a.live == 0 && a.size > headerFrame+stateFrame && (d.failed || a.size >= d.segBytes/4) {
		if a.tombs = o.neededTombs(a); len(a.tombs) == 0 {
			o.reclaimLocked()
			o.deleteDeadLocked()
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

// reclaimLocked frees the active segment, which holds nothing that matters
// but the counters: a new active segment takes over when there is room for
// one (the old one is then deleted like any dead segment), else the file
// is cut back to its header and a state record carrying the counters. The
// state record is written over the dead records before the cut, so that a
// crash in between costs a damaged dead record, not the counters.
func (o *Outbox) reclaimLocked() {
	d := o.disk
	a := d.active()
	if a.base < o.nextSeq {
		err := o.newSegmentLocked()
		if err == nil {
			d.reclaims++
			return
		}
		o.log.Warn("outbox: no room for a new segment; cutting the acked one back in place", "err", err)
	}
	rec := appendFrame(nil, statePayloadOf(o.acked, o.nextSeq-1, o.dropped))
	size := int64(headerFrame + len(rec))
	_, err := a.f.WriteAt(rec, headerFrame)
	if err == nil {
		err = a.f.Sync()
	}
	if err == nil {
		err = a.f.Truncate(size)
	}
	if err == nil {
		err = a.f.Sync()
	}
	if err != nil {
		o.log.Warn("outbox: reclaim acked segment", "file", filepath.Base(a.path), "err", err)
		return
	}
	d.bytes -= a.size - size
	a.size = size
	d.failed = false
	d.reclaims++
	o.droppedSaved = max(o.droppedSaved, o.dropped)
}

// deleteDeadLocked deletes the segments, never the active one, that hold
// no live event and no drop record that matters.
func (o *Outbox) deleteDeadLocked() {
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
