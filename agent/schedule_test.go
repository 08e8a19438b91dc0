package agent

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSpread(t *testing.T) {
	const iv = 10 * time.Second
	seen := map[time.Duration]bool{}
	for _, name := range []string{"core-sw1", "core-sw2", "edge-r1", "edge-r2", "ap-17"} {
		off := spread(name, iv)
		if off < 0 || off >= iv {
			t.Fatalf("spread(%q) = %v, want within [0, %v)", name, off, iv)
		}
		if off != spread(name, iv) {
			t.Fatalf("spread(%q) not stable", name)
		}
		seen[off] = true
	}
	if len(seen) < 4 {
		t.Fatalf("5 names got only %d distinct offsets", len(seen))
	}
}

// timedPoller takes a fixed time per target and records when polls start
// and how many run at once. Its delays are the fault under test: a device
// slower than its interval.
type timedPoller struct {
	delay map[string]time.Duration

	mu          sync.Mutex
	starts      map[string][]time.Time
	inFlight    int
	maxInFlight int
	perTarget   map[string]int
	overlap     bool
}

func (p *timedPoller) Poll(ctx context.Context, o snmp.Options) collector.Poll {
	name := o.Target.Name
	p.mu.Lock()
	p.starts[name] = append(p.starts[name], time.Now())
	p.inFlight++
	p.maxInFlight = max(p.maxInFlight, p.inFlight)
	p.perTarget[name]++
	if p.perTarget[name] > 1 {
		p.overlap = true
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inFlight--
		p.perTarget[name]--
		p.mu.Unlock()
	}()
	start := time.Now()
	select {
	case <-time.After(p.delay[name]):
	case <-ctx.Done():
	}
	return collector.Poll{Target: o.Target, Time: start, Duration: time.Since(start)}
}

func TestScheduleSkipsOverrunsAndBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &timedPoller{
			delay:     map[string]time.Duration{"slow": 2500 * time.Millisecond, "a": 300 * time.Millisecond, "b": 300 * time.Millisecond, "c": 300 * time.Millisecond},
			starts:    map[string][]time.Time{},
			perTarget: map[string]int{},
		}
		reg := prometheus.NewRegistry()
		sm, err := snmp.NewMetrics(reg)
		if err != nil {
			t.Fatal(err)
		}
		a := &Agent{log: slog.New(slog.DiscardHandler), poller: p, snmpMetrics: sm}
		ctx, cancel := context.WithCancel(context.Background())
		polls := make(chan collector.Poll, 4)
		sem := make(chan struct{}, 2)
		got := map[string]int{}
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case q := <-polls:
					got[q.Target.Name]++
				case <-ctx.Done():
					return
				}
			}
		})
		start := time.Now()
		for _, name := range []string{"slow", "a", "b", "c"} {
			tg := target{opts: snmp.Options{Target: collector.Target{Name: name}}, interval: time.Second, offset: spread(name, time.Second)}
			wg.Go(func() { a.schedule(ctx, tg, start, sem, polls) })
		}
		time.Sleep(20 * time.Second)
		cancel()
		wg.Wait()

		p.mu.Lock()
		defer p.mu.Unlock()
		if p.overlap {
			t.Error("two polls of one target ran at once")
		}
		if p.maxInFlight > 2 {
			t.Errorf("%d polls in flight, max_concurrency is 2", p.maxInFlight)
		}
		// slow takes 2.5s of a 1s interval: it starts every 3s and skips
		// the two polls that fall due meanwhile.
		s := p.starts["slow"]
		if len(s) < 6 {
			t.Fatalf("slow polled %d times in 20s, want ≥ 6", len(s))
		}
		for i := 1; i < len(s); i++ {
			if gap := s[i].Sub(s[i-1]); gap != 3*time.Second {
				t.Errorf("slow poll %d started %v after the previous one, want 3s", i, gap)
			}
		}
		if sk := a.skipped.Load(); sk < uint64(2*(len(s)-1)) {
			t.Errorf("skipped %d, want ≥ %d (2 per slow poll)", sk, 2*(len(s)-1))
		}
		// The others fit their interval: one poll per second, none skipped
		// beyond what slow accounts for.
		for _, name := range []string{"a", "b", "c"} {
			if n := len(p.starts[name]); n < 19 || n > 21 {
				t.Errorf("%s polled %d times in 20s at 1s, want about 20", name, n)
			}
			if got[name] < 18 {
				t.Errorf("%s delivered %d polls to detection", name, got[name])
			}
		}
		if sk, want := a.skipped.Load(), uint64(2*len(s)); sk > want {
			t.Errorf("skipped %d, want at most %d (only slow overruns)", sk, want)
		}
		// The same count, per target, in netaiops_snmp_polls_skipped_total.
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		skipped := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "netaiops_snmp_polls_skipped_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				skipped[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
		if len(skipped) != 1 || skipped["slow"] != float64(a.skipped.Load()) {
			t.Errorf("netaiops_snmp_polls_skipped_total %v, want slow=%d only", skipped, a.skipped.Load())
		}
		if a.polls.Load() == 0 {
			t.Error("no poll counted")
		}
	})
}

// Trap senders are named after the running configuration, not the one the
// receiver started with.
func TestNameSender(t *testing.T) {
	a := &Agent{plans: map[string]*snmp.Plan{}}
	cfg, err := config.Parse([]byte("agent: {id: a1, data_dir: /tmp/x}\ncontroller: {address: 127.0.0.1:1, insecure: true}\n"+
		"targets:\n  - {name: kept, address: 10.0.0.1}\n  - {name: pushed, address: '[2001:db8::2]:1161'}\n"), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.newCurrent(cfg, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(device, source string, unknown bool) collector.Event {
		e := collector.Event{Device: device, Type: "link_down", Attrs: map[string]string{"source": source}}
		if unknown {
			e.Attrs["unknown_source"] = "true"
		}
		return e
	}
	for _, tc := range []struct {
		in          collector.Event
		want        string
		wantUnknown bool
	}{
		{ev("kept", "10.0.0.1:50000", false), "kept", false},
		{ev("2001:db8::2", "[2001:db8::2]:162", true), "pushed", false}, // added by a push
		{ev("removed", "10.0.0.9:162", false), "10.0.0.9", true},        // removed by a push
		{ev("10.0.0.7", "10.0.0.7:162", true), "10.0.0.7", true},        // never a target
	} {
		got := c.nameSender(tc.in)
		if got.Device != tc.want || (got.Attrs["unknown_source"] == "true") != tc.wantUnknown {
			t.Errorf("nameSender(%s from %s) = %s %v, want %s (unknown %v)", tc.in.Device, tc.in.Attrs["source"], got.Device, got.Attrs, tc.want, tc.wantUnknown)
		}
	}
}
