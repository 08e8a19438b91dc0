package server

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/netaiops/netaiops/collector/limits"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

type watchStreamClient = grpc.ServerStreamingClient[netaiopsv1.WatchIssuesResponse]

// openWatch starts a WatchIssues stream and waits for its headers; it
// returns the start position from the header.
func openWatch(t *testing.T, ctx context.Context, c netaiopsv1.IssueServiceClient, req *netaiopsv1.WatchIssuesRequest) (watchStreamClient, uint64) {
	t.Helper()
	w, err := c.WatchIssues(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	md, err := w.Header()
	if err != nil {
		t.Fatalf("watch header: %v", err)
	}
	v := md.Get(watchPositionHeader)
	if len(v) != 1 {
		t.Fatalf("watch header has no %s: %v", watchPositionHeader, md)
	}
	pos, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return w, pos
}

// events returns n events with seqs from..from+n-1, one issue each.
func events(from, n int, device string, summaryBytes int) []*netaiopsv1.IssueEvent {
	var evs []*netaiopsv1.IssueEvent
	for s := from; s < from+n; s++ {
		ev := event(uint64(s), fmt.Sprintf("i%d", s), device)
		// Within the limits: the summary takes up to its maximum, the
		// rest goes to attributes.
		if summaryBytes > 0 {
			ev.Issue.Summary = strings.Repeat("x", min(summaryBytes, limits.MaxSummaryBytes))
		}
		for i, rest := 0, summaryBytes-limits.MaxSummaryBytes; rest > 0; i++ {
			n := min(rest, limits.MaxAttributeValueBytes)
			ev.Issue.Attributes[fmt.Sprintf("pad%d", i)] = strings.Repeat("p", n)
			rest -= n
		}
		evs = append(evs, ev)
	}
	return evs
}

// recvChanges reads n changes, checking that positions increase.
func recvChanges(t *testing.T, w watchStreamClient, n int, after uint64) (ids []string, last uint64) {
	t.Helper()
	last = after
	for len(ids) < n {
		m, err := w.Recv()
		if err != nil {
			t.Fatalf("watch ended after %d of %d changes: %v", len(ids), n, err)
		}
		if m.GetPosition() <= last {
			t.Fatalf("position %d after %d: not increasing", m.GetPosition(), last)
		}
		last = m.GetPosition()
		ids = append(ids, m.GetIssue().GetId())
	}
	return ids, last
}

// A batch with more changes than the hub keeps in memory does not end a
// watcher that reads: it catches up from the store and gets every change.
// (Before, a batch of more than 256 changes ended every watch with
// ResourceExhausted.) A watcher that reconnects with resume_after misses
// nothing, including changes made while it was away.
func TestWatchThatKeepsUpGetsEveryChangeOfALargeBatch(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour}, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	w, pos := openWatch(t, wctx, e.issues, &netaiopsv1.WatchIssuesRequest{})
	if pos != 0 {
		t.Fatalf("start position %d on an empty store", pos)
	}
	a := dial(t, e)
	a.welcome("a1", "L1")
	a.send(batch("L1", events(1, 300, "sw1", 0)...))
	if got := a.ack(); got != 300 {
		t.Fatalf("ack %d", got)
	}
	ids, last := recvChanges(t, w, 300, pos)
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	if len(seen) != 300 {
		t.Fatalf("got %d distinct issues of 300", len(seen))
	}
	if e.srv.Stats().WatchCaughtUp == 0 {
		t.Fatal("the watcher never caught up from the store: the test did not overflow the hub")
	}

	// Stop after 300; 200 more changes while away; resume misses none.
	wcancel()
	a.send(batch("L1", events(301, 200, "sw1", 0)...))
	a.ack()
	w2, _ := openWatch(t, ctx, e.issues, &netaiopsv1.WatchIssuesRequest{ResumeAfter: last})
	ids, _ = recvChanges(t, w2, 200, last)
	for i, id := range ids {
		if want := fmt.Sprintf("i%d", 301+i); id != want {
			t.Fatalf("resumed change %d is %s, want %s", i, id, want)
		}
	}
	// A resume position from the future is refused.
	w3, err := e.issues.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{ResumeAfter: last + 10_000})
	if err == nil {
		_, err = w3.Recv()
	}
	wantCode(t, err, codes.OutOfRange, "resume_after")
	a.end()
}

// A watcher that stops reading is ended with ResourceExhausted carrying its
// position; resuming from it gets every change it had not received.
func TestWatchNotReadingIsEndedWithResumePosition(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour, WatchSendTimeout: 400 * time.Millisecond}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A small fixed window, so that the server's sends block soon.
	conn, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var trailer metadata.MD
	w, err := netaiopsv1.NewIssueServiceClient(conn).WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{}, grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	a := dial(t, e)
	a.welcome("a1", "L1")
	const n = 1000
	for from := 1; from <= n; from += 250 {
		a.send(batch("L1", events(from, 250, "sw1", 2000)...))
		a.ack()
	}
	waitFor(t, 10*time.Second, "the watcher that does not read to be ended", func() bool { return e.srv.Stats().WatchOverflows == 1 })

	got := map[string]bool{}
	var last uint64
	for {
		m, err := w.Recv()
		if err != nil {
			wantCode(t, err, codes.ResourceExhausted, fmt.Sprintf("accepted no change for 400ms; watch again with resume_after=%d", last))
			break
		}
		got[m.GetIssue().GetId()] = true
		last = m.GetPosition()
	}
	if len(got) == 0 || len(got) == n {
		t.Fatalf("received %d of %d changes before the end; want some", len(got), n)
	}
	if v := trailer.Get(watchResumeTrailer); len(v) != 1 || v[0] != strconv.FormatUint(last, 10) {
		t.Fatalf("trailer %s = %v, want %d", watchResumeTrailer, v, last)
	}
	w2, _ := openWatch(t, ctx, e.issues, &netaiopsv1.WatchIssuesRequest{ResumeAfter: last})
	ids, _ := recvChanges(t, w2, n-len(got), last)
	for _, id := range ids {
		if got[id] {
			t.Fatalf("%s delivered twice", id)
		}
		got[id] = true
	}
	if len(got) != n {
		t.Fatalf("got %d distinct changes of %d", len(got), n)
	}
	a.end()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Watch streams are capped per caller (here: per peer address, as
// authentication is off) and in total, with a clear ResourceExhausted.
func TestWatchCaps(t *testing.T) {
	e := start(t, Config{HeartbeatInterval: time.Hour, MaxWatchers: 3, MaxWatchersPerCaller: 2}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	refused := func(c netaiopsv1.IssueServiceClient, substr string) {
		t.Helper()
		w, err := c.WatchIssues(ctx, &netaiopsv1.WatchIssuesRequest{})
		if err == nil {
			_, err = w.Recv()
		}
		wantCode(t, err, codes.ResourceExhausted, substr)
	}
	c1 := e.issues
	w1ctx, w1cancel := context.WithCancel(ctx)
	openWatch(t, w1ctx, c1, &netaiopsv1.WatchIssuesRequest{})
	openWatch(t, ctx, c1, &netaiopsv1.WatchIssuesRequest{})
	refused(c1, "caller peer:127.0.0.1 already has 2 watch streams open, the maximum per caller")

	// Another peer address on loopback is another caller.
	conn2, err := grpc.NewClient(e.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
			return d.DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	c2 := netaiopsv1.NewIssueServiceClient(conn2)
	openWatch(t, ctx, c2, &netaiopsv1.WatchIssuesRequest{})
	refused(c2, "the controller already serves 3 watch streams, its maximum")
	if e.srv.Stats().WatchRefused != 2 {
		t.Fatalf("refused %d", e.srv.Stats().WatchRefused)
	}
	// Ending a watch frees its place.
	w1cancel()
	waitFor(t, 5*time.Second, "the cancelled watch to be released", func() bool { return e.srv.Stats().Watchers == 2 })
	openWatch(t, ctx, c2, &netaiopsv1.WatchIssuesRequest{})
}

// lockDatabase holds SQLite's write lock from a second connection to the
// controller's database file until the returned function is called: the
// real way ingest gets slow (a long transaction, a slow disk).
func lockDatabase(t *testing.T, e *env) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.dbPath+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			tx.Rollback()
			db.Close()
		})
	}
	t.Cleanup(unlock)
	return unlock
}

// While ingest waits for the database, the stream keeps sending heartbeats
// (before, its loop was blocked in the store and sent nothing), and batches
// of several agents that waited are committed together, each agent acked
// after the commit holding its batch.
func TestStreamsHeartbeatWhileIngestWaitsAndCommitsGroup(t *testing.T) {
	const hb = 300 * time.Millisecond // 3 silent intervals (900ms) end a stream: room for a loaded machine
	e := start(t, Config{HeartbeatInterval: hb}, 0)
	const agents = 20
	as := make([]*agent, agents)
	// The agents send no heartbeats: their hellos go out together, so
	// that none is silent for 3 intervals before its batch.
	for i := range as {
		as[i] = dial(t, e)
	}
	for i, a := range as {
		a.send(hello(fmt.Sprintf("a%d", i), "L1"))
	}
	for _, a := range as {
		if m, err := a.recv(); err != nil || m.GetWelcome() == nil {
			t.Fatalf("want welcome, got %v, %v", m, err)
		}
	}
	unlock := lockDatabase(t, e)
	for i, a := range as {
		evs := events(1, 10, fmt.Sprintf("sw%d", i), 0)
		for _, ev := range evs {
			ev.Issue.Id = fmt.Sprintf("a%d-%s", i, ev.Issue.Id)
		}
		a.send(batch("L1", evs...))
	}
	// During the lock every agent hears heartbeats, and no ack.
	const locked = 1500 * time.Millisecond
	type tally struct {
		heartbeats int
		longest    time.Duration
		err        error
	}
	results := make(chan tally, agents)
	for _, a := range as {
		go func() {
			var tl tally
			deadline := time.Now().Add(locked)
			last := time.Now()
			for time.Now().Before(deadline) {
				m, err := a.stream.Recv()
				tl.longest = max(tl.longest, time.Since(last))
				last = time.Now()
				if err != nil {
					tl.err = err
					break
				}
				if m.GetHeartbeat() != nil {
					tl.heartbeats++
				} else {
					tl.err = fmt.Errorf("got %v while the database is locked", m)
					break
				}
			}
			results <- tl
		}()
	}
	for range agents {
		tl := <-results
		if tl.err != nil {
			t.Fatal(tl.err)
		}
		if min := int(locked/hb) / 2; tl.heartbeats < min {
			t.Fatalf("an agent got %d heartbeats in %s with a %s interval; want at least %d", tl.heartbeats, locked, hb, min)
		}
		// Heartbeats go out after 3/4 of an interval of silence; allow
		// for scheduling under -race on a shared machine.
		if tl.longest > 2*hb {
			t.Fatalf("an agent heard nothing for %s; heartbeat interval %s", tl.longest, hb)
		}
	}
	unlock()
	for i, a := range as {
		if got := a.ack(); got != 10 {
			t.Fatalf("agent %d ack %d", i, got)
		}
	}
	st := e.srv.Stats()
	if st.MaxGroupBatches < 2 || st.GroupedBatches != agents {
		t.Fatalf("group commits %d carried %d batches, largest %d: want batches committed together", st.GroupCommits, st.GroupedBatches, st.MaxGroupBatches)
	}
	for _, a := range as {
		a.end()
	}
}
