package flow

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"golang.org/x/sys/unix"

	"github.com/netaiops/netaiops/collector/flow/synth"
)

// vethFixture is the capture the live test writes when
// FLOW_WRITE_FIXTURE=1, replayed by TestReplayVethFixture.
const vethFixture = "../../testdata/flow/veth-capture.pcap"

const (
	markerPort = 9999 // a UDP datagram to this port ends a capture
	scanPorts  = 40
)

var (
	vethA  = netip.MustParseAddr("198.18.7.1")
	vethB  = netip.MustParseAddr("198.18.7.2")
	vethA6 = netip.MustParseAddr("fd00:7::1")
	vethB6 = netip.MustParseAddr("fd00:7::2")
	vlanA  = netip.MustParseAddr("198.18.8.1")
	vlanB  = netip.MustParseAddr("198.18.8.2")
	vlanID = uint16(10)
)

func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture test needs root (network namespaces, AF_PACKET)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("live capture test needs the ip command (iproute2)")
	}
}

func ipRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

type vethPair struct {
	nsA, nsB string
	ifA, ifB string
}

// newVethPair makes two namespaces joined by a veth pair with IPv4, IPv6
// and a VLAN subinterface, all removed when the test ends.
func newVethPair(t *testing.T) *vethPair {
	requireNetns(t)
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	p := &vethPair{nsA: "nai-flow-" + id + "-a", nsB: "nai-flow-" + id + "-b", ifA: "nf" + id + "a", ifB: "nf" + id + "b"}
	ipRun(t, "netns", "add", p.nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.nsA).Run() })
	ipRun(t, "netns", "add", p.nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", p.nsB).Run() })
	ipRun(t, "link", "add", p.ifA, "netns", p.nsA, "type", "veth", "peer", "name", p.ifB, "netns", p.nsB)
	for _, s := range []struct {
		ns, dev string
		v4, v6  netip.Addr
	}{{p.nsA, p.ifA, vethA, vethA6}, {p.nsB, p.ifB, vethB, vethB6}} {
		ipRun(t, "-n", s.ns, "link", "set", "lo", "up")
		ipRun(t, "-n", s.ns, "addr", "add", s.v4.String()+"/30", "dev", s.dev)
		ipRun(t, "-n", s.ns, "addr", "add", s.v6.String()+"/64", "dev", s.dev, "nodad")
		ipRun(t, "-n", s.ns, "link", "set", s.dev, "up")
	}
	return p
}

// inNetns runs fn on an OS thread switched into namespace ns. The thread is
// never switched back: it ends with its goroutine, so no other goroutine
// runs in the wrong namespace. Sockets keep the namespace they were made in.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// teeSource passes frames through, closes done when the marker datagram
// goes by, and optionally writes every frame (VLAN tag re-inserted) to a
// pcap file.
type teeSource struct {
	Source
	done   chan struct{}
	once   sync.Once
	w      *pcapgo.Writer
	frames atomic.Uint64
	buf    []byte
}

func (s *teeSource) ReadPacket(ctx context.Context) ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.Source.ReadPacket(ctx)
	if err != nil {
		return data, ci, err
	}
	s.frames.Add(1)
	if s.w != nil {
		out := data
		if v := ancillaryVLAN(ci.AncillaryData); v != 0 && len(data) >= 14 {
			s.buf = append(s.buf[:0], data[:12]...)
			s.buf = binary.BigEndian.AppendUint16(s.buf, 0x8100)
			s.buf = binary.BigEndian.AppendUint16(s.buf, v)
			s.buf = append(s.buf, data[12:]...)
			out = s.buf
		}
		wci := gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(out), Length: ci.Length + len(out) - len(data)}
		if err := s.w.WritePacket(wci, out); err != nil {
			return nil, ci, err
		}
	}
	var m Meta
	if NewDecoder(layers.LinkTypeEthernet).Decode(data, &m) && m.Proto == 17 && m.DstPort == markerPort {
		s.once.Do(func() { close(s.done) })
	}
	return data, ci, nil
}

type capture struct {
	src   *teeSource
	mt    *Meter
	recs  []Record
	snaps []Snapshot
	errc  chan error
	stop  context.CancelFunc
}

func startCapture(t *testing.T, ns, dev, filter string, w *pcapgo.Writer) *capture {
	t.Helper()
	c := &capture{errc: make(chan error, 1)}
	var live *LiveSource
	err := inNetns(ns, func() error {
		var err error
		live, err = OpenLive(LiveOptions{Interface: dev, Filter: filter, Snaplen: 256, Promiscuous: true, RingMB: 4})
		return err
	})
	if err != nil {
		t.Fatalf("open live capture: %v", err)
	}
	c.src = &teeSource{Source: live, done: make(chan struct{}), w: w}
	cfg := MeterConfig{Name: dev, Features: FeatureConfig{Interval: time.Hour},
		Table: TableConfig{IdleTimeout: time.Minute, OnEnd: func(r *Record) { c.recs = append(c.recs, *r) }}}
	c.mt = NewMeter(cfg, live.LinkType(), slog.New(slog.DiscardHandler), func(s *Snapshot) { c.snaps = append(c.snaps, *s) })
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go func() { c.errc <- c.mt.Run(ctx, c.src) }()
	t.Cleanup(func() { cancel(); live.Close() })
	return c
}

// finish waits for the marker, stops the capture and flushes the meter.
func (c *capture) finish(t *testing.T) {
	t.Helper()
	select {
	case <-c.src.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("marker datagram not captured; %d frames seen", c.src.frames.Load())
	}
	c.stop()
	if err := <-c.errc; err != nil {
		t.Fatalf("capture: %v", err)
	}
	c.mt.Finish()
}

// traffic runs real TCP, UDP and ICMP between the namespaces: from A to B
// over IPv4, IPv6 and the VLAN, then a small port scan, then the marker.
func traffic(t *testing.T, p *vethPair) {
	t.Helper()
	var tcpLn net.Listener
	var udpLn net.PacketConn
	err := inNetns(p.nsB, func() error {
		var err error
		if tcpLn, err = net.Listen("tcp", ":8080"); err != nil {
			return err
		}
		udpLn, err = net.ListenPacket("udp", ":5353")
		return err
	})
	if err != nil {
		t.Fatalf("servers: %v", err)
	}
	defer tcpLn.Close()
	defer udpLn.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(2)
	go func() { // TCP echo of the first 1000 bytes, then close
		defer wg.Done()
		for range 2 {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 3000)
			io.ReadFull(c, buf)
			c.Write(buf[:1000])
			c.Close()
		}
	}()
	go func() { // UDP echo
		defer wg.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := udpLn.ReadFrom(buf)
			if err != nil {
				return
			}
			udpLn.WriteTo(buf[:n], from)
		}
	}()
	err = inNetns(p.nsA, func() error {
		for _, dst := range []string{vethB.String(), "[" + vethB6.String() + "]"} {
			c, err := net.DialTimeout("tcp", dst+":8080", 5*time.Second)
			if err != nil {
				return err
			}
			c.Write(make([]byte, 3000))
			if _, err := io.ReadFull(c, make([]byte, 1000)); err != nil {
				return fmt.Errorf("tcp echo from %s: %w", dst, err)
			}
			c.Close()
		}
		c, err := net.Dial("udp", vethB.String()+":5353")
		if err != nil {
			return err
		}
		buf := make([]byte, 200)
		for range 5 {
			c.Write(buf)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil {
				return fmt.Errorf("udp echo: %w", err)
			}
		}
		c.Close()
		// This kernel may lack 802.1Q devices: put tagged frames on the
		// wire by hand, both ways, through packet sockets.
		for range 5 {
			if err := injectVLAN(p.ifA, vlanA, vlanB, 40000, 5354); err != nil {
				return err
			}
			if err := inNetns(p.nsB, func() error { return injectVLAN(p.ifB, vlanB, vlanA, 5354, 40000) }); err != nil {
				return err
			}
		}
		if err := ping(vethB, 3); err != nil {
			return err
		}
		if err := ping(vethB6, 3); err != nil {
			return err
		}
		for port := range scanPorts { // closed ports: SYN, then RST back
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vethB, uint16(20000+port)).String(), 2*time.Second)
			if err == nil {
				c.Close()
				return fmt.Errorf("port %d unexpectedly open", 20000+port)
			}
		}
		c, err = net.Dial("udp", netip.AddrPortFrom(vethB, markerPort).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("end"))
		return err
	})
	if err != nil {
		t.Fatalf("traffic: %v", err)
	}
	tcpLn.Close()
	udpLn.Close()
}

// injectVLAN sends one 802.1Q-tagged UDP frame out of dev (in the calling
// thread's namespace) through a packet socket.
func injectVLAN(dev string, src, dst netip.Addr, sport, dport uint16) error {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	f := synth.Frame{VLANs: []uint16{vlanID}, Src: src, Dst: dst, Proto: 17, SrcPort: sport, DstPort: dport, Payload: 100}
	b, _ := synth.Append(nil, &f)
	if err := unix.Sendto(fd, b, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}); err != nil {
		return fmt.Errorf("inject on %s: %w", dev, err)
	}
	return nil
}

// ping sends n ICMP echo requests over a raw socket and waits for each reply.
func ping(dst netip.Addr, n int) error {
	network, typ := "ip4:icmp", byte(8)
	if dst.Is6() {
		network, typ = "ip6:ipv6-icmp", 128 // the kernel fills in the ICMPv6 checksum
	}
	c, err := net.ListenPacket(network, "")
	if err != nil {
		return fmt.Errorf("ping %s: %w", dst, err)
	}
	defer c.Close()
	for seq := range n {
		msg := []byte{typ, 0, 0, 0, 0x12, 0x34, 0, byte(seq + 1), 'n', 'a', 'i', '!'}
		if dst.Is4() {
			binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		}
		if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		buf := make([]byte, 1500)
		for {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				return fmt.Errorf("ping %s: reply %d: %w", dst, seq, err)
			}
			if k >= 8 && (buf[0] == 0 || buf[0] == 129) && buf[7] == byte(seq+1) {
				break
			}
		}
	}
	return nil
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// checkVethFlows asserts what traffic() must have produced, live or replayed.
func checkVethFlows(t *testing.T, recs []Record, snaps []Snapshot) {
	t.Helper()
	find := func(desc string, match func(r *Record) bool) *Record {
		t.Helper()
		for i := range recs {
			if match(&recs[i]) {
				return &recs[i]
			}
		}
		t.Errorf("no %s flow among %d", desc, len(recs))
		return nil
	}
	const syn, fin, rst, ack = 0x02, 0x01, 0x04, 0x10
	for _, srv := range []netip.Addr{vethB, vethB6} {
		r := find("tcp "+srv.String(), func(r *Record) bool {
			k := r.FlowKey()
			return k.Proto == 6 && k.Dst == srv && k.DstPort == 8080
		})
		if r == nil {
			continue
		}
		if r.Packets[0] < 3 || r.Packets[1] < 2 || r.Bytes[0] < 3000 || r.Bytes[1] < 1000 {
			t.Errorf("tcp %s: packets %v bytes %v", srv, r.Packets, r.Bytes)
		}
		if r.TCPFlags[0]&(syn|ack|fin) != syn|ack|fin || r.TCPFlags[1]&(syn|ack) != syn|ack {
			t.Errorf("tcp %s: flags %#x %#x", srv, r.TCPFlags[0], r.TCPFlags[1])
		}
		if k := r.FlowKey(); !(k.Src == vethA || k.Src == vethA6) {
			t.Errorf("tcp %s: initiator %v", srv, k.Src)
		}
	}
	for _, c := range []struct {
		dst  netip.Addr
		port uint16
		vlan uint16
	}{{vethB, 5353, 0}, {vlanB, 5354, vlanID}} {
		r := find("udp "+c.dst.String(), func(r *Record) bool {
			k := r.FlowKey()
			return k.Proto == 17 && k.Dst == c.dst && k.DstPort == c.port
		})
		if r != nil && (r.Packets != [2]uint64{5, 5} || r.Key.VLAN != c.vlan) {
			t.Errorf("udp %s: packets %v vlan %d, want [5 5] vlan %d", c.dst, r.Packets, r.Key.VLAN, c.vlan)
		}
	}
	for _, c := range []struct {
		dst   netip.Addr
		proto uint8
		port  uint16
	}{{vethB, 1, 8 << 8}, {vethB6, 58, 128 << 8}} {
		r := find("echo "+c.dst.String(), func(r *Record) bool {
			k := r.FlowKey()
			return k.Proto == c.proto && k.Dst == c.dst && k.DstPort == c.port
		})
		if r != nil && r.Packets != [2]uint64{3, 3} {
			t.Errorf("echo %s: packets %v, want [3 3]", c.dst, r.Packets)
		}
	}
	scanned := 0
	for i := range recs {
		k := recs[i].FlowKey()
		if k.Proto == 6 && k.Dst == vethB && k.DstPort >= 20000 && k.DstPort < 20000+scanPorts &&
			recs[i].TCPFlags[0]&syn != 0 && recs[i].TCPFlags[1]&rst != 0 {
			scanned++
		}
	}
	if scanned != scanPorts {
		t.Errorf("scan: %d flows answered by RST, want %d", scanned, scanPorts)
	}
	if len(snaps) == 0 {
		t.Fatal("no interval closed")
	}
	var fo *FanOut
	for _, s := range snaps {
		for i := range s.FanOut {
			if s.FanOut[i].Src == vethA && (fo == nil || s.FanOut[i].DstPorts > fo.DstPorts) {
				fo = &s.FanOut[i]
			}
		}
	}
	if fo == nil || fo.DstPorts < scanPorts || fo.DstPorts > scanPorts+6 {
		t.Errorf("fan-out of %v: %+v, want about %d distinct ports", vethA, fo, scanPorts+3)
	}
}

func TestLiveCaptureOnVeth(t *testing.T) {
	p := newVethPair(t)
	var w *pcapgo.Writer
	if os.Getenv("FLOW_WRITE_FIXTURE") == "1" {
		f, err := os.Create(vethFixture)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w = pcapgo.NewWriterNanos(f)
		w.WriteFileHeader(256, layers.LinkTypeEthernet)
	}
	all := startCapture(t, p.nsA, p.ifA, "", w)
	udp := startCapture(t, p.nsA, p.ifA, "udp", nil)
	traffic(t, p)
	all.finish(t)
	udp.finish(t)

	checkVethFlows(t, all.recs, all.snaps)
	st := all.src.Stats()
	if st.Packets == 0 || st.KernelPackets < st.Packets || st.KernelDrops != 0 {
		t.Errorf("source stats %+v", st)
	}
	if d := all.mt.DecodeStats(); d.Fast == 0 || d.General == 0 {
		t.Errorf("decode stats %+v: want both paths used", d)
	}
	// The kernel filter passed UDP only, and all of it.
	var sawUDP int
	for _, r := range udp.recs {
		if r.Key.Proto != 17 {
			t.Errorf("filter \"udp\" let through %v", r.FlowKey())
		}
		sawUDP++
	}
	if sawUDP < 3 {
		t.Errorf("filtered capture saw %d UDP flows, want at least 3", sawUDP)
	}
}

func TestReplayVethFixture(t *testing.T) {
	if _, err := os.Stat(vethFixture); errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s missing: run FLOW_WRITE_FIXTURE=1 go test -run TestLiveCaptureOnVeth as root", vethFixture)
	}
	snaps, recs, _ := runFile(t, filepath.Clean(vethFixture), false)
	checkVethFlows(t, recs, snaps)
}

// TestLiveSourceSilenceAndDrops checks the poll timeout on a silent link
// and that the kernel's drop counter reaches Stats when the ring overflows.
func TestLiveSourceSilenceAndDrops(t *testing.T) {
	p := newVethPair(t)
	var live *LiveSource
	err := inNetns(p.nsA, func() error {
		var err error
		live, err = OpenLive(LiveOptions{Interface: p.ifA, Filter: "udp dst port 7777", RingMB: 1, PollTimeout: 50 * time.Millisecond})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, _, err := live.ReadPacket(context.Background()); !errors.Is(err, ErrNoPacket) {
		t.Fatalf("silent link: %v, want ErrNoPacket", err)
	}
	// Flood the small ring without reading it.
	const sent = 20000
	err = inNetns(p.nsA, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(vethB, 7777).String())
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64)
		for range sent {
			c.Write(buf) // refused datagrams are fine: the capture sees them leave
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for {
		_, _, err := live.ReadPacket(context.Background())
		if errors.Is(err, ErrNoPacket) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got++
	}
	st := live.Stats()
	t.Logf("sent %d, read %d, stats %+v", sent, got, st)
	if st.KernelDrops == 0 || uint64(got)+st.KernelDrops < sent*9/10 || st.Packets != uint64(got) {
		t.Errorf("sent %d, read %d, stats %+v: want drops counted", sent, got, st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := live.ReadPacket(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}
