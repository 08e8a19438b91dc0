package uplink_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/outbox"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/agent/uplink/uplinktest"
)

func TestRecordRoundTrip(t *testing.T) {
	c := mkChange(7)
	c.Issue.CausedBy = "device_unreachable/sw1/"
	r, err := uplink.Record(c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != uplink.FormatIssueEvent || r.Expendable {
		t.Fatalf("record of a major open: format %d expendable %v", r.Format, r.Expendable)
	}
	ev, err := uplink.EventToProto("agent-1", outbox.Entry{Seq: 9, Format: r.Format, Payload: r.Payload})
	if err != nil {
		t.Fatal(err)
	}
	if want := uplink.ChangeToProto("agent-1", 9, c); !proto.Equal(ev, want) {
		t.Fatalf("decoded\n %v\nwant\n %v", ev, want)
	}
	if back, _ := uplink.EventFromProto(ev); !reflect.DeepEqual(back.Change, c) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back.Change, c)
	}
	// The drop policy's marks: resolves and low severities go first.
	res := mkChange(1)
	res.Type = detect.Resolved
	info := mkChange(2)
	info.Issue.Severity = detect.SeverityInfo
	for _, c := range []detect.Change{res, info} {
		if r, _ := uplink.Record(c); !r.Expendable {
			t.Errorf("%s %s change not expendable", c.Type, c.Issue.Severity)
		}
	}
	for _, e := range []outbox.Entry{
		{Seq: 3, Format: 77, Payload: r.Payload},
		{Seq: 4, Format: uplink.FormatIssueEvent, Payload: []byte{0xff, 0xff}},
		{Seq: 5, Format: outbox.LegacyFormat, Payload: []byte("{")},
	} {
		if _, err := uplink.EventToProto("agent-1", e); err == nil {
			t.Errorf("entry %d of format %d payload %q decoded without error", e.Seq, e.Format, e.Payload)
		}
	}
}

// legacyChange is the change the previous outbox format's fixture holds
// for seq i: outbox/testdata/v1-json was written from these.
func legacyChange(i int) detect.Change {
	at := time.Date(2026, 11, 24, 23, 0, 0, i, time.UTC)
	return detect.Change{
		Type: detect.Opened,
		Time: at,
		Issue: detect.Issue{
			ID:          "0123456789abcdef0123456789abcdef",
			Device:      "core-sw1",
			Kind:        "interface_down",
			Object:      "eth" + string(rune('0'+i%10)),
			Fingerprint: "interface_down/core-sw1/eth",
			Severity:    detect.SeverityMajor,
			State:       detect.StateOpen,
			Summary:     "eth down",
			FirstSeen:   at,
			LastSeen:    at.Add(time.Second),
			Attributes:  map[string]string{"ifIndex": "3", "ifName": "eth3"},
			CausedBy:    "device_unreachable/core-sw1/",
		},
	}
}

// An outbox written by the version before record formats (JSON of
// detect.Change) is delivered after the upgrade, every field intact, and
// new records follow it in the same log.
func TestDeliversLegacyOutbox(t *testing.T) {
	src := filepath.Join("..", "outbox", "testdata", "v1-json")
	dir := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ob, err := outbox.Open(dir, outbox.Options{AgentID: "agent-1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	if _, err := uplink.Append(ob, mkChange(7)); err != nil {
		t.Fatal(err)
	}
	// A record no version of the uplink wrote: skipped, not a wedge.
	if _, err := ob.Append(outbox.Record{Format: 99, Payload: []byte("?")}); err != nil {
		t.Fatal(err)
	}
	if _, err := uplink.Append(ob, mkChange(9)); err != nil {
		t.Fatal(err)
	}
	st := uplinktest.NewStore()
	srv := startServer(t, "127.0.0.1:0", st, uplinktest.Options{HeartbeatInterval: 50 * time.Millisecond})
	u, err := uplink.New(fastConfig(srv.Addr()), ob, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	run(t, u)
	waitFor(t, 10*time.Second, "the log delivered", func() bool { return ob.Len() == 0 })
	want := map[uint64]detect.Change{4: legacyChange(4), 5: legacyChange(5), 6: legacyChange(6), 7: mkChange(7), 9: mkChange(9)}
	evs := st.Events()
	if len(evs) != len(want) {
		t.Fatalf("%d events stored, want %d", len(evs), len(want))
	}
	for _, e := range evs {
		w, ok := want[e.Entry.Seq]
		if !ok || e.LogID != "62af4675eb9ded0635ea586c6aa16c57" || e.AgentID != "agent-1" {
			t.Fatalf("stored seq %d of log %s agent %s", e.Entry.Seq, e.LogID, e.AgentID)
		}
		got := e.Entry.Change
		if !got.Time.Equal(w.Time) || !got.Issue.FirstSeen.Equal(w.Issue.FirstSeen) || !got.Issue.LastSeen.Equal(w.Issue.LastSeen) {
			t.Fatalf("seq %d times %v %v %v, want %v %v %v", e.Entry.Seq, got.Time, got.Issue.FirstSeen, got.Issue.LastSeen,
				w.Time, w.Issue.FirstSeen, w.Issue.LastSeen)
		}
		got.Time, got.Issue.FirstSeen, got.Issue.LastSeen = w.Time, w.Issue.FirstSeen, w.Issue.LastSeen
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("seq %d stored as\n %+v\nwant\n %+v", e.Entry.Seq, got, w)
		}
	}
	if s := u.Stats(); s.Undecodable != 1 {
		t.Fatalf("undecodable %d, want 1", s.Undecodable)
	}
}

// FuzzEventToProto feeds arbitrary outbox payloads of either format to the
// decoder: it must return an error or an event carrying the entry's seq
// and the agent id, never panic.
func FuzzEventToProto(f *testing.F) {
	r, err := uplink.Record(mkChange(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uplink.FormatIssueEvent, r.Payload)
	f.Add(outbox.LegacyFormat, []byte(`{"Type":1,"Time":"2026-11-24T23:00:00Z","Issue":{"ID":"x","Severity":3,"Attributes":{"a":"b"}}}`))
	f.Add(outbox.LegacyFormat, []byte(`{"Issue":{"FirstSeen":"not a time"}}`))
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, format uint8, payload []byte) {
		ev, err := uplink.EventToProto("agent-1", outbox.Entry{Seq: 17, Format: format, Payload: payload})
		if err != nil {
			return
		}
		if ev.GetSeq() != 17 || ev.GetIssue().GetAgentId() != "agent-1" {
			t.Fatalf("decoded seq %d agent %q, want 17 agent-1", ev.GetSeq(), ev.GetIssue().GetAgentId())
		}
	})
}
