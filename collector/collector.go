// Package collector holds the domain types shared by every collector and by
// the detection engine: targets, samples and events. It imports only the
// standard library, so collectors, the agent and tests agree on one shape of
// data without knowing of gRPC, the controller or each other.
package collector

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Target is one device the agent polls. Secrets (community, passwords) live
// in the agent's config; a Target handed to the detection engine or the
// uplink carries none.
type Target struct {
	Name    string
	Address string // host:port
	Version string // "1", "2c" or "3"
}

// MetricKind says how a sample's value behaves.
type MetricKind uint8

const (
	// Gauge is a value that goes up and down (ifOperStatus, temperature).
	Gauge MetricKind = iota
	// Counter is a monotonically increasing raw counter (ifHCInOctets).
	Counter
	// Rate is a per-second rate derived from a counter.
	Rate
	// Info is a constant 1 whose labels carry text (sysName, ifAlias).
	Info
)

func (k MetricKind) String() string {
	switch k {
	case Gauge:
		return "gauge"
	case Counter:
		return "counter"
	case Rate:
		return "rate"
	case Info:
		return "info"
	}
	return "unknown"
}

// Label is one name/value pair of a sample.
type Label struct {
	Name, Value string
}

// Labels are kept sorted by name so that equal label sets compare equal.
type Labels []Label

// NewLabels builds sorted Labels from name/value pairs: NewLabels("ifIndex", "3", "ifName", "eth0").
// An odd trailing name is ignored.
func NewLabels(pairs ...string) Labels {
	ls := make(Labels, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		ls = append(ls, Label{Name: pairs[i], Value: pairs[i+1]})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// Get returns the value of the label name, or "".
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// String renders labels as {a="1",b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteString(`="`)
		b.WriteString(l.Value)
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// Sample is one observed value of one series at one time.
type Sample struct {
	Device string
	Metric string // e.g. "sysUpTime", "ifOperStatus", "ifHCInOctets"
	Labels Labels
	Value  float64
	Kind   MetricKind
	Time   time.Time
}

// Poll is the outcome of one poll of one device: either samples, or an
// error that says why the device could not be polled. Time is when the poll
// started; every sample of a successful poll carries it.
type Poll struct {
	Target   Target
	Time     time.Time
	Duration time.Duration
	Samples  []Sample
	Err      error
}

// Event is something a device or collector reported that is not a value of a
// series: a trap, a capture drop, a configuration change.
type Event struct {
	Device string
	Type   string // snake_case: "link_down", "cold_start", ...
	Time   time.Time
	Attrs  map[string]string
}

// FlowKey identifies one bidirectional flow as the flow collector sees it:
// Src and SrcPort are the initiator's (the sender of the first packet, or of
// the SYN when one was seen), Dst and DstPort the responder's. For ICMP both
// ports hold type<<8|code, with echo replies folded onto echo requests.
// Later IP fragments carry no ports and count under port 0.
type FlowKey struct {
	VLAN             uint16
	Proto            uint8 // IP protocol number: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// String renders the key as "tcp 198.18.0.1:40000 -> 198.18.0.2:80 vlan 10".
func (k FlowKey) String() string {
	var b strings.Builder
	switch k.Proto {
	case 6:
		b.WriteString("tcp")
	case 17:
		b.WriteString("udp")
	case 1:
		b.WriteString("icmp")
	case 58:
		b.WriteString("icmp6")
	default:
		b.WriteString("proto")
		b.WriteString(strconv.Itoa(int(k.Proto)))
	}
	b.WriteByte(' ')
	b.WriteString(netip.AddrPortFrom(k.Src, k.SrcPort).String())
	b.WriteString(" -> ")
	b.WriteString(netip.AddrPortFrom(k.Dst, k.DstPort).String())
	if k.VLAN != 0 {
		b.WriteString(" vlan ")
		b.WriteString(strconv.Itoa(int(k.VLAN)))
	}
	return b.String()
}
