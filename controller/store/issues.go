package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"time"
)

const issueColumns = `id, agent_id, device, kind, severity, state, summary, first_seen, last_seen, resolved_at,
	attributes, object, fingerprint, caused_by, acknowledged, acknowledged_by, acknowledged_at, update_time`

type rowScanner interface{ Scan(dest ...any) error }

func scanIssue(r rowScanner) (Issue, error) {
	var (
		is                                  Issue
		firstSeen                           int64
		lastSeen, resolvedAt, ackAt, update sql.NullInt64
		attrs                               string
	)
	err := r.Scan(&is.ID, &is.AgentID, &is.Device, &is.Kind, &is.Severity, &is.State, &is.Summary,
		&firstSeen, &lastSeen, &resolvedAt, &attrs, &is.Object, &is.Fingerprint, &is.CausedBy,
		&is.Acknowledged, &is.AcknowledgedBy, &ackAt, &update)
	if err != nil {
		return Issue{}, err
	}
	if firstSeen != 0 {
		is.FirstSeen = time.Unix(0, firstSeen).UTC()
	}
	is.LastSeen = fromNanos(lastSeen)
	is.ResolvedAt = fromNanos(resolvedAt)
	is.AcknowledgedAt = fromNanos(ackAt)
	is.UpdateTime = fromNanos(update)
	if attrs != "" && attrs != "{}" {
		if err := json.Unmarshal([]byte(attrs), &is.Attributes); err != nil {
			return Issue{}, fmt.Errorf("decode attributes of issue %s: %w", is.ID, err)
		}
	}
	return is, nil
}

// nanosOrZero stores a time in a NOT NULL column (first_seen, the sort key
// of issues): Unix nanoseconds, 0 when unset.
func nanosOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// validateBatch checks a batch before anything is stored: seqs strictly
// increasing from 1, and each issue has an id, kind and device and belongs
// to the sending agent.
func validateBatch(agentID, logID string, events []Event) error {
	if agentID == "" {
		return argErr("agent_id", "required")
	}
	if logID == "" {
		return argErr("log_id", "required")
	}
	var prev uint64
	for i, ev := range events {
		switch {
		case ev.Seq == 0:
			return argErr(fmt.Sprintf("events[%d].seq", i), "must be at least 1")
		case ev.Seq > math.MaxInt64:
			return argErr(fmt.Sprintf("events[%d].seq", i), fmt.Sprintf("%d is too large", ev.Seq))
		case i > 0 && ev.Seq <= prev:
			return argErr(fmt.Sprintf("seq %d", ev.Seq), fmt.Sprintf("not greater than the previous seq %d: events must be in strictly increasing seq order", prev))
		case ev.Issue.ID == "":
			return argErr(fmt.Sprintf("seq %d: issue.id", ev.Seq), "required")
		case ev.Issue.Kind == "":
			return argErr(fmt.Sprintf("seq %d: issue.kind", ev.Seq), "required")
		case ev.Issue.Device == "":
			return argErr(fmt.Sprintf("seq %d: issue.device", ev.Seq), "required")
		case ev.Issue.AgentID != "" && ev.Issue.AgentID != agentID:
			return argErr(fmt.Sprintf("seq %d: issue.agent_id", ev.Seq), fmt.Sprintf("%q is not the sending agent %q", ev.Issue.AgentID, agentID))
		}
		prev = ev.Seq
	}
	return nil
}

// Ingest stores a batch of events from one agent's log in one transaction:
// events at or below the log's watermark are ignored, new events are stored,
// each issue snapshot is upserted unless a later event of the same log
// already wrote it, and the watermark advances to the batch's highest seq.
// Replaying a batch changes nothing. Seqs compare only within one log: an
// event of another log than the one that last wrote an issue wins, because a
// new log means the agent lost its old one and its events are the newest.
// Skipped seqs (a gap: the agent dropped events) raise the agent's
// agent_events_dropped issue in the same transaction; it is the last of
// Changed. The agent must have connected before. A bad batch (an ArgError)
// stores nothing. IngestGroup does the same for several batches in one
// transaction.
func (s *Store) Ingest(ctx context.Context, agentID, logID string, events []Event) (IngestResult, error) {
	out, err := s.IngestGroup(ctx, []IngestRequest{{AgentID: agentID, LogID: logID, Events: events}}, nil)
	if err != nil {
		return IngestResult{}, err
	}
	return out[0].Result, out[0].Err
}

// ingest applies one batch inside tx (see Ingest); the caller commits.
func (s *Store) ingest(ctx context.Context, tx *sql.Tx, now time.Time, agentID, logID string, events []Event) (IngestResult, error) {
	var one int
	if err := s.queryRow(ctx, tx, `SELECT 1 FROM agents WHERE id = ?`, agentID).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return IngestResult{}, fmt.Errorf("agent: %w", ErrNotFound)
		}
		return IngestResult{}, fmt.Errorf("read agent: %w", err)
	}
	var wm int64
	err := s.queryRow(ctx, tx, `SELECT seq FROM log_watermarks WHERE agent_id = ? AND log_id = ?`, agentID, logID).Scan(&wm)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return IngestResult{}, fmt.Errorf("read watermark: %w", err)
	}
	res := IngestResult{Watermark: uint64(wm)}
	var fresh []Event
	for _, ev := range events {
		if ev.Seq <= res.Watermark {
			res.Replayed++
			continue
		}
		fresh = append(fresh, ev)
	}
	if _, err := s.exec(ctx, tx, `UPDATE agents SET last_seen = ? WHERE id = ?`, now.UnixNano(), agentID); err != nil {
		return IngestResult{}, fmt.Errorf("update agent last seen: %w", err)
	}
	if len(fresh) == 0 {
		return res, nil
	}
	prev := res.Watermark
	for _, ev := range fresh {
		if ev.Seq > prev+1 {
			res.Gaps = append(res.Gaps, Gap{After: prev, Next: ev.Seq})
		}
		prev = ev.Seq
	}
	res.Watermark = prev
	if _, err := s.exec(ctx, tx, `INSERT INTO log_watermarks (agent_id, log_id, seq, update_time) VALUES (?, ?, ?, ?)
		ON CONFLICT (agent_id, log_id) DO UPDATE SET seq = excluded.seq, update_time = excluded.update_time`,
		agentID, logID, int64(res.Watermark), now.UnixNano()); err != nil {
		return IngestResult{}, fmt.Errorf("advance watermark: %w", err)
	}

	insertEvent, err := s.prepare(ctx, tx, `INSERT INTO issue_events (agent_id, log_id, seq, issue_id, type, time, payload, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return IngestResult{}, fmt.Errorf("prepare event insert: %w", err)
	}
	upsertIssue, err := s.prepare(ctx, tx, `INSERT INTO issues (id, agent_id, device, kind, severity, state, summary,
			first_seen, last_seen, resolved_at, attributes, object, fingerprint, caused_by, update_time, last_log_id, last_seq, change_type, change_pos)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			device = excluded.device, kind = excluded.kind, severity = excluded.severity, state = excluded.state,
			summary = excluded.summary, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
			resolved_at = excluded.resolved_at, attributes = excluded.attributes, object = excluded.object,
			fingerprint = excluded.fingerprint, caused_by = excluded.caused_by, update_time = excluded.update_time,
			last_log_id = excluded.last_log_id, last_seq = excluded.last_seq, change_type = excluded.change_type,
			change_pos = excluded.change_pos
		WHERE issues.agent_id = excluded.agent_id
			AND (issues.last_log_id <> excluded.last_log_id OR issues.last_seq < excluded.last_seq)
		RETURNING `+issueColumns)
	if err != nil {
		return IngestResult{}, fmt.Errorf("prepare issue upsert: %w", err)
	}

	for _, ev := range fresh {
		is := ev.Issue
		is.AgentID = agentID
		is.Acknowledged, is.AcknowledgedBy, is.AcknowledgedAt = false, "", time.Time{}
		is.UpdateTime = time.Time{}
		payload, err := json.Marshal(Event{Seq: ev.Seq, Type: ev.Type, Time: ev.Time, Issue: is})
		if err != nil {
			return IngestResult{}, fmt.Errorf("encode event seq %d: %w", ev.Seq, err)
		}
		if _, err := insertEvent.ExecContext(ctx, agentID, logID, int64(ev.Seq), is.ID, int64(ev.Type),
			nanosOrZero(ev.Time), string(payload), now.UnixNano()); err != nil {
			return IngestResult{}, fmt.Errorf("insert event seq %d: %w", ev.Seq, err)
		}
		attrs := "{}"
		if len(is.Attributes) > 0 {
			b, err := json.Marshal(is.Attributes)
			if err != nil {
				return IngestResult{}, fmt.Errorf("encode attributes of seq %d: %w", ev.Seq, err)
			}
			attrs = string(b)
		}
		pos, err := s.nextPos(ctx, tx)
		if err != nil {
			return IngestResult{}, err
		}
		stored, err := scanIssue(upsertIssue.QueryRowContext(ctx, is.ID, agentID, is.Device, is.Kind, int64(is.Severity),
			int64(is.State), is.Summary, nanosOrZero(is.FirstSeen), nanos(is.LastSeen), nanos(is.ResolvedAt), attrs,
			is.Object, is.Fingerprint, is.CausedBy, now.UnixNano(), logID, int64(ev.Seq), int64(ev.Type), int64(pos)))
		switch {
		case err == nil:
			res.Changed = append(res.Changed, Change{Type: ev.Type, Issue: stored, Pos: pos})
		case errors.Is(err, sql.ErrNoRows):
			// Not written: either a later event already wrote the issue, or
			// the id belongs to another agent, which is bad input.
			var owner string
			if err := s.queryRow(ctx, tx, `SELECT agent_id FROM issues WHERE id = ?`, is.ID).Scan(&owner); err != nil {
				return IngestResult{}, fmt.Errorf("read owner of issue %s: %w", is.ID, err)
			}
			if owner != agentID {
				return IngestResult{}, argErr(fmt.Sprintf("seq %d: issue.id", ev.Seq), fmt.Sprintf("%q belongs to agent %q", is.ID, owner))
			}
		default:
			return IngestResult{}, fmt.Errorf("upsert issue %s (seq %d): %w", is.ID, ev.Seq, err)
		}
		res.Stored++
	}
	if len(res.Gaps) > 0 {
		var missing uint64
		for _, g := range res.Gaps {
			missing += g.Next - g.After - 1
		}
		ch, ok, err := s.raiseEventsDropped(ctx, tx, agentID, logID, 0, missing, now)
		if err != nil {
			return IngestResult{}, err
		}
		if ok {
			res.Changed = append(res.Changed, ch)
		}
	}
	return res, nil
}

// Watermark returns the highest seq stored for the agent's log (0 if none).
func (s *Store) Watermark(ctx context.Context, agentID, logID string) (uint64, error) {
	var wm int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM log_watermarks WHERE agent_id = ? AND log_id = ?`, agentID, logID).Scan(&wm)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read watermark of agent %s log %s: %w", agentID, logID, err)
	}
	return uint64(wm), nil
}

// GetIssue returns one issue; ErrNotFound if there is none with that id.
func (s *Store) GetIssue(ctx context.Context, id string) (Issue, error) {
	is, err := scanIssue(s.db.QueryRowContext(ctx, `SELECT `+issueColumns+` FROM issues WHERE id = ?`, id))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Issue{}, fmt.Errorf("get issue %q: %w", id, ErrNotFound)
		}
		return Issue{}, fmt.Errorf("get issue %q: %w", id, err)
	}
	return is, nil
}

// Acknowledge marks an issue as seen by an operator. Acknowledging an issue
// already acknowledged changes nothing and reports changed false.
func (s *Store) Acknowledge(ctx context.Context, id, by string) (is Issue, changed bool, err error) {
	var ch Change
	err = s.write(ctx, func(tx *sql.Tx, now time.Time) ([]Change, error) {
		is, err := scanIssue(tx.QueryRowContext(ctx, `UPDATE issues
			SET acknowledged = 1, acknowledged_by = ?, acknowledged_at = ?, update_time = ?, change_type = ?
			WHERE id = ? AND acknowledged = 0
			RETURNING `+issueColumns, by, now.UnixNano(), now.UnixNano(), int64(EventUpdated), id))
		if err != nil {
			return nil, err
		}
		pos, err := s.changePos(ctx, tx)
		if err != nil {
			return nil, err
		}
		ch = Change{Type: EventUpdated, Issue: is, Pos: pos}
		return []Change{ch}, nil
	})
	if err == nil {
		return ch.Issue, true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Issue{}, false, fmt.Errorf("acknowledge issue %q: %w", id, err)
	}
	is, err = s.GetIssue(ctx, id)
	if err != nil {
		return Issue{}, false, fmt.Errorf("acknowledge: %w", err)
	}
	return is, false, nil
}

// issueToken is the position after the last issue of a page, and which
// filter it was issued for.
type issueToken struct {
	FirstSeen int64  `json:"t"`
	ID        string `json:"i"`
	Filter    uint64 `json:"f"`
}

func (f IssueFilter) hash() uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%d\x00%s\x00%s", f.State, f.Kind, f.Severity, f.AgentID, f.Device)
	return h.Sum64()
}

func encodeToken(v any) string {
	b, _ := json.Marshal(v) // plain structs of ints and strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(tok string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return argErr("page_token", "malformed")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return argErr("page_token", "malformed")
	}
	return nil
}

// pageSize applies the default and the maximum.
func pageSize(n int) (int, error) {
	switch {
	case n < 0:
		return 0, argErr("page_size", fmt.Sprintf("%d is negative", n))
	case n == 0:
		return DefaultPageSize, nil
	case n > MaxPageSize:
		return MaxPageSize, nil
	}
	return n, nil
}

// ListIssues returns issues matching the filter, newest first by
// (first_seen, id), at most size of them (0 means DefaultPageSize, capped at
// MaxPageSize), after the position in token. next is empty on the last page.
func (s *Store) ListIssues(ctx context.Context, f IssueFilter, size int, token string) (issues []Issue, next string, err error) {
	size, err = pageSize(size)
	if err != nil {
		return nil, "", fmt.Errorf("list issues: %w", err)
	}
	var where []string
	var args []any
	if f.State != StateUnspecified {
		where, args = append(where, "state = ?"), append(args, int64(f.State))
	}
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.Severity != SeverityUnspecified {
		where, args = append(where, "severity = ?"), append(args, int64(f.Severity))
	}
	if f.AgentID != "" {
		where, args = append(where, "agent_id = ?"), append(args, f.AgentID)
	}
	if f.Device != "" {
		where, args = append(where, "device = ?"), append(args, f.Device)
	}
	if token != "" {
		var t issueToken
		if err := decodeToken(token, &t); err != nil {
			return nil, "", fmt.Errorf("list issues: %w", err)
		}
		if t.Filter != f.hash() || t.ID == "" {
			return nil, "", fmt.Errorf("list issues: %w", argErr("page_token", "not issued for this filter"))
		}
		where = append(where, "(first_seen < ? OR (first_seen = ? AND id < ?))")
		args = append(args, t.FirstSeen, t.FirstSeen, t.ID)
	}
	q := `SELECT ` + issueColumns + ` FROM issues`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY first_seen DESC, id DESC LIMIT ?`
	args = append(args, size+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list issues: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		is, err := scanIssue(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list issues: %w", err)
		}
		issues = append(issues, is)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list issues: %w", err)
	}
	if len(issues) > size {
		issues = issues[:size]
		last := issues[size-1]
		next = encodeToken(issueToken{FirstSeen: nanosOrZero(last.FirstSeen), ID: last.ID, Filter: f.hash()})
	}
	return issues, next, nil
}
