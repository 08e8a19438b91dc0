package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netaiops/netaiops/controller/store"
)

// groupCommitTimeout bounds one group commit.
const groupCommitTimeout = 30 * time.Second

// ingestJob is one agent batch waiting for the group-commit writer.
type ingestJob struct {
	req   store.IngestRequest
	reply chan store.IngestOutcome // capacity 1: the writer never waits
}

// groupWriter is the one goroutine that commits agent batches: it takes
// every batch queued while the previous commit ran (up to MaxGroupEvents
// events) into one transaction, with the agents' latest heartbeat states,
// so load raises the size of a commit rather than the number of commits
// and the latency of each. Each stream acks its agent after the commit
// that holds its batch.
type groupWriter struct {
	st        *store.Store
	logger    *slog.Logger
	maxEvents int
	queue     chan *ingestJob
	stop      <-chan struct{}
	done      chan struct{}

	// statuses holds the newest heartbeat state per agent (level-triggered:
	// a newer one replaces an older one), written with the next commit.
	statusMu   sync.Mutex
	statuses   map[string]store.AgentStatus
	statusWake chan struct{}

	commits  atomic.Uint64
	grouped  atomic.Uint64
	maxGroup atomic.Uint64
	full     atomic.Uint64
}

func newGroupWriter(cfg Config, st *store.Store, logger *slog.Logger, stop <-chan struct{}) *groupWriter {
	g := &groupWriter{
		st:         st,
		logger:     logger,
		maxEvents:  cfg.MaxGroupEvents,
		queue:      make(chan *ingestJob, cfg.IngestQueue),
		stop:       stop,
		done:       make(chan struct{}),
		statuses:   map[string]store.AgentStatus{},
		statusWake: make(chan struct{}, 1),
	}
	go g.run()
	return g
}

// wait returns when the writer ended (after the server's shutdown).
func (g *groupWriter) wait() { <-g.done }

// submit queues a batch and returns the channel its outcome arrives on. It
// waits while the queue is full (counted), until stop or the server's
// shutdown; ok is false then.
func (g *groupWriter) submit(req store.IngestRequest, stop <-chan struct{}) (reply <-chan store.IngestOutcome, ok bool) {
	j := &ingestJob{req: req, reply: make(chan store.IngestOutcome, 1)}
	select {
	case g.queue <- j:
		return j.reply, true
	default:
	}
	g.full.Add(1)
	select {
	case g.queue <- j:
		return j.reply, true
	case <-stop:
	case <-g.stop:
	}
	return nil, false
}

// status records an agent's heartbeat state for the next commit.
func (g *groupWriter) status(st store.AgentStatus) {
	g.statusMu.Lock()
	g.statuses[st.AgentID] = st
	g.statusMu.Unlock()
	select {
	case g.statusWake <- struct{}{}:
	default:
	}
}

func (g *groupWriter) run() {
	defer close(g.done)
	var jobs []*ingestJob
	for {
		jobs = jobs[:0]
		select {
		case j := <-g.queue:
			jobs = append(jobs, j)
		case <-g.statusWake:
		case <-g.stop:
			g.drain()
			return
		}
		events := 0
		if len(jobs) > 0 {
			events = len(jobs[0].req.Events)
		}
	take:
		for events < g.maxEvents {
			select {
			case j := <-g.queue:
				jobs = append(jobs, j)
				events += len(j.req.Events)
			default:
				break take
			}
		}
		g.commit(jobs)
	}
}

func (g *groupWriter) commit(jobs []*ingestJob) {
	g.statusMu.Lock()
	var statuses []store.AgentStatus
	for _, st := range g.statuses {
		statuses = append(statuses, st)
	}
	clear(g.statuses)
	g.statusMu.Unlock()
	if len(jobs) == 0 && len(statuses) == 0 {
		return
	}
	reqs := make([]store.IngestRequest, len(jobs))
	for i, j := range jobs {
		reqs[i] = j.req
	}
	ctx, cancel := context.WithTimeout(context.Background(), groupCommitTimeout)
	outs, err := g.st.IngestGroup(ctx, reqs, statuses)
	cancel()
	if err != nil {
		g.logger.Error("group commit failed", "batches", len(jobs), "statuses", len(statuses), "err", err)
	}
	g.commits.Add(1)
	g.grouped.Add(uint64(len(jobs)))
	for {
		m := g.maxGroup.Load()
		if uint64(len(jobs)) <= m || g.maxGroup.CompareAndSwap(m, uint64(len(jobs))) {
			break
		}
	}
	for i, j := range jobs {
		j.reply <- outs[i]
	}
}

// drain answers the batches still queued at shutdown: not stored.
func (g *groupWriter) drain() {
	for {
		select {
		case j := <-g.queue:
			j.reply <- store.IngestOutcome{Err: context.Canceled}
		default:
			return
		}
	}
}
