package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Publisher receives every change the store commits, in commit (position)
// order, right after the commit: the watch hub.
type Publisher interface {
	// Start tells the publisher the position of the newest change already
	// stored, before the first Publish.
	Start(head uint64)
	Publish(changes ...Change)
}

// SetPublisher makes p receive the changes of every later commit of this
// store that writes issues through it (Ingest, IngestGroup, Heartbeat,
// Acknowledge). Commits and their publication happen under one lock, so p
// sees positions in increasing order.
func (s *Store) SetPublisher(ctx context.Context, p Publisher) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	head, err := s.Head(ctx)
	if err != nil {
		return fmt.Errorf("set publisher: %w", err)
	}
	p.Start(head)
	s.pub = p
	return nil
}

// write runs fn in one write transaction, commits, and publishes the changes
// fn returns. Writers are serialised by commitMu (SQLite has one writer at a
// time anyway), so positions are published in the order they were taken.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx, now time.Time) ([]Change, error)) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	clear(s.txStmts)    // they closed with the previous transaction
	changes, err := fn(tx, s.now())
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if s.pub != nil && len(changes) > 0 {
		s.pub.Publish(changes...)
	}
	return nil
}

// queryRow and exec run a statement of write's transaction through the
// statement cache of prepare.
func (s *Store) queryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	st, err := s.prepare(ctx, tx, query)
	if err != nil {
		return tx.QueryRowContext(ctx, query, args...) // reports the error on Scan
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) exec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := s.prepare(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// changePos returns the position the last write of an issue row in tx took
// (assigned by the triggers of migration 0003).
func (s *Store) changePos(ctx context.Context, tx *sql.Tx) (uint64, error) {
	st, err := s.prepare(ctx, tx, `SELECT pos FROM change_position WHERE id = 1`)
	if err != nil {
		return 0, fmt.Errorf("read change position: %w", err)
	}
	var pos int64
	if err := st.QueryRowContext(ctx).Scan(&pos); err != nil {
		return 0, fmt.Errorf("read change position: %w", err)
	}
	return uint64(pos), nil
}

// nextPos takes the next change position for a write that sets change_pos
// itself (cheaper than the triggers' second write of the row). A position
// taken by a write that then writes nothing leaves a gap, which readers of
// positions allow.
func (s *Store) nextPos(ctx context.Context, tx *sql.Tx) (uint64, error) {
	st, err := s.prepare(ctx, tx, `UPDATE change_position SET pos = pos + 1 WHERE id = 1 RETURNING pos`)
	if err != nil {
		return 0, fmt.Errorf("take change position: %w", err)
	}
	var pos int64
	if err := st.QueryRowContext(ctx).Scan(&pos); err != nil {
		return 0, fmt.Errorf("take change position: %w", err)
	}
	return uint64(pos), nil
}

// takePositions takes n consecutive change positions and returns the
// first (n 0: the next one, not taken).
func (s *Store) takePositions(ctx context.Context, tx *sql.Tx, n int) (uint64, error) {
	st, err := s.prepare(ctx, tx, `UPDATE change_position SET pos = pos + ? WHERE id = 1 RETURNING pos`)
	if err != nil {
		return 0, fmt.Errorf("take change positions: %w", err)
	}
	var last int64
	if err := st.QueryRowContext(ctx, int64(n)).Scan(&last); err != nil {
		return 0, fmt.Errorf("take change positions: %w", err)
	}
	return uint64(last) - uint64(n) + 1, nil
}

// Head returns the position of the newest stored change (0 if none).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var pos int64
	if err := s.db.QueryRowContext(ctx, `SELECT pos FROM change_position WHERE id = 1`).Scan(&pos); err != nil {
		return 0, fmt.Errorf("read change head: %w", err)
	}
	return uint64(pos), nil
}

// ChangesAfter returns, in position order, the issues changed after position
// after that match f, each in its current state with the position of its
// latest change; it examines at most limit changes. next is the position
// reached (the last one examined, matching or not; after when there is
// none), to pass as after to the following call. An issue changed several
// times since after appears once, in its newest state: a watcher that
// catches up gets the present, not every intermediate snapshot.
func (s *Store) ChangesAfter(ctx context.Context, f IssueFilter, after uint64, limit int) (changes []Change, next uint64, err error) {
	if limit <= 0 || limit > MaxPageSize {
		limit = MaxPageSize
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+issueColumns+`, change_pos, change_type FROM issues
		WHERE change_pos > ? ORDER BY change_pos LIMIT ?`, clampInt64(after), limit)
	if err != nil {
		return nil, after, fmt.Errorf("read changes after %d: %w", after, err)
	}
	defer rows.Close()
	next = after
	for rows.Next() {
		var pos, typ int64
		is, err := scanIssue(extraScanner{rows, []any{&pos, &typ}})
		if err != nil {
			return nil, after, fmt.Errorf("read changes after %d: %w", after, err)
		}
		next = uint64(pos)
		if !f.Match(is) {
			continue
		}
		changes = append(changes, Change{Type: catchUpType(is.State, EventType(typ)), Issue: is, Pos: uint64(pos)})
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read changes after %d: %w", after, err)
	}
	return changes, next, nil
}

// catchUpType is the event type to report for an issue's latest change:
// the stored type, made consistent with the state (a writer that did not
// set change_type leaves the previous one).
func catchUpType(st State, typ EventType) EventType {
	switch {
	case st == StateResolved:
		return EventResolved
	case typ == EventResolved || typ == EventUnspecified:
		return EventUpdated
	}
	return typ
}

// extraScanner scans the issue columns followed by extra columns.
type extraScanner struct {
	r     rowScanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error { return e.r.Scan(append(dest, e.extra...)...) }

// IngestRequest is one agent's batch for IngestGroup.
type IngestRequest struct {
	AgentID, LogID string
	Events         []Event
}

// IngestOutcome is what IngestGroup did with one batch: its result, or why
// it was refused (an ArgError for bad input, ErrNotFound for an agent that
// never connected, or the group's failure).
type IngestOutcome struct {
	Result IngestResult
	Err    error
}

// AgentStatus is an agent's reported queue state (its heartbeat).
type AgentStatus struct {
	AgentID          string
	Pending, Dropped uint64
}

// IngestGroup stores the batches of several agents and their reported
// statuses in one transaction (group commit: one fsync for all), each batch
// as Ingest would. A batch that fails is rolled back alone (a savepoint)
// and reported in its outcome; the others are committed. err is non-nil
// when the transaction itself failed: then no batch was stored and every
// outcome carries the error.
func (s *Store) IngestGroup(ctx context.Context, reqs []IngestRequest, statuses []AgentStatus) (out []IngestOutcome, err error) {
	out = make([]IngestOutcome, len(reqs))
	for i, r := range reqs {
		if err := validateBatch(r.AgentID, r.LogID, r.Events); err != nil {
			out[i].Err = fmt.Errorf("ingest agent %s log %s: %w", r.AgentID, r.LogID, err)
		}
	}
	// Batches almost never fail once validated, so the group first runs
	// without a savepoint per batch (two statements each); when one does
	// fail, the whole transaction is rolled back and the group runs again
	// with savepoints, so that the failing batch is refused alone.
	err = s.ingestGroup(ctx, reqs, statuses, out, false)
	if errors.Is(err, errBatchFailed) {
		err = s.ingestGroup(ctx, reqs, statuses, out, true)
	}
	if err != nil {
		err = fmt.Errorf("ingest group of %d batches: %w", len(reqs), err)
		for i := range out {
			if out[i].Err == nil {
				out[i] = IngestOutcome{Err: err}
			}
		}
		return out, err
	}
	return out, nil
}

// errBatchFailed rolls back a group run without savepoints when one of its
// batches fails.
var errBatchFailed = errors.New("a batch of the group failed")

// ingestGroup runs the group in one write transaction; with savepoints, a
// failing batch is rolled back alone and its error goes to its outcome;
// without, the first failure aborts the transaction with errBatchFailed.
func (s *Store) ingestGroup(ctx context.Context, reqs []IngestRequest, statuses []AgentStatus, out []IngestOutcome, savepoints bool) error {
	return s.write(ctx, func(tx *sql.Tx, now time.Time) ([]Change, error) {
		var changes []Change
		for i, r := range reqs {
			if out[i].Err != nil {
				continue
			}
			if savepoints {
				if _, err := s.exec(ctx, tx, `SAVEPOINT batch`); err != nil {
					return nil, fmt.Errorf("savepoint: %w", err)
				}
			}
			res, err := s.ingest(ctx, tx, now, r.AgentID, r.LogID, r.Events)
			switch {
			case err != nil && !savepoints:
				return nil, errBatchFailed
			case err != nil:
				if _, rerr := s.exec(ctx, tx, `ROLLBACK TO batch`); rerr != nil {
					return nil, fmt.Errorf("roll back batch of agent %s: %w (after %w)", r.AgentID, rerr, err)
				}
				out[i].Err = fmt.Errorf("ingest agent %s log %s: %w", r.AgentID, r.LogID, err)
			default:
				out[i].Result = res
				changes = append(changes, res.Changed...)
			}
			if savepoints {
				if _, err := s.exec(ctx, tx, `RELEASE batch`); err != nil {
					return nil, fmt.Errorf("release savepoint: %w", err)
				}
			}
		}
		for _, st := range statuses {
			ch, ok, err := s.heartbeat(ctx, tx, now, st.AgentID, st.Pending, st.Dropped)
			if err != nil {
				return nil, fmt.Errorf("heartbeat agent %s: %w", st.AgentID, err)
			}
			if ok {
				changes = append(changes, ch)
			}
		}
		return changes, nil
	})
}
