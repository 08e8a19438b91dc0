package flow

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// LiveOptions configures live capture on one interface.
type LiveOptions struct {
	Interface string
	// Filter is a capture filter in CompileFilter's language; empty takes
	// every frame.
	Filter string
	// Snaplen is how many bytes of each frame are kept; default 128, enough
	// for Ethernet, two VLAN tags, IPv6 with an extension header and TCP.
	Snaplen int
	// Promiscuous also takes frames not addressed to the interface.
	Promiscuous bool
	// RingMB is the TPACKET_V3 ring size; default 16.
	RingMB int
	// PollTimeout bounds how long ReadPacket waits before ErrNoPacket;
	// default 100ms.
	PollTimeout time.Duration
}

// LiveSource captures from a network interface with AF_PACKET TPACKET_V3:
// the kernel fills a memory-mapped ring of blocks and the filter runs in the
// kernel, so frames are neither copied nor filtered in user space.
type LiveSource struct {
	name    string
	tp      *afpacket.TPacket
	promisc int // fd holding the promiscuous membership, -1 if none
	packets uint64
	stats   statsBox
}

// OpenLive opens a live capture. It needs CAP_NET_RAW.
func OpenLive(opt LiveOptions) (*LiveSource, error) {
	if opt.Snaplen <= 0 {
		opt.Snaplen = 128
	}
	if opt.RingMB <= 0 {
		opt.RingMB = 16
	}
	if opt.PollTimeout <= 0 {
		opt.PollTimeout = 100 * time.Millisecond
	}
	ifi, err := net.InterfaceByName(opt.Interface)
	if err != nil {
		return nil, fmt.Errorf("open capture on %s: %w", opt.Interface, err)
	}
	// The filter's return value is the snap length, so even an empty
	// filter becomes a program: it enforces the snaplen in the kernel.
	prog, err := CompileFilter(opt.Filter, opt.Snaplen)
	if err != nil {
		return nil, fmt.Errorf("open capture on %s: %w", opt.Interface, err)
	}
	frameSize, blockSize, numBlocks := ringSize(opt.RingMB, opt.Snaplen, os.Getpagesize())
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(opt.Interface),
		afpacket.OptFrameSize(frameSize),
		afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks),
		afpacket.OptBlockTimeout(10*time.Millisecond),
		afpacket.OptPollTimeout(opt.PollTimeout),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
	)
	if err != nil {
		return nil, fmt.Errorf("open capture on %s: tpacket v3: %w", opt.Interface, err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("open capture on %s: attach filter: %w", opt.Interface, err)
	}
	s := &LiveSource{name: opt.Interface, tp: tp, promisc: -1}
	if opt.Promiscuous {
		fd, err := promiscuous(ifi.Index)
		if err != nil {
			tp.Close()
			return nil, fmt.Errorf("open capture on %s: promiscuous mode: %w", opt.Interface, err)
		}
		s.promisc = fd
	}
	return s, nil
}

// ringSize picks TPACKET_V3 frame and block sizes for a ring of about mb
// MiB (as gopacket's afpacket example does).
func ringSize(mb, snaplen, page int) (frame, block, blocks int) {
	if snaplen < page {
		frame = page / (page / snaplen)
	} else {
		frame = (snaplen/page + 1) * page
	}
	block = frame * 128
	blocks = max(mb<<20/block, 1)
	return frame, block, blocks
}

// promiscuous holds the interface in promiscuous mode through a socket of
// its own (protocol 0: it receives nothing); the kernel drops the
// membership, and the mode, when the socket closes, even if we crash.
func promiscuous(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet membership: %w", err)
	}
	return fd, nil
}

// Name is the interface name.
func (s *LiveSource) Name() string { return s.name }

// LinkType is Ethernet: AF_PACKET raw sockets deliver link-layer frames.
func (s *LiveSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// ReadPacket returns the next frame from the ring (valid until the next
// call), ErrNoPacket after the poll timeout, or ctx.Err().
func (s *LiveSource) ReadPacket(ctx context.Context) ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		s.refreshStats()
		if ctx.Err() != nil {
			return nil, ci, ctx.Err()
		}
		if errors.Is(err, afpacket.ErrTimeout) {
			return nil, ci, ErrNoPacket
		}
		return nil, ci, fmt.Errorf("read %s: %w", s.name, err)
	}
	s.packets++
	if s.packets&4095 == 0 {
		s.refreshStats()
	}
	return data, ci, nil
}

// refreshStats reads the kernel counters (cumulative in gopacket, which
// adds up the kernel's read-and-reset values) into the shared box.
func (s *LiveSource) refreshStats() {
	st := SourceStats{Packets: s.packets}
	if _, v3, err := s.tp.SocketStats(); err == nil {
		st.KernelPackets, st.KernelDrops, st.QueueFreezes = uint64(v3.Packets()), uint64(v3.Drops()), uint64(v3.QueueFreezes())
	}
	s.stats.store(st)
}

// Stats returns the delivered packets and the kernel's counters as of the
// last refresh (every 4096 packets, every poll timeout, and at Close).
func (s *LiveSource) Stats() SourceStats { return s.stats.load() }

// Close releases the ring and the promiscuous membership.
func (s *LiveSource) Close() error {
	s.refreshStats()
	s.tp.Close()
	if s.promisc >= 0 {
		if err := unix.Close(s.promisc); err != nil {
			return fmt.Errorf("close %s: promiscuous socket: %w", s.name, err)
		}
		s.promisc = -1
	}
	return nil
}
