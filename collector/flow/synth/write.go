package synth

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// WriteStats says what a Write produced.
type WriteStats struct {
	Packets  int
	Bytes    int64 // on the wire
	Captured int64 // bytes written as packet data
}

// Generator is a source of frames in time order: Mix, Enterprise.
type Generator interface {
	Next(buf []byte) (out []byte, ts time.Time, wireLen int, ok bool)
}

// Write writes the mix to w as pcap (microsecond timestamps, the format
// every tool reads) or, with ng, as pcapng.
func Write(w io.Writer, cfg MixConfig, ng bool) (WriteStats, error) {
	return WriteFrom(w, NewMix(cfg), cfg.Snaplen, ng)
}

// WriteFrom writes what g generates to w, as Write does.
func WriteFrom(w io.Writer, g Generator, snaplen int, ng bool) (WriteStats, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var st WriteStats
	var write func(ci gopacket.CaptureInfo, data []byte) error
	var ngw *pcapgo.NgWriter
	snap := uint32(snaplen)
	if snap == 0 {
		snap = 65535
	}
	if ng {
		var err error
		ngw, err = pcapgo.NewNgWriterInterface(bw, pcapgo.NgInterface{Name: "synth", LinkType: layers.LinkTypeEthernet, SnapLength: snap}, pcapgo.DefaultNgWriterOptions)
		if err != nil {
			return st, fmt.Errorf("write pcapng header: %w", err)
		}
		write = ngw.WritePacket
	} else {
		pw := pcapgo.NewWriter(bw)
		if err := pw.WriteFileHeader(snap, layers.LinkTypeEthernet); err != nil {
			return st, fmt.Errorf("write pcap header: %w", err)
		}
		write = pw.WritePacket
	}
	buf := make([]byte, 0, 2048)
	for {
		out, ts, wire, ok := g.Next(buf[:0])
		if !ok {
			break
		}
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(out), Length: wire}
		if err := write(ci, out); err != nil {
			return st, fmt.Errorf("write packet %d: %w", st.Packets+1, err)
		}
		st.Packets++
		st.Bytes += int64(wire)
		st.Captured += int64(len(out))
		buf = out
	}
	if ngw != nil {
		if err := ngw.Flush(); err != nil {
			return st, fmt.Errorf("flush pcapng: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("flush: %w", err)
	}
	return st, nil
}
