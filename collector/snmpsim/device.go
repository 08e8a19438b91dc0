package snmpsim

import (
	"math"
	"slices"

	"github.com/gosnmp/gosnmp"
)

// column says how an entry's value is produced. colStatic entries carry
// their value; the others are computed per request from the device's clock
// and parameters, so tables are built once and shared.
type column uint8

const (
	colStatic column = iota
	colSysUpTime
	colSysName
	colSysContact
	colSysLocation
	colIfPhysAddress
	colIfAdminStatus
	colIfOperStatus
	colIfLastChange
	colIfInOctets
	colIfInUcastPkts
	colIfInDiscards
	colIfInErrors
	colIfOutOctets
	colIfOutUcastPkts
	colIfOutDiscards
	colIfOutErrors
	colIfSpeed
	colIfHighSpeed
	colIfName
	colIfHCInOctets
	colIfHCInUcastPkts
	colIfHCOutOctets
	colIfHCOutUcastPkts
	colIfAlias
	colIfCounterDiscontinuity
)

// entry is one OID of a device's table.
type entry struct {
	oid  OID
	name string // oid.String(), precomputed for gosnmp
	nlen int    // BER content length of the OID, for size budgets
	typ  gosnmp.Asn1BER
	val  any
	col  column
	slot int32 // interface slot (ifIndex-1) for per-interface columns
}

// table is a numerically sorted, duplicate-free list of entries. Generated
// devices with the same interface count share one table.
type table struct {
	entries []entry
}

// search returns the index of the first entry >= o and whether it equals o.
func (t *table) search(o OID) (int, bool) {
	return slices.BinarySearchFunc(t.entries, o, func(e entry, o OID) int { return e.oid.Compare(o) })
}

// ifParams are one generated interface's seeded characteristics.
type ifParams struct {
	speed           uint64  // bit/s
	inRate, outRate float64 // mean octets/s
	phase           float64 // diurnal phase, radians
	inPkt, outPkt   float64 // mean packet size, octets
	inErrRate       float64 // errors/s
	outErrRate      float64
	inDiscRate      float64
	outDiscRate     float64
	mac             [6]byte
	alias           string
	downFaults      []Fault // interface_down faults of this interface
}

// device is one simulated agent. It is immutable after construction; every
// moving value derives from the request time.
type device struct {
	name      string
	community string
	tab       *table
	contact   string
	location  string
	bootAge   float64 // seconds the device had been up at the simulator's start (recorded: its sysUpTime)
	dayOffset float64 // seconds into the UTC day at the simulator's start
	ifs       []ifParams
	silent    []Fault
	reboots   []Fault
}

// diurnalAmp is the relative swing of interface traffic over a day.
const diurnalAmp = 0.6

const day = 86400.0

// snapshot is a device's state at one request time.
type snapshot struct {
	now  float64 // seconds since the simulator's start
	boot float64 // seconds since start of the last (re)boot; negative before the first
}

func (d *device) snapshot(now float64) snapshot {
	boot := -d.bootAge
	for _, f := range d.reboots {
		if t, ok := lastStart(f, now); ok && t > boot {
			boot = t
		}
	}
	return snapshot{now: now, boot: boot}
}

// isSilent reports whether an unreachable fault is active at now.
func (d *device) isSilent(now float64) bool {
	for _, f := range d.silent {
		if active(f, now) {
			return true
		}
	}
	return false
}

func secs(f Fault) (at, dur, every float64) {
	return f.At.Seconds(), f.Duration.Seconds(), f.Every.Seconds()
}

// lastStart returns the start of the latest occurrence of f at or before now.
func lastStart(f Fault, now float64) (float64, bool) {
	at, _, every := secs(f)
	if now < at {
		return 0, false
	}
	if every <= 0 {
		return at, true
	}
	return at + math.Floor((now-at)/every)*every, true
}

// active reports whether f covers now.
func active(f Fault, now float64) bool {
	t, ok := lastStart(f, now)
	return ok && now < t+f.Duration.Seconds()
}

// downBefore is the total time f was active in [0, x].
func downBefore(f Fault, x float64) float64 {
	at, dur, every := secs(f)
	if x <= at {
		return 0
	}
	if every <= 0 {
		return min(x-at, dur)
	}
	k := math.Floor((x - at) / every)
	r := (x - at) - k*every
	return k*dur + min(r, dur)
}

// lastTransition is the latest start or end of f at or before now.
func lastTransition(f Fault, now float64) (float64, bool) {
	t, ok := lastStart(f, now)
	if !ok {
		return 0, false
	}
	if end := t + f.Duration.Seconds(); end <= now {
		return end, true
	}
	return t, true
}

// ifUp reports whether interface slot is oper-up at now.
func (d *device) ifUp(slot int, now float64) bool {
	for _, f := range d.ifs[slot].downFaults {
		if active(f, now) {
			return false
		}
	}
	return true
}

// trafficTime is the time interface slot has carried traffic since the last
// boot: uptime minus time spent oper-down. It only grows within one boot, so
// counters derived from it are monotonic and freeze while the link is down.
func (d *device) trafficTime(slot int, s snapshot) float64 {
	t := s.now - s.boot
	if s.boot < 0 && len(d.ifs[slot].downFaults) == 0 {
		return t
	}
	from := max(s.boot, 0)
	for _, f := range d.ifs[slot].downFaults {
		t -= downBefore(f, s.now) - downBefore(f, from)
	}
	return max(t, 0)
}

// octets integrates rate*(1 + A*sin(w*t + phase)) over [0, t].
func octets(rate, phase, t float64) float64 {
	w := 2 * math.Pi / day
	v := rate * (t - diurnalAmp/w*(math.Cos(w*t+phase)-math.Cos(phase)))
	return max(v, 0)
}

// ticks converts seconds to TimeTicks (hundredths), wrapping like the MIB.
func ticks(sec float64) uint32 {
	if sec <= 0 {
		return 0
	}
	return uint32(uint64(sec * 100))
}

// value returns the type and value of e at snapshot s.
func (d *device) value(e *entry, s snapshot) (gosnmp.Asn1BER, any) {
	switch e.col {
	case colStatic:
		return e.typ, e.val
	case colSysUpTime:
		return gosnmp.TimeTicks, ticks(s.now - s.boot)
	case colSysName:
		return gosnmp.OctetString, d.name
	case colSysContact:
		return gosnmp.OctetString, d.contact
	case colSysLocation:
		return gosnmp.OctetString, d.location
	}
	p := &d.ifs[e.slot]
	slot := int(e.slot)
	switch e.col {
	case colIfPhysAddress:
		return gosnmp.OctetString, p.mac[:]
	case colIfAdminStatus:
		return gosnmp.Integer, 1
	case colIfOperStatus:
		if d.ifUp(slot, s.now) {
			return gosnmp.Integer, 1
		}
		return gosnmp.Integer, 2
	case colIfLastChange:
		last := math.Inf(-1)
		for _, f := range p.downFaults {
			if t, ok := lastTransition(f, s.now); ok && t > last {
				last = t
			}
		}
		if last <= s.boot { // no change since the (re)boot
			return gosnmp.TimeTicks, uint32(0)
		}
		return gosnmp.TimeTicks, ticks(last - s.boot)
	case colIfCounterDiscontinuity:
		return gosnmp.TimeTicks, uint32(0)
	case colIfSpeed:
		return gosnmp.Gauge32, uint32(min(p.speed, math.MaxUint32))
	case colIfHighSpeed:
		return gosnmp.Gauge32, uint32(p.speed / 1e6)
	case colIfName:
		return gosnmp.OctetString, e.val
	case colIfAlias:
		return gosnmp.OctetString, p.alias
	}
	t := d.trafficTime(slot, s)
	// The curve is anchored to the time of day of the last boot.
	ph := p.phase + 2*math.Pi/day*math.Mod(d.dayOffset+s.boot, day)
	var v float64
	switch e.col {
	case colIfInOctets, colIfHCInOctets:
		v = octets(p.inRate, ph, t)
	case colIfOutOctets, colIfHCOutOctets:
		v = octets(p.outRate, ph+0.1, t)
	case colIfInUcastPkts, colIfHCInUcastPkts:
		v = octets(p.inRate, ph, t) / p.inPkt
	case colIfOutUcastPkts, colIfHCOutUcastPkts:
		v = octets(p.outRate, ph+0.1, t) / p.outPkt
	case colIfInErrors:
		v = t * p.inErrRate
	case colIfOutErrors:
		v = t * p.outErrRate
	case colIfInDiscards:
		v = t * p.inDiscRate
	case colIfOutDiscards:
		v = t * p.outDiscRate
	}
	n := uint64(v)
	switch e.col {
	case colIfHCInOctets, colIfHCOutOctets, colIfHCInUcastPkts, colIfHCOutUcastPkts:
		return gosnmp.Counter64, n
	}
	return gosnmp.Counter32, uint32(n) // wraps at 2^32 like the real thing
}
