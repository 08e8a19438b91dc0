package snmpsim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"
)

// maxInterfaces bounds a generated device so that one table stays small.
const maxInterfaces = 4096

var (
	oidSystem  = OID{1, 3, 6, 1, 2, 1, 1}
	oidIfNum   = OID{1, 3, 6, 1, 2, 1, 2, 1, 0}
	oidIfEntry = OID{1, 3, 6, 1, 2, 1, 2, 2, 1}
	oidIfX     = OID{1, 3, 6, 1, 2, 1, 31, 1, 1, 1}
)

// sysObjectID of generated devices: net-snmp's Linux agent, a value pollers
// know.
const genSysObjectID = ".1.3.6.1.4.1.8072.3.2.10"

func join(base OID, arcs ...uint32) OID {
	o := make(OID, 0, len(base)+len(arcs))
	return append(append(o, base...), arcs...)
}

// uplinks are the last two ports of a device with at least four: 10G.
func isUplink(slot, n int) bool { return n >= 4 && slot >= n-2 }

func portName(slot, n int, long bool) string {
	switch {
	case isUplink(slot, n) && long:
		return fmt.Sprintf("TenGigabitEthernet1/1/%d", slot-n+3)
	case isUplink(slot, n):
		return fmt.Sprintf("Te1/1/%d", slot-n+3)
	case long:
		return fmt.Sprintf("GigabitEthernet1/0/%d", slot+1)
	}
	return fmt.Sprintf("Gi1/0/%d", slot+1)
}

// templates caches one table per interface count: ten thousand generated
// 24-port devices share one sorted OID list.
var templates sync.Map // int -> *table

func genTable(n int) *table {
	if t, ok := templates.Load(n); ok {
		return t.(*table)
	}
	var es []entry
	add := func(o OID, col column, slot int, typ gosnmp.Asn1BER, val any) {
		es = append(es, entry{oid: o, name: o.String(), nlen: oidLen(o), col: col, slot: int32(slot), typ: typ, val: val})
	}
	add(join(oidSystem, 1, 0), colStatic, 0, gosnmp.OctetString, fmt.Sprintf("netaiops simulated switch, %d ports, software 1.0 (snmpsim)", n))
	add(join(oidSystem, 2, 0), colStatic, 0, gosnmp.ObjectIdentifier, genSysObjectID)
	add(join(oidSystem, 3, 0), colSysUpTime, 0, gosnmp.TimeTicks, nil)
	add(join(oidSystem, 4, 0), colSysContact, 0, gosnmp.OctetString, nil)
	add(join(oidSystem, 5, 0), colSysName, 0, gosnmp.OctetString, nil)
	add(join(oidSystem, 6, 0), colSysLocation, 0, gosnmp.OctetString, nil)
	add(join(oidSystem, 7, 0), colStatic, 0, gosnmp.Integer, 6)
	add(oidIfNum, colStatic, 0, gosnmp.Integer, n)
	for slot := range n {
		idx := uint32(slot + 1)
		ifc := func(c uint32, col column, typ gosnmp.Asn1BER, val any) {
			add(join(oidIfEntry, c, idx), col, slot, typ, val)
		}
		ifc(1, colStatic, gosnmp.Integer, slot+1)
		ifc(2, colStatic, gosnmp.OctetString, portName(slot, n, true))
		ifc(3, colStatic, gosnmp.Integer, 6) // ethernetCsmacd
		ifc(4, colStatic, gosnmp.Integer, 1500)
		ifc(5, colIfSpeed, gosnmp.Gauge32, nil)
		ifc(6, colIfPhysAddress, gosnmp.OctetString, nil)
		ifc(7, colIfAdminStatus, gosnmp.Integer, nil)
		ifc(8, colIfOperStatus, gosnmp.Integer, nil)
		ifc(9, colIfLastChange, gosnmp.TimeTicks, nil)
		ifc(10, colIfInOctets, gosnmp.Counter32, nil)
		ifc(11, colIfInUcastPkts, gosnmp.Counter32, nil)
		ifc(13, colIfInDiscards, gosnmp.Counter32, nil)
		ifc(14, colIfInErrors, gosnmp.Counter32, nil)
		ifc(16, colIfOutOctets, gosnmp.Counter32, nil)
		ifc(17, colIfOutUcastPkts, gosnmp.Counter32, nil)
		ifc(19, colIfOutDiscards, gosnmp.Counter32, nil)
		ifc(20, colIfOutErrors, gosnmp.Counter32, nil)
		ifx := func(c uint32, col column, typ gosnmp.Asn1BER, val any) {
			add(join(oidIfX, c, idx), col, slot, typ, val)
		}
		ifx(1, colStatic, gosnmp.OctetString, portName(slot, n, false))
		ifx(6, colIfHCInOctets, gosnmp.Counter64, nil)
		ifx(7, colIfHCInUcastPkts, gosnmp.Counter64, nil)
		ifx(10, colIfHCOutOctets, gosnmp.Counter64, nil)
		ifx(11, colIfHCOutUcastPkts, gosnmp.Counter64, nil)
		ifx(15, colIfHighSpeed, gosnmp.Gauge32, nil)
		ifx(18, colIfAlias, gosnmp.OctetString, nil)
		ifx(19, colIfCounterDiscontinuity, gosnmp.TimeTicks, nil)
	}
	slices.SortFunc(es, func(a, b entry) int { return a.oid.Compare(b.oid) })
	t, _ := templates.LoadOrStore(n, &table{entries: es})
	return t.(*table)
}

// seedOf derives a device's seed from its name when the scenario gives none.
func seedOf(spec DeviceSpec) uint64 {
	if spec.Seed != 0 {
		return uint64(spec.Seed)
	}
	h := fnv.New64a()
	h.Write([]byte(spec.Name))
	return h.Sum64()
}

// newGenerated builds a generated device; everything random comes from the
// seed, so two runs of one scenario serve the same numbers at the same times.
//
// Traffic follows a daily curve peaking near 14:00 UTC of the server's clock
// (each device shifted by up to two hours, each interface by up to one), so
// a seasonal detector sees one coherent day.
func newGenerated(spec DeviceSpec, start time.Time) *device {
	seed := seedOf(spec)
	r := rand.New(rand.NewPCG(seed, 0x6e657461696f7073))
	n := spec.Interfaces
	d := &device{
		name:      spec.Name,
		community: spec.Community,
		tab:       genTable(n),
		contact:   "noc@example.net",
		location:  fmt.Sprintf("lab, row %c, rack %d", 'A'+rune(r.IntN(6)), 1+r.IntN(20)),
		bootAge:   float64(1+r.IntN(45))*day + r.Float64()*day,
		ifs:       make([]ifParams, n),
		dayOffset: math.Mod(float64(start.UnixNano())/1e9, day),
	}
	// sin(w*t + phase) peaks where w*t + phase = pi/2.
	devPeak := 14*3600 + (r.Float64()*4-2)*3600
	for slot := range n {
		p := &d.ifs[slot]
		p.speed = 1_000_000_000
		if isUplink(slot, n) {
			p.speed = 10_000_000_000
		}
		util := 0.01 + 0.35*r.Float64() // mean utilisation
		if !isUplink(slot, n) && r.IntN(10) < 3 {
			util = 0.0005 + 0.005*r.Float64() // quiet access port
		}
		p.inRate = float64(p.speed) / 8 * util
		p.outRate = p.inRate * (0.4 + 1.2*r.Float64())
		p.phase = math.Pi/2 - 2*math.Pi/day*(devPeak+(r.Float64()*2-1)*3600)
		p.inPkt = 300 + 900*r.Float64()
		p.outPkt = 300 + 900*r.Float64()
		if r.IntN(100) < 15 {
			p.inErrRate = 0.001 + 0.05*r.Float64()
			p.outErrRate = p.inErrRate * r.Float64() / 4
		}
		if r.IntN(100) < 20 {
			p.inDiscRate = 0.01 + 0.2*r.Float64()
			p.outDiscRate = 0.01 + 0.2*r.Float64()
		}
		p.mac = [6]byte{0x02, byte(seed >> 16), byte(seed >> 8), byte(seed), byte(slot >> 8), byte(slot)}
		switch {
		case isUplink(slot, n):
			p.alias = fmt.Sprintf("uplink to core, port %d", slot-n+3)
		case r.IntN(3) == 0:
			p.alias = fmt.Sprintf("server-%02d", 1+r.IntN(64))
		case r.IntN(3) == 0:
			p.alias = fmt.Sprintf("ap-%02d", 1+r.IntN(32))
		}
	}
	d.addFaults(spec.Faults)
	return d
}

func (d *device) addFaults(fs []Fault) {
	for _, f := range fs {
		switch f.Kind {
		case InterfaceDown:
			p := &d.ifs[f.Interface-1]
			p.downFaults = append(p.downFaults, f)
		case Unreachable:
			d.silent = append(d.silent, f)
		case Reboot:
			d.reboots = append(d.reboots, f)
		}
	}
}
