package flow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Source delivers captured frames to one capture loop. The agent runs one
// loop per source, so several sources run side by side.
type Source interface {
	// Name identifies the capture point ("eth0", "file:x.pcap").
	Name() string
	LinkType() layers.LinkType
	// ReadPacket returns the next frame; its bytes stay valid until the
	// next call. A file returns io.EOF at its end. A live source returns
	// ErrNoPacket when its poll timeout passes without a packet, and
	// ctx.Err() once ctx ends.
	ReadPacket(ctx context.Context) (data []byte, ci gopacket.CaptureInfo, err error)
	// Stats is safe to call from another goroutine.
	Stats() SourceStats
	Close() error
}

// ErrNoPacket says a live source's poll timed out: a chance to close an
// interval on the wall clock when the link is silent.
var ErrNoPacket = errors.New("no packet before the poll timeout")

// SourceStats counts what a source delivered and, for live capture, what the
// kernel saw and dropped.
type SourceStats struct {
	Packets       uint64 // frames delivered
	KernelPackets uint64 // live: packets that passed the socket's filter
	KernelDrops   uint64 // live: packets lost for lack of ring space
	QueueFreezes  uint64 // live: TPACKET_V3 ring freezes
}

// FileOptions tunes a pcap or pcapng replay.
type FileOptions struct {
	// Paced replays at the recorded speed (sleeping between packets on the
	// wall clock); otherwise packets come as fast as they can be read.
	Paced bool
	// BufferSize is the read buffer; default 1 MiB.
	BufferSize int
}

// packetReader is what pcapgo's Reader and NgReader have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// FileSource replays a pcap or pcapng file.
type FileSource struct {
	name    string
	f       *os.File
	r       packetReader
	paced   bool
	start   time.Time // wall clock of the first packet when paced
	first   time.Time // its capture timestamp
	timer   *time.Timer
	packets uint64
	stats   statsBox
	// truncated is set when the file ended inside a packet record.
	truncated bool
}

// Truncated reports whether a classic pcap file ended inside a packet
// record (the packets before it were delivered, then io.EOF). pcapgo's
// pcapng reader reports a cut block as a plain end of file, so a cut
// pcapng file ends the same way but is not flagged.
func (s *FileSource) Truncated() bool { return s.truncated }

// OpenFile opens a pcap (micro- or nanosecond) or pcapng file; the format is
// told by its magic number.
func OpenFile(path string, opt FileOptions) (*FileSource, error) {
	if opt.BufferSize <= 0 {
		opt.BufferSize = 1 << 20
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture %s: %w", path, err)
	}
	br := bufio.NewReaderSize(f, opt.BufferSize)
	magic, err := br.Peek(4)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open capture %s: read magic: %w", path, err)
	}
	var r packetReader
	if binary.BigEndian.Uint32(magic) == 0x0a0d0d0a {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open capture %s: pcapng: %w", path, err)
		}
		r = ng
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open capture %s: pcap: %w", path, err)
		}
		r = pr
		// pcapgo has parsed and checked the file header. For a plain
		// (not gzipped) file, records are read straight from the buffer:
		// pcapgo's two io.ReadFull calls per packet cost more than the
		// whole flow update. The resolution comes from the magic (pcapgo's
		// Resolution has micro and nano swapped in v1.1.19).
		rec := &pcapRecords{br: br, link: pr.LinkType(), snaplen: pr.Snaplen()}
		switch binary.BigEndian.Uint32(magic) {
		case 0xa1b2c3d4:
			rec.order, r = binary.BigEndian, rec
		case 0xa1b23c4d:
			rec.order, rec.nanos, r = binary.BigEndian, true, rec
		case 0xd4c3b2a1:
			rec.order, r = binary.LittleEndian, rec
		case 0x4d3cb2a1:
			rec.order, rec.nanos, r = binary.LittleEndian, true, rec
		}
	}
	return &FileSource{name: "file:" + path, f: f, r: r, paced: opt.Paced}, nil
}

// Name is "file:" and the path.
func (s *FileSource) Name() string { return s.name }

// LinkType is the file's link type (of its first interface for pcapng).
func (s *FileSource) LinkType() layers.LinkType { return s.r.LinkType() }

// ReadPacket returns the next packet, waiting first when paced.
func (s *FileSource) ReadPacket(ctx context.Context) ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.r.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ci, io.EOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			// A capture cut short (tcpdump killed mid-write) ends at its
			// last whole packet.
			s.truncated = true
			return nil, ci, io.EOF
		}
		return nil, ci, fmt.Errorf("read %s: %w", s.name, err)
	}
	s.packets++
	if s.packets&1023 == 0 {
		s.stats.store(SourceStats{Packets: s.packets})
	}
	if s.paced {
		if err := s.wait(ctx, ci.Timestamp); err != nil {
			return nil, ci, err
		}
	}
	return data, ci, nil
}

func (s *FileSource) wait(ctx context.Context, ts time.Time) error {
	if s.start.IsZero() {
		s.start, s.first = time.Now(), ts
		return ctx.Err()
	}
	d := time.Until(s.start.Add(ts.Sub(s.first)))
	if d <= 0 {
		return ctx.Err()
	}
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.timer.C:
		return nil
	}
}

// Stats returns the packets read so far (updated every 1024 packets and at
// Close).
func (s *FileSource) Stats() SourceStats { return s.stats.load() }

// Close closes the file.
func (s *FileSource) Close() error {
	s.stats.store(SourceStats{Packets: s.packets})
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.name, err)
	}
	return nil
}

// statsBox publishes SourceStats to other goroutines without locks.
type statsBox struct {
	packets, kernelPackets, kernelDrops, freezes atomic.Uint64
}

func (b *statsBox) store(s SourceStats) {
	b.packets.Store(s.Packets)
	b.kernelPackets.Store(s.KernelPackets)
	b.kernelDrops.Store(s.KernelDrops)
	b.freezes.Store(s.QueueFreezes)
}

func (b *statsBox) load() SourceStats {
	return SourceStats{Packets: b.packets.Load(), KernelPackets: b.kernelPackets.Load(),
		KernelDrops: b.kernelDrops.Load(), QueueFreezes: b.freezes.Load()}
}

// pcapRecords reads classic pcap records from a buffered reader without
// copying: a record is peeked in the buffer and skipped on the next call.
type pcapRecords struct {
	br      *bufio.Reader
	order   binary.ByteOrder
	link    layers.LinkType
	snaplen uint32
	nanos   bool
	pending int // bytes of the previous record still to skip
}

func (r *pcapRecords) LinkType() layers.LinkType { return r.link }

func (r *pcapRecords) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	var ci gopacket.CaptureInfo
	if r.pending > 0 {
		if _, err := r.br.Discard(r.pending); err != nil {
			return nil, ci, err
		}
		r.pending = 0
	}
	h, err := r.br.Peek(16)
	if err != nil {
		if errors.Is(err, io.EOF) && len(h) > 0 {
			return nil, ci, io.ErrUnexpectedEOF
		}
		return nil, ci, err
	}
	sec, frac := r.order.Uint32(h[0:]), r.order.Uint32(h[4:])
	capLen, wireLen := r.order.Uint32(h[8:]), r.order.Uint32(h[12:])
	if capLen > max(r.snaplen, 262144) || capLen > uint32(r.br.Size()-16) {
		return nil, ci, fmt.Errorf("pcap record of %d bytes exceeds the snap length %d", capLen, r.snaplen)
	}
	rec, err := r.br.Peek(16 + int(capLen))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ci, io.ErrUnexpectedEOF
		}
		return nil, ci, err
	}
	r.pending = 16 + int(capLen)
	if !r.nanos {
		frac *= 1000
	}
	ci.Timestamp = time.Unix(int64(sec), int64(frac))
	ci.CaptureLength, ci.Length = int(capLen), int(wireLen)
	return rec[16:], ci, nil
}
