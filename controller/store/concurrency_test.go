package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// Writers on several connections queue on the write lock instead of failing
// with SQLITE_BUSY, and readers run beside them.
func TestConcurrentIngestAndList(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const agents, batches, perBatch = 4, 10, 25
	for a := 0; a < agents; a++ {
		mustConnect(t, s, fmt.Sprintf("a%d", a), "L")
	}
	var wg sync.WaitGroup
	errs := make(chan error, agents+1)
	for a := 0; a < agents; a++ {
		wg.Go(func() {
			agent := fmt.Sprintf("a%d", a)
			seq := uint64(0)
			for b := 0; b < batches; b++ {
				evs := make([]Event, perBatch)
				for i := range evs {
					seq++
					evs[i] = ev(seq, EventOpened, fmt.Sprintf("%s-%d", agent, seq), StateOpen, "")
				}
				if _, err := s.Ingest(ctx, agent, "L", evs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := 0; i < 50; i++ {
			if _, _, err := s.ListIssues(ctx, IssueFilter{State: StateOpen}, 50, ""); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM issues`).Scan(&n); err != nil || n != agents*batches*perBatch {
		t.Fatalf("stored %d issues, want %d (%v)", n, agents*batches*perBatch, err)
	}
	for a := 0; a < agents; a++ {
		if wm, _ := s.Watermark(ctx, fmt.Sprintf("a%d", a), "L"); wm != batches*perBatch {
			t.Fatalf("a%d watermark = %d", a, wm)
		}
	}
}

func BenchmarkIngest500(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, b.TempDir()+"/bench.db", testLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Connect(ctx, AgentInfo{ID: "a", LogID: "L"}); err != nil {
		b.Fatal(err)
	}
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		evs := make([]Event, 500)
		for i := range evs {
			seq++
			// 50 issues, each updated repeatedly: the common case.
			evs[i] = ev(seq, EventUpdated, fmt.Sprintf("i%d", seq%50), StateOpen, "x")
		}
		if _, err := s.Ingest(ctx, "a", "L", evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
