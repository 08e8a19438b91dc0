package snmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
)

// snmpd is Debian's net-snmp agent on 127.0.0.1, the device of these tests.
type snmpd struct {
	t    testing.TB
	bin  string
	dir  string // the config
	pers string // SNMP_PERSISTENT_DIR: snmpd rewrites its snmpd.conf on exit
	addr string
	cmd  *exec.Cmd
	out  *syncBuffer
}

// newSNMPD writes an snmpd config (a v2c community "public" plus the extra
// lines) for an snmpd on a free loopback port; start runs it.
func newSNMPD(t testing.TB, extra ...string) *snmpd {
	t.Helper()
	bin, err := exec.LookPath("snmpd")
	if err != nil {
		for _, c := range []string{"/usr/sbin/snmpd", "/usr/local/sbin/snmpd"} {
			if _, err := os.Stat(c); err == nil {
				bin = c
			}
		}
	}
	if bin == "" {
		t.Skip("net-snmp snmpd not installed (apt-get install snmpd): the poller tests need a real SNMP agent")
	}
	s := &snmpd{t: t, bin: bin, dir: t.TempDir(), pers: t.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))}
	conf := "rocommunity public 127.0.0.1\nsysName test-device\ndontLogTCPWrappersConnects yes\n" + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(s.dir, "snmpd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// start runs snmpd and waits until it answers.
func (s *snmpd) start() {
	s.t.Helper()
	s.out = &syncBuffer{}
	// -C keeps snmpd from reading the host's config, and with it the
	// persistent file: name that too, so that a restarted snmpd keeps its
	// engine ID and counts its engine boots up, as a rebooted device does.
	conf := filepath.Join(s.dir, "snmpd.conf")
	if pers := filepath.Join(s.pers, "snmpd.conf"); fileExists(pers) {
		conf += "," + pers
	}
	s.cmd = exec.Command(s.bin, "-f", "-Lo", "-C", "-c", conf,
		"-p", filepath.Join(s.dir, "snmpd.pid"), "udp:"+s.addr)
	s.cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+s.pers, "MIBS=")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start snmpd: %v", err)
	}
	p := NewPoller(nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := p.Poll(context.Background(), s.opts("2c", "public", 200*time.Millisecond, 0))
		if r.Err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("snmpd on %s did not answer within 10s: %v\nsnmpd output:\n%s", s.addr, r.Err, s.out)
		}
	}
}

func (s *snmpd) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *snmpd) opts(version, community string, timeout time.Duration, retries int) Options {
	return Options{
		Target:    collector.Target{Name: "dev1", Address: s.addr, Version: version},
		Community: community, Timeout: timeout, Retries: retries, MaxRepetitions: 10,
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
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
	dev := newSNMPD(t)
	dev.start()
	for _, version := range []string{"2c", "1"} {
		t.Run("v"+version, func(t *testing.T) {
			r := NewPoller(nil).Poll(context.Background(), dev.opts(version, "public", time.Second, 1))
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
			if !ok || up.Kind != collector.Gauge || up.Value <= 0 || up.Value > 3600 {
				t.Errorf("sysUpTime = %+v (found %v), want a gauge of a few seconds", up, ok)
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
	dev := newSNMPD(t)
	dev.start()
	o := dev.opts("2c", "public", time.Second, 1)
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
	dev := newSNMPD(t)
	dev.start()
	const timeout, retries = 300 * time.Millisecond, 1
	budget := timeout*(retries+1) + time.Second // plus slack for a busy machine; TestPollRetries counts the tries

	t.Run("wrong community", func(t *testing.T) {
		start := time.Now()
		r := NewPoller(nil).Poll(context.Background(), dev.opts("2c", "not-the-community", timeout, retries))
		took := time.Since(start)
		want := fmt.Sprintf("poll dev1 (%s): get scalars: request timeout", dev.addr)
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
		dev.stop()
		start := time.Now()
		r := NewPoller(nil).Poll(context.Background(), dev.opts("2c", "public", timeout, retries))
		took := time.Since(start)
		want := fmt.Sprintf("poll dev1 (%s): get scalars: request timeout", dev.addr)
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
	o := Options{Target: collector.Target{Name: "dev1", Address: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))},
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
	dev := newSNMPD(t)
	dev.start()
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
			r := p.Poll(context.Background(), dev.opts(version, "public", 2*time.Second, 1))
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
