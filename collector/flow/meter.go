package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/gopacket/afpacket"
	"github.com/google/gopacket/layers"
)

// MeterConfig configures one capture point.
type MeterConfig struct {
	Name     string // capture point, the "capture" label of every sample
	Table    TableConfig
	Features FeatureConfig
}

// Meter is the pipeline of one capture point: decode, flow table, features,
// and intervals closed on packet timestamps. Not safe for concurrent use;
// Run owns it while it runs.
type Meter struct {
	cfg        MeterConfig
	log        *slog.Logger
	dec        *Decoder
	tab        *Table
	feat       *Features
	emit       func(*Snapshot)
	src        Source
	intervalNs int64
	start      int64 // current interval, Unix ns; 0 before the first packet
	end        int64
	last       int64 // newest packet timestamp
	m          Meta
}

// NewMeter builds the pipeline for frames of the given link type. emit
// receives each closed interval on the goroutine that feeds the meter; it
// must not keep the pointer.
func NewMeter(cfg MeterConfig, link layers.LinkType, log *slog.Logger, emit func(*Snapshot)) *Meter {
	cfg.Features.defaults()
	return &Meter{
		cfg:        cfg,
		log:        log.With("capture", cfg.Name),
		dec:        NewDecoder(link),
		tab:        NewTable(cfg.Table),
		feat:       NewFeatures(cfg.Features),
		emit:       emit,
		intervalNs: int64(cfg.Features.Interval),
	}
}

// Table is the meter's flow table (read it only from the feeding goroutine).
func (mt *Meter) Table() *Table { return mt.tab }

// DecodeStats are the decoder's counters.
func (mt *Meter) DecodeStats() DecodeStats { return mt.dec.Stats }

// Packet runs one frame captured at ts (Unix ns) with wireLen bytes on the
// wire through the pipeline. It allocates nothing.
func (mt *Meter) Packet(data []byte, ts int64, wireLen int) {
	mt.packet(data, ts, wireLen, 0)
}

func (mt *Meter) packet(data []byte, ts int64, wireLen int, vlan uint16) {
	if ts >= mt.end {
		mt.roll(ts)
	}
	if ts > mt.last {
		mt.last = ts
	}
	if !mt.dec.Decode(data, &mt.m) {
		return
	}
	if vlan != 0 && mt.m.VLAN == 0 {
		mt.m.VLAN = vlan // tag stripped by the NIC or kernel, reported aside
	}
	mt.feat.Observe(&mt.m, wireLen, mt.tab.Observe(&mt.m, ts, wireLen))
}

// roll closes the current interval (and, after a silence, one empty
// interval so rates visibly drop) and opens the one holding ts.
func (mt *Meter) roll(ts int64) {
	next := ts / mt.intervalNs * mt.intervalNs
	if mt.start != 0 {
		mt.close(mt.end)
		if mt.end < next {
			mt.start, mt.end = mt.end, mt.end+mt.intervalNs
			mt.close(mt.end)
		}
	}
	mt.start, mt.end = next, next+mt.intervalNs
}

func (mt *Meter) close(end int64) {
	mt.tab.Advance(end)
	s := mt.feat.Snapshot(mt.cfg.Name, time.Unix(0, mt.start), time.Unix(0, end), mt.tab.Stats())
	s.Decode = mt.dec.Stats
	if mt.src != nil {
		s.Source = mt.src.Stats()
	}
	if mt.emit != nil {
		mt.emit(&s)
	}
}

// Tick tells the meter the time is now (Unix ns) when no packet came:
// flows expire and a finished interval is closed.
func (mt *Meter) Tick(now int64) {
	if mt.start != 0 && now >= mt.end {
		mt.roll(now)
	}
	mt.tab.Advance(now)
}

// Finish closes the last interval at the newest packet's time and ends every
// flow (the end of a file).
func (mt *Meter) Finish() {
	if mt.start != 0 {
		end := max(mt.last+1, mt.start+1)
		mt.close(end)
		mt.start, mt.end = 0, 0
	}
	mt.tab.Flush()
}

// Run feeds the meter from src until the source ends (io.EOF: the last
// interval is closed and the table flushed) or ctx ends (nil is returned).
func (mt *Meter) Run(ctx context.Context, src Source) error {
	mt.src = src
	mt.log.Info("capture started", "source", src.Name(), "link_type", src.LinkType().String())
	var n uint64
	for {
		data, ci, err := src.ReadPacket(ctx)
		if err != nil {
			switch {
			case errors.Is(err, ErrNoPacket):
				mt.Tick(time.Now().UnixNano())
				continue
			case errors.Is(err, io.EOF):
				mt.Finish()
				mt.log.Info("capture ended", "packets", n, "decode_errors", mt.dec.Stats.BadTotal())
				return nil
			case ctx.Err() != nil:
				mt.log.Info("capture stopped", "packets", n)
				return nil
			}
			return fmt.Errorf("capture %s: %w", mt.cfg.Name, err)
		}
		n++
		wl := ci.Length
		if wl < len(data) {
			wl = len(data) // some writers leave the original length 0
		}
		mt.packet(data, ci.Timestamp.UnixNano(), wl, ancillaryVLAN(ci.AncillaryData))
		if n&1023 == 0 && ctx.Err() != nil {
			mt.log.Info("capture stopped", "packets", n)
			return nil
		}
	}
}

func ancillaryVLAN(ad []interface{}) uint16 {
	for _, a := range ad {
		if v, ok := a.(afpacket.AncillaryVLAN); ok {
			return uint16(v.VLAN) & 0x0fff
		}
	}
	return 0
}

// Capture pairs a source with the meter that consumes it.
type Capture struct {
	Source Source
	Meter  *Meter
}

// RunAll runs every capture on a goroutine of its own and waits for all of
// them: until each source ends or ctx ends. One failing capture does not
// stop the others; their errors are joined. Each meter's emit callback runs
// on its capture's goroutine, so a callback shared by several meters must
// be safe for concurrent use.
func RunAll(ctx context.Context, caps []Capture) error {
	errs := make([]error, len(caps))
	var wg sync.WaitGroup
	for i, c := range caps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Meter.Run(ctx, c.Source)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
