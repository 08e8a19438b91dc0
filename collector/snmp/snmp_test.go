package snmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
)

// opts polls the device at addr as target dev1.
func opts(addr, version, community string, timeout time.Duration, retries int) Options {
	return Options{
		Target:    collector.Target{Name: "dev1", Address: addr, Version: version},
		Community: community, Timeout: timeout, Retries: retries, MaxRepetitions: 10,
	}
}

// find returns the sample of metric whose labels include ifName (when given).
func find(samples []collector.Sample, metric, ifName string) (collector.Sample, bool) {
	for _, s := range samples {
		if s.Metric == metric && (ifName == "" || s.Labels.Get("ifName") == ifName) {
			return s, true
		}
	}
	return collector.Sample{}, false
}

func TestPollSNMPD(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{})
	for _, version := range []string{"2c", "1"} {
		t.Run("v"+version, func(t *testing.T) {
			r := NewPoller(nil).Poll(context.Background(), opts(dev.Addr(), version, "public", time.Second, 1))
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if r.Time.IsZero() || r.Duration <= 0 || r.Target.Name != "dev1" {
				t.Errorf("poll = time %v duration %v target %+v", r.Time, r.Duration, r.Target)
			}
			for _, s := range r.Samples {
				if !s.Time.Equal(r.Time) || s.Device != "dev1" {
					t.Fatalf("sample %+v: want time %v and device dev1", s, r.Time)
				}
			}
			up, ok := find(r.Samples, "sysUpTime", "")
			// snmpd answers as soon as it starts, so 0 ticks is a fair uptime.
			if !ok || up.Kind != collector.Gauge || up.Value < 0 || up.Value > 3600 {
				t.Errorf("sysUpTime = %+v (found %v), want a gauge of at most a few seconds", up, ok)
			}
			name, ok := find(r.Samples, "sysName", "")
			if !ok || name.Kind != collector.Info || name.Value != 1 || name.Labels.Get("sysName") != "test-device" {
				t.Errorf("sysName = %+v (found %v)", name, ok)
			}
			for _, m := range []string{"ifAdminStatus", "ifOperStatus"} {
				s, ok := find(r.Samples, m, "lo")
				if !ok {
					t.Fatalf("no %s for lo in %d samples: %v", m, len(r.Samples), r.Samples)
				}
				if s.Kind != collector.Gauge || s.Value != 1 || s.Labels.Get("ifIndex") == "" || s.Labels.Get("ifDescr") != "lo" {
					t.Errorf("%s = %+v, want gauge 1 with ifIndex and ifDescr lo", m, s)
				}
			}
			for _, m := range []string{"ifHCInOctets", "ifHCOutOctets"} {
				s, ok := find(r.Samples, m, "lo")
				if version == "1" {
					// Counter64 does not exist in SNMPv1: agents skip those columns.
					if ok {
						t.Errorf("v1 poll has %s: %+v", m, s)
					}
					continue
				}
				if !ok || s.Kind != collector.Counter || s.Value <= 0 {
					t.Errorf("%s for lo = %+v (found %v), want a positive counter (the readiness polls crossed lo)", m, s, ok)
				}
			}
		})
	}
}

// GetBulk with a max-repetitions of 1 makes the walk take one request per
// row: the loop over responses must still end at the column's end.
func TestPollMaxRepetitionsOne(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{})
	o := opts(dev.Addr(), "2c", "public", time.Second, 1)
	o.MaxRepetitions = 1
	r := NewPoller(nil).Poll(context.Background(), o)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := find(r.Samples, "ifOperStatus", "lo"); !ok {
		t.Errorf("no ifOperStatus for lo: %v", r.Samples)
	}
}

func TestPollTimeouts(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{})
	const timeout, retries = 300 * time.Millisecond, 1
	budget := timeout*(retries+1) + time.Second // plus slack for a busy machine; TestPollRetries counts the tries

	t.Run("wrong community", func(t *testing.T) {
		start := time.Now()
		r := NewPoller(nil).Poll(context.Background(), opts(dev.Addr(), "2c", "not-the-community", timeout, retries))
		took := time.Since(start)
		want := fmt.Sprintf("poll dev1 (%s): get scalars: request timeout", dev.Addr())
		if !errors.Is(r.Err, ErrTimeout) || r.Err.Error() != want {
			t.Errorf("err = %v, want %s", r.Err, want)
		}
		if took > budget || took < timeout*(retries+1) {
			t.Errorf("took %v, want between %v and %v", took, timeout*(retries+1), budget)
		}
		if r.Samples != nil {
			t.Errorf("failed poll has samples: %v", r.Samples)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		dev.Stop()
		start := time.Now()
		r := NewPoller(nil).Poll(context.Background(), opts(dev.Addr(), "2c", "public", timeout, retries))
		took := time.Since(start)
		want := fmt.Sprintf("poll dev1 (%s): get scalars: request timeout", dev.Addr())
		if !errors.Is(r.Err, ErrTimeout) || r.Err.Error() != want {
			t.Errorf("err = %v, want %s", r.Err, want)
		}
		if took > budget {
			t.Errorf("took %v, want at most timeout*(retries+1) = %v plus slack", took, timeout*(retries+1))
		}
	})
}

func TestPollContext(t *testing.T) {
	// Nothing listens here: without ctx the poll would take 3 x 5s.
	o := Options{Target: collector.Target{Name: "dev1", Address: fmt.Sprintf("127.0.0.1:%d", snmpdtest.FreePort(t))},
		Community: "public", Timeout: 5 * time.Second, Retries: 2}

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		stop := time.AfterFunc(100*time.Millisecond, cancel)
		defer stop.Stop()
		start := time.Now()
		r := NewPoller(nil).Poll(ctx, o)
		if took := time.Since(start); took > time.Second {
			t.Errorf("cancelled poll took %v", took)
		}
		if !errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, ErrTimeout) {
			t.Errorf("err = %v, want context.Canceled", r.Err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		r := NewPoller(nil).Poll(ctx, o)
		if took := time.Since(start); took > time.Second {
			t.Errorf("poll past its deadline took %v", took)
		}
		if !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", r.Err)
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := NewPoller(nil).Poll(ctx, o)
		want := fmt.Sprintf("poll dev1 (%s): connect: context canceled", o.Target.Address)
		if r.Err == nil || r.Err.Error() != want {
			t.Errorf("err = %v, want %s", r.Err, want)
		}
	})
}

func TestPollBadOptions(t *testing.T) {
	tests := []struct {
		target collector.Target
		want   string
	}{
		{collector.Target{Name: "d", Address: "127.0.0.1:1", Version: "3"}, "poll d (127.0.0.1:1): connect: SNMPv3 needs a username"},
		{collector.Target{Name: "d", Address: "127.0.0.1:1", Version: "2"}, `poll d (127.0.0.1:1): connect: bad SNMP version "2" (want "1", "2c" or "3")`},
		{collector.Target{Name: "d", Address: "127.0.0.1:99999"}, `poll d (127.0.0.1:99999): connect: bad address "127.0.0.1:99999": want host:port with port 1-65535`},
		{collector.Target{Name: "d", Address: ""}, `poll d (): connect: bad address "": want host:port`},
	}
	for _, tt := range tests {
		r := NewPoller(nil).Poll(context.Background(), Options{Target: tt.target, Community: "public", Timeout: 100 * time.Millisecond})
		if r.Err == nil || r.Err.Error() != tt.want {
			t.Errorf("%+v: err = %v, want %s", tt.target, r.Err, tt.want)
		}
	}
}

func TestSplitAddress(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port uint16
	}{
		{"10.0.0.1:1161", "10.0.0.1", 1161},
		{"10.0.0.1", "10.0.0.1", 161},
		{"sw1.example.net", "sw1.example.net", 161},
		{"[2001:db8::1]:162", "2001:db8::1", 162},
		{"2001:db8::1", "2001:db8::1", 161},
		{"[2001:db8::1]", "2001:db8::1", 161},
	}
	for _, tt := range tests {
		h, p, err := splitAddress(tt.in)
		if err != nil || h != tt.host || p != tt.port {
			t.Errorf("splitAddress(%q) = %q, %d, %v; want %q, %d", tt.in, h, p, err, tt.host, tt.port)
		}
	}
	if _, _, err := splitAddress("a:b:c:1:"); err == nil || !strings.Contains(err.Error(), "bad address") {
		t.Errorf("splitAddress(a:b:c:1:) err = %v", err)
	}
}

// One Poller serves many polls at once, each with its own socket.
func TestPollConcurrent(t *testing.T) {
	dev := snmpdtest.Start(t, snmpdtest.Config{})
	p := NewPoller(nil)
	const n = 8
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			version := "2c"
			if i%2 == 1 {
				version = "1"
			}
			r := p.Poll(context.Background(), opts(dev.Addr(), version, "public", 2*time.Second, 1))
			if r.Err != nil {
				errs <- r.Err
				return
			}
			if _, ok := find(r.Samples, "ifOperStatus", "lo"); !ok {
				errs <- fmt.Errorf("poll %d (v%s): no ifOperStatus for lo", i, version)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
