package trap

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
)

// receiver runs a Receiver on a free loopback port until the test ends.
func receiver(t *testing.T, cfg Config) (*Receiver, chan collector.Event) {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	r, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan collector.Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.Run(ctx, out); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r, out
}

// netsnmp runs one of net-snmp's tools (snmptrap, snmpinform) against r.
func netsnmp(t *testing.T, r *Receiver, tool string, args ...string) error {
	t.Helper()
	cmd := snmpdtest.Command(t, tool, append([]string{"-t", "1", "-r", "0"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return err
}

func addr(r *Receiver) string { return r.Addr().String() }

func wait(t *testing.T, out chan collector.Event) collector.Event {
	t.Helper()
	select {
	case ev := <-out:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return collector.Event{}
}

const (
	trapUser = "trapper"
	authPass = "trap-auth-secret"
	privPass = "trap-priv-secret"
)

func config() Config {
	return Config{
		Communities: []string{"public"},
		Users: []snmp.USM{{SecurityLevel: snmp.AuthPriv, Username: trapUser, AuthProtocol: "SHA", AuthPassword: authPass,
			PrivProtocol: "AES", PrivPassword: privPass}},
		Targets: []collector.Target{{Name: "core-sw1", Address: "127.0.0.1:161"}},
	}
}

func TestTraps(t *testing.T) {
	r, out := receiver(t, config())
	a := addr(r)
	v3 := []string{"-v", "3", "-l", "authPriv", "-u", trapUser, "-a", "SHA", "-A", authPass, "-x", "AES", "-X", privPass}
	linkDown := []string{"1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.2", "i", "2", "1.3.6.1.2.1.2.2.1.7.2", "i", "1", "1.3.6.1.2.1.2.2.1.8.2", "i", "2"}
	tests := []struct {
		name  string
		tool  string
		args  []string
		want  string            // event type
		attrs map[string]string // attributes the event must have
	}{
		{"v2c linkDown", "snmptrap", append([]string{"-v", "2c", "-c", "public", a, "4242"}, linkDown...), TypeLinkDown,
			map[string]string{"ifIndex": "2", "ifOperStatus": "2", "ifAdminStatus": "1", "version": "2c", "sysUpTime": "42.42", "1.3.6.1.2.1.2.2.1.8.2": "2"}},
		{"v2c linkUp with ifName", "snmptrap", []string{"-v", "2c", "-c", "public", a, "", "1.3.6.1.6.3.1.1.5.4",
			"1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.31.1.1.1.1.3", "s", "Gi0/3"}, TypeLinkUp,
			map[string]string{"ifIndex": "3", "ifName": "Gi0/3"}},
		{"v2c other trap", "snmptrap", []string{"-v", "2c", "-c", "public", a, "", "1.3.6.1.4.1.9.9.41.2.0.1",
			"1.3.6.1.4.1.9.9.41.1.2.3.1.5.1", "s", "%LINK-3-UPDOWN"}, TypeTrap,
			map[string]string{"trap_oid": "1.3.6.1.4.1.9.9.41.2.0.1", "1.3.6.1.4.1.9.9.41.1.2.3.1.5.1": "%LINK-3-UPDOWN"}},
		{"v1 coldStart", "snmptrap", []string{"-v", "1", "-c", "public", a, "1.3.6.1.4.1.8072.3.2.10", "127.0.0.1", "0", "0", "100"}, TypeColdStart,
			map[string]string{"version": "1", "trap_oid": "1.3.6.1.6.3.1.1.5.1", "sysUpTime": "1"}},
		{"v1 warmStart", "snmptrap", []string{"-v", "1", "-c", "public", a, "1.3.6.1.4.1.8072.3.2.10", "127.0.0.1", "1", "0", ""}, TypeWarmStart, nil},
		{"v1 authenticationFailure", "snmptrap", []string{"-v", "1", "-c", "public", a, "1.3.6.1.4.1.8072.3.2.10", "127.0.0.1", "4", "0", ""}, TypeAuthFail, nil},
		{"v1 enterprise specific", "snmptrap", []string{"-v", "1", "-c", "public", a, "1.3.6.1.4.1.8072.3.2.10", "127.0.0.1", "6", "17", "",
			"1.3.6.1.4.1.8072.1.1", "s", "hello"}, TypeTrap, map[string]string{"trap_oid": "1.3.6.1.4.1.8072.3.2.10.0.17", "1.3.6.1.4.1.8072.1.1": "hello"}},
		{"v2c inform is acknowledged", "snmpinform", append([]string{"-v", "2c", "-c", "public", a, ""}, linkDown...), TypeLinkDown,
			map[string]string{"inform": "true"}},
		{"v3 authPriv trap", "snmptrap", append(append(append([]string{}, v3...), a, ""), linkDown...), TypeLinkDown,
			map[string]string{"version": "3", "ifIndex": "2"}},
		{"v3 authPriv inform is acknowledged", "snmpinform", append(append(append([]string{}, v3...), a, ""), "1.3.6.1.6.3.1.1.5.1"), TypeColdStart,
			map[string]string{"version": "3", "inform": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := netsnmp(t, r, tt.tool, tt.args...); err != nil {
				t.Fatalf("%s failed (an inform that is not acknowledged fails): %v; stats %+v", tt.tool, err, r.Stats())
			}
			ev := wait(t, out)
			if ev.Type != tt.want || ev.Device != "core-sw1" {
				t.Errorf("event %s on %s, want %s on core-sw1: %+v", ev.Type, ev.Device, tt.want, ev)
			}
			for k, v := range tt.attrs {
				if ev.Attrs[k] != v {
					t.Errorf("attr %s = %q, want %q (attrs %v)", k, ev.Attrs[k], v, ev.Attrs)
				}
			}
		})
	}
}

// Traps the receiver must not believe are dropped and counted; the receiver
// goes on.
func TestTrapsRejected(t *testing.T) {
	r, out := receiver(t, config())
	a := addr(r)
	_ = netsnmp(t, r, "snmptrap", "-v", "2c", "-c", "wrong", a, "", "1.3.6.1.6.3.1.1.5.1")
	_ = netsnmp(t, r, "snmptrap", "-v", "3", "-l", "authPriv", "-u", trapUser, "-a", "SHA", "-A", "not-the-password",
		"-x", "AES", "-X", privPass, a, "", "1.3.6.1.6.3.1.1.5.1")
	_ = netsnmp(t, r, "snmptrap", "-v", "3", "-l", "authNoPriv", "-u", "stranger", "-a", "SHA", "-A", authPass, a, "", "1.3.6.1.6.3.1.1.5.1")
	_ = netsnmp(t, r, "snmpget", "-v", "2c", "-c", "public", a, "1.3.6.1.2.1.1.3.0") // not a notification
	if err := netsnmp(t, r, "snmptrap", "-v", "2c", "-c", "public", a, "", "1.3.6.1.6.3.1.1.5.2"); err != nil {
		t.Fatal(err)
	}
	if ev := wait(t, out); ev.Type != TypeWarmStart {
		t.Errorf("event %+v, want the warm start that was sent after the rejected ones", ev)
	}
	st := r.Stats()
	if st.DroppedCommunity != 1 || st.DroppedAuth != 2 || st.DroppedPDU < 1 || st.Events != 1 {
		t.Errorf("stats = %+v, want 1 community, 2 auth, at least 1 PDU drop and 1 event", st)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := RegisterMetrics(reg, r); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP netaiops_snmp_trap_events_total Trap and inform events delivered to the detection engine.
# TYPE netaiops_snmp_trap_events_total counter
netaiops_snmp_trap_events_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "netaiops_snmp_trap_events_total"); err != nil {
		t.Error(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "netaiops_snmp_traps_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "auth" && m.GetCounter().GetValue() != 2 {
				t.Errorf("dropped{reason=auth} = %g, want 2", m.GetCounter().GetValue())
			}
		}
	}
}

// A sender that is no target is reported by its address.
func TestTrapUnknownSender(t *testing.T) {
	cfg := config()
	cfg.Targets = []collector.Target{{Name: "elsewhere", Address: "192.0.2.1:161"}}
	cfg.Communities = nil // any community
	r, out := receiver(t, cfg)
	if err := netsnmp(t, r, "snmptrap", "-v", "2c", "-c", "anything", addr(r), "", "1.3.6.1.6.3.1.1.5.1"); err != nil {
		t.Fatal(err)
	}
	ev := wait(t, out)
	if ev.Device != "127.0.0.1" || ev.Attrs["unknown_source"] != "true" || !strings.HasPrefix(ev.Attrs["source"], "127.0.0.1:") {
		t.Errorf("event %+v, want device 127.0.0.1 marked unknown_source", ev)
	}
}

// A full event channel drops and counts instead of blocking the receiver.
func TestTrapQueueFull(t *testing.T) {
	r, err := New(Config{Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan collector.Event) // never read
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(ctx, out) })
	defer func() { cancel(); wg.Wait() }()
	for i := range 3 {
		if err := netsnmp(t, r, "snmptrap", "-v", "2c", "-c", "public", addr(r), "", "1.3.6.1.6.3.1.1.5.1"); err != nil {
			t.Fatalf("trap %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().DroppedQueueFull < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := r.Stats(); st.DroppedQueueFull != 3 {
		t.Errorf("stats = %+v, want 3 dropped on a full queue", st)
	}
}

// Hostile datagrams never panic the decoder; whatever decodes is counted.
func FuzzHandle(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("0\x82\x00\x00"))
	r, err := New(Config{Listen: "127.0.0.1:0", Users: config().Users, Communities: []string{"public"}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer r.conn.Close()
	from := mustAddrPort("127.0.0.1:9")
	f.Fuzz(func(t *testing.T, msg []byte) {
		before := r.Stats()
		ev, ok := r.handle(msg, from)
		after := r.Stats()
		dropped := after.DroppedMalformed + after.DroppedCommunity + after.DroppedAuth + after.DroppedPDU -
			(before.DroppedMalformed + before.DroppedCommunity + before.DroppedAuth + before.DroppedPDU)
		discovery := after.Discoveries != before.Discoveries
		if ok && dropped > 0 || !ok && dropped == 0 && !discovery {
			t.Errorf("ok %v with %d drops counted: every datagram is an event, a discovery or a counted drop", ok, dropped)
		}
		if ok && ev.Type == "" {
			t.Errorf("event without a type: %+v", ev)
		}
	})
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
