package detect

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// at is the time of the i-th poll of a sequence, 10s apart.
func at(i int) time.Time { return t0.Add(time.Duration(i) * 10 * time.Second) }

const dev = "core-sw1"

type iface struct {
	index       int
	name, descr string
	admin, oper int
}

// ok is a successful poll number i with the given sysUpTime (negative: no
// sysUpTime sample) and interfaces.
func ok(i int, uptime float64, ifs ...iface) collector.Poll {
	p := collector.Poll{Target: collector.Target{Name: dev, Address: "127.0.0.1:161", Version: "2c"}, Time: at(i)}
	add := func(metric string, kind collector.MetricKind, v float64, ls collector.Labels) {
		p.Samples = append(p.Samples, collector.Sample{Device: dev, Metric: metric, Labels: ls, Value: v, Kind: kind, Time: at(i)})
	}
	if uptime >= 0 {
		add("sysUpTime", collector.Gauge, uptime, nil)
	}
	add("sysName", collector.Info, 1, collector.NewLabels("sysName", dev))
	for _, f := range ifs {
		ls := collector.NewLabels("ifIndex", strconv.Itoa(f.index), "ifName", f.name, "ifDescr", f.descr)
		if f.admin != 0 {
			add("ifAdminStatus", collector.Gauge, float64(f.admin), ls)
		}
		if f.oper != 0 {
			add("ifOperStatus", collector.Gauge, float64(f.oper), ls)
		}
		add("ifHCInOctets", collector.Counter, 1000, ls)
	}
	return p
}

func fail(i int) collector.Poll {
	return collector.Poll{Target: collector.Target{Name: dev, Address: "127.0.0.1:161", Version: "2c"}, Time: at(i),
		Err: fmt.Errorf("poll %s (127.0.0.1:161): get system: %w", dev, errors.New("request timeout"))}
}

var (
	eth1Up     = iface{2, "eth1", "Ethernet 1", 1, 1}
	eth1Down   = iface{2, "eth1", "Ethernet 1", 1, 2}
	eth1LLDown = iface{2, "eth1", "Ethernet 1", 1, 7}
	eth1Shut   = iface{2, "eth1", "Ethernet 1", 2, 2}
	lo         = iface{1, "lo", "lo", 1, 1}
)

// describe renders a change as "opened interface_down/core-sw1/eth1 @3",
// where 3 is the poll number of the change's time.
func describe(c Change) string {
	return fmt.Sprintf("%s %s @%d", c.Type, c.Issue.Fingerprint, int(c.Time.Sub(t0)/(10*time.Second)))
}

func run(e *Engine, polls []collector.Poll) []string {
	var got []string
	for _, p := range polls {
		for _, c := range e.Observe(p) {
			got = append(got, describe(c))
		}
	}
	return got
}

func TestRules(t *testing.T) {
	const (
		unreach = "device_unreachable/core-sw1/"
		reboot  = "device_rebooted/core-sw1/"
		eth1    = "interface_down/core-sw1/eth1"
	)
	tests := []struct {
		name  string
		opts  Options
		polls []collector.Poll
		want  []string
	}{
		{
			name:  "healthy device: nothing",
			polls: []collector.Poll{ok(0, 100, lo, eth1Up), ok(1, 110, lo, eth1Up), ok(2, 120, lo, eth1Up)},
		},
		{
			name:  "unreachable after 3 failures, once, resolved by the next success",
			polls: []collector.Poll{ok(0, 100), fail(1), fail(2), fail(3), fail(4), fail(5), ok(6, 160), fail(7)},
			want:  []string{"opened " + unreach + " @3", "resolved " + unreach + " @6"},
		},
		{
			name:  "two failures are not enough",
			polls: []collector.Poll{fail(0), fail(1), ok(2, 100), fail(3), fail(4), ok(5, 130)},
		},
		{
			name:  "unreachable_after 1",
			opts:  Options{UnreachableAfter: 1},
			polls: []collector.Poll{fail(0), ok(1, 10), fail(2)},
			want:  []string{"opened " + unreach + " @0", "resolved " + unreach + " @1", "opened " + unreach + " @2"},
		},
		{
			name:  "interface down opens once, resolves when oper is up",
			polls: []collector.Poll{ok(0, 100, lo, eth1Up), ok(1, 110, lo, eth1Down), ok(2, 120, lo, eth1Down), ok(3, 130, lo, eth1Up)},
			want:  []string{"opened " + eth1 + " @1", "resolved " + eth1 + " @3"},
		},
		{
			name:  "lowerLayerDown counts as down; the change of evidence is an update",
			polls: []collector.Poll{ok(0, 100, eth1LLDown), ok(1, 110, eth1LLDown), ok(2, 120, eth1Down), ok(3, 130, eth1Up)},
			want:  []string{"opened " + eth1 + " @0", "updated " + eth1 + " @2", "resolved " + eth1 + " @3"},
		},
		{
			name:  "a deliberate shutdown resolves and does not open",
			polls: []collector.Poll{ok(0, 100, eth1Down), ok(1, 110, eth1Shut), ok(2, 120, eth1Shut)},
			want:  []string{"opened " + eth1 + " @0", "resolved " + eth1 + " @1"},
		},
		{
			name:  "an interface that disappears from a successful poll resolves",
			polls: []collector.Poll{ok(0, 100, lo, eth1Down), fail(1), ok(2, 120, lo)},
			want:  []string{"opened " + eth1 + " @0", "resolved " + eth1 + " @2"},
		},
		{
			name:  "failed polls leave interface issues alone",
			polls: []collector.Poll{ok(0, 100, eth1Down), fail(1), fail(2), fail(3), ok(4, 140, eth1Down), ok(5, 150, eth1Up)},
			want: []string{"opened " + eth1 + " @0", "opened " + unreach + " @3", "resolved " + unreach + " @4",
				"resolved " + eth1 + " @5"},
		},
		{
			name:  "missing oper status: cannot judge, issue stays",
			polls: []collector.Poll{ok(0, 100, eth1Down), ok(1, 110, iface{2, "eth1", "Ethernet 1", 1, 0}), ok(2, 120, eth1Up)},
			want:  []string{"opened " + eth1 + " @0", "resolved " + eth1 + " @2"},
		},
		{
			name: "unnamed interfaces use the index; names shared by two interfaces too",
			polls: []collector.Poll{ok(0, 100, iface{7, "", "", 1, 2}, iface{3, "x", "", 1, 2}, iface{4, "x", "", 1, 2}),
				ok(1, 110, iface{7, "", "", 1, 1}, iface{3, "x", "", 1, 1}, iface{4, "x", "", 1, 1})},
			want: []string{"opened interface_down/core-sw1/x @0", "opened interface_down/core-sw1/ifIndex.4 @0",
				"opened interface_down/core-sw1/ifIndex.7 @0",
				"resolved interface_down/core-sw1/x @1", "resolved interface_down/core-sw1/ifIndex.4 @1",
				"resolved interface_down/core-sw1/ifIndex.7 @1"},
		},
		{
			name:  "reboot opens at the poll and resolves at the next successful one",
			polls: []collector.Poll{ok(0, 5000), ok(1, 5010), ok(2, 3), fail(3), ok(4, 23), ok(5, 33)},
			want:  []string{"opened " + reboot + " @2", "resolved " + reboot + " @4"},
		},
		{
			name:  "reboot across an outage; reboots in a row",
			polls: []collector.Poll{ok(0, 5000), fail(1), fail(2), fail(3), ok(4, 2), ok(5, 1), ok(6, 11)},
			want: []string{"opened " + unreach + " @3", "resolved " + unreach + " @4", "opened " + reboot + " @4",
				"resolved " + reboot + " @5", "opened " + reboot + " @5", "resolved " + reboot + " @6"},
		},
		{
			name:  "polls without sysUpTime neither open nor lose the baseline",
			polls: []collector.Poll{ok(0, 5000), ok(1, -1), ok(2, 40)},
			want:  []string{"opened " + reboot + " @2"},
		},
		{
			name:  "sysUpTime wrapping after 497 days is not a reboot",
			polls: []collector.Poll{ok(0, uptimeWrap-4), ok(1, 6), ok(2, 16)},
		},
		{
			name:  "polls older than the newest are ignored",
			polls: []collector.Poll{ok(5, 100, eth1Up), ok(3, 90, eth1Down), ok(6, 110, eth1Up)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := run(New("edge-1", tt.opts), tt.polls)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestWrapped(t *testing.T) {
	tests := []struct {
		prev, now float64
		elapsed   time.Duration
		want      bool
	}{
		{uptimeWrap - 4, 6, 10 * time.Second, true},
		{uptimeWrap - 4, 300, 10 * time.Second, false}, // lower, but not where a wrap would put it
		{5000, 3, 10 * time.Second, false},
		{uptimeWrap - 3600, 10, time.Hour, true},
	}
	for _, tt := range tests {
		if got := wrapped(tt.prev, tt.now, tt.elapsed); got != tt.want {
			t.Errorf("wrapped(%v, %v, %v) = %v, want %v", tt.prev, tt.now, tt.elapsed, got, tt.want)
		}
	}
}

// The issue each rule opens: id, fingerprint, severity, summary, evidence.
func TestIssueContents(t *testing.T) {
	e := New("edge-1", Options{})
	var all []Change
	for _, p := range []collector.Poll{ok(0, 5000, lo, eth1Up), ok(1, 5010, lo, eth1Down), fail(2), fail(3), fail(4), ok(5, 2, lo, eth1Down)} {
		all = append(all, e.Observe(p)...)
	}
	if len(all) != 4 {
		t.Fatalf("got %d changes: %v", len(all), all)
	}
	ifd, unr, unrRes, rb := all[0], all[1], all[2], all[3]

	wantIf := Issue{
		ID: IssueID("edge-1", "interface_down/core-sw1/eth1", at(1)), Device: dev, Kind: KindInterfaceDown, Object: "eth1",
		Fingerprint: "interface_down/core-sw1/eth1", Severity: SeverityMajor, State: StateOpen,
		Summary:   "eth1 on core-sw1 down (oper down, admin up)",
		FirstSeen: at(1), LastSeen: at(1),
		Attributes: map[string]string{"ifIndex": "2", "ifName": "eth1", "ifDescr": "Ethernet 1", "ifAdminStatus": "up", "ifOperStatus": "down"},
	}
	if ifd.Type != Opened || !ifd.Time.Equal(at(1)) || !reflect.DeepEqual(ifd.Issue, wantIf) {
		t.Errorf("interface_down change = %+v\nwant issue %+v", ifd, wantIf)
	}

	wantUnr := Issue{
		ID: IssueID("edge-1", "device_unreachable/core-sw1/", at(2)), Device: dev, Kind: KindDeviceUnreachable,
		Fingerprint: "device_unreachable/core-sw1/", Severity: SeverityCritical, State: StateOpen,
		Summary:   "core-sw1 unreachable: 3 consecutive polls failed",
		FirstSeen: at(2), LastSeen: at(4),
		Attributes: map[string]string{"failures": "3", "first_failure": "2026-11-24T12:00:20Z", "last_success": "2026-11-24T12:00:10Z",
			"last_error": "poll core-sw1 (127.0.0.1:161): get system: request timeout"},
	}
	if unr.Type != Opened || !unr.Time.Equal(at(4)) || !reflect.DeepEqual(unr.Issue, wantUnr) {
		t.Errorf("device_unreachable change = %+v\nwant issue %+v", unr, wantUnr)
	}
	if unrRes.Type != Resolved || unrRes.Issue.ID != wantUnr.ID || unrRes.Issue.State != StateResolved ||
		!unrRes.Issue.ResolvedAt.Equal(at(5)) || unrRes.Issue.Attributes["resolution"] != "poll succeeded" {
		t.Errorf("device_unreachable resolution = %+v", unrRes)
	}

	wantRb := Issue{
		ID: IssueID("edge-1", "device_rebooted/core-sw1/", at(5)), Device: dev, Kind: KindDeviceRebooted,
		Fingerprint: "device_rebooted/core-sw1/", Severity: SeverityWarning, State: StateOpen,
		Summary:   "core-sw1 rebooted (up 2s, was up 1h23m30s)",
		FirstSeen: at(5), LastSeen: at(5),
		Attributes: map[string]string{"previous_uptime": "5010", "uptime": "2"},
	}
	if rb.Type != Opened || !reflect.DeepEqual(rb.Issue, wantRb) {
		t.Errorf("device_rebooted change = %+v\nwant issue %+v", rb, wantRb)
	}

	// interface_down stayed open through the outage; the reboot is open until the next poll.
	open := e.Open()
	if len(open) != 2 || open[0].Kind != KindDeviceRebooted || open[1].ID != wantIf.ID || !open[1].LastSeen.Equal(at(5)) {
		t.Errorf("Open() = %+v", open)
	}
	// Open returns copies.
	open[1].Attributes["ifName"] = "tampered"
	if e.Open()[1].Attributes["ifName"] != "eth1" {
		t.Errorf("Open() shares its attribute maps with the engine")
	}
}

// While device_unreachable is open, more failures change nothing visible but
// keep the evidence the resolution carries.
func TestUnreachableNoNoise(t *testing.T) {
	e := New("edge-1", Options{})
	var got []Change
	for i := 0; i < 50; i++ {
		got = append(got, e.Observe(fail(i))...)
	}
	if len(got) != 1 || got[0].Type != Opened {
		t.Fatalf("50 failures gave %d changes, want one opened: %v", len(got), got)
	}
	if open := e.Open(); len(open) != 1 || open[0].Attributes["failures"] != "50" || !open[0].LastSeen.Equal(at(49)) {
		t.Errorf("Open() = %+v, want failures 50, last seen at poll 49", open)
	}
	res := e.Observe(ok(50, 1))
	if len(res) != 1 || res[0].Type != Resolved || res[0].Issue.Attributes["failures"] != "50" ||
		res[0].Issue.Attributes["last_success"] != "never" || res[0].Issue.ID != got[0].Issue.ID {
		t.Errorf("resolution = %+v", res)
	}
	if len(e.Open()) != 0 {
		t.Errorf("still open after resolution: %+v", e.Open())
	}
}

// A condition that clears and comes back is a new issue: same fingerprint,
// new id.
func TestReopenGivesNewID(t *testing.T) {
	e := New("edge-1", Options{})
	var opened []Issue
	for _, p := range []collector.Poll{ok(0, 10, eth1Down), ok(1, 20, eth1Up), ok(2, 30, eth1Down)} {
		for _, c := range e.Observe(p) {
			if c.Type == Opened {
				opened = append(opened, c.Issue)
			}
		}
	}
	if len(opened) != 2 {
		t.Fatalf("opened %d issues, want 2", len(opened))
	}
	a, b := opened[0], opened[1]
	if a.Fingerprint != b.Fingerprint || a.ID == b.ID {
		t.Errorf("reopen: fingerprints %q %q, ids %q %q; want same fingerprint, new id", a.Fingerprint, b.Fingerprint, a.ID, b.ID)
	}
	if b.ID != IssueID("edge-1", "interface_down/core-sw1/eth1", at(2)) {
		t.Errorf("id %q does not follow IssueID(agent, fingerprint, first seen)", b.ID)
	}
	// Another agent seeing the same thing gives other ids.
	other := New("edge-2", Options{}).Observe(ok(0, 10, eth1Down))
	if len(other) != 1 || other[0].Issue.ID == a.ID || other[0].Issue.Fingerprint != a.Fingerprint {
		t.Errorf("edge-2: %+v", other)
	}
}

// Same polls in, same changes out; devices are independent.
func TestDeterministic(t *testing.T) {
	other := func(p collector.Poll) collector.Poll {
		p.Target.Name = "dist-sw2"
		for i := range p.Samples {
			p.Samples[i].Device = "dist-sw2"
		}
		return p
	}
	var polls []collector.Poll
	for i := 0; i < 20; i++ {
		switch {
		case i%7 == 3:
			polls = append(polls, fail(i), other(ok(i, float64(i), eth1Down)))
		case i%5 == 0:
			polls = append(polls, ok(i, float64(100-i), lo, eth1Down), other(fail(i)))
		default:
			polls = append(polls, ok(i, float64(100+i), lo, eth1Up), other(ok(i, float64(i), eth1Up)))
		}
	}
	first := func() []Change {
		e := New("edge-1", Options{UnreachableAfter: 1})
		var out []Change
		for _, p := range polls {
			out = append(out, e.Observe(p)...)
		}
		return out
	}
	a, b := first(), first()
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Errorf("two runs differ or found nothing:\n%v\n%v", a, b)
	}
}

func TestForget(t *testing.T) {
	e := New("edge-1", Options{})
	e.Observe(ok(0, 10, eth1Down, iface{3, "eth2", "", 1, 7}))
	got := e.Forget(dev, at(1))
	var names []string
	for _, c := range got {
		names = append(names, describe(c)+" "+c.Issue.Attributes["resolution"])
	}
	want := "resolved interface_down/core-sw1/eth1 @1 target removed\nresolved interface_down/core-sw1/eth2 @1 target removed"
	if strings.Join(names, "\n") != want {
		t.Errorf("Forget:\n%s\nwant:\n%s", strings.Join(names, "\n"), want)
	}
	if len(e.Open()) != 0 || e.Forget(dev, at(2)) != nil {
		t.Errorf("device not forgotten")
	}
	// A forgotten device starts from scratch: no reboot from the old uptime.
	if got := e.Observe(ok(3, 1)); len(got) != 0 {
		t.Errorf("after Forget: %v", got)
	}
}
