package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/netaiops/netaiops/collector/limits"
)

const issueColumns = `id, agent_id, device, kind, severity, state, summary, first_seen, last_seen, resolved_at,
	attributes, object, fingerprint, caused_by, acknowledged, acknowledged_by, acknowledged_at, update_time, acknowledged_comment`

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
		&is.Acknowledged, &is.AcknowledgedBy, &ackAt, &update, &is.AcknowledgedComment)
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
	if err := checkLen("agent_id", agentID, limits.MaxAgentIDBytes); err != nil {
		return err
	}
	if err := checkLen("log_id", logID, limits.MaxIDBytes); err != nil {
		return err
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
		}
		if err := validateEvent(ev); err != nil {
			return err
		}
		if ev.Issue.AgentID != "" && ev.Issue.AgentID != agentID {
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
	// The agent must exist; its last_seen moves (rolled back with a batch
	// that fails).
	var one int
	if err := s.queryRow(ctx, tx, `UPDATE agents SET last_seen = ? WHERE id = ? RETURNING 1`, now.UnixNano(), agentID).Scan(&one); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return IngestResult{}, fmt.Errorf("agent: %w", ErrNotFound)
		}
		return IngestResult{}, fmt.Errorf("update agent last seen: %w", err)
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
			if err := checkReplay(ctx, tx, agentID, logID, ev); err != nil {
				return IngestResult{}, err
			}
			res.Replayed++
			continue
		}
		if err := checkSeqGap(ev.Seq, res.Watermark); err != nil {
			return IngestResult{}, err
		}
		fresh = append(fresh, ev)
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
	// An issue's identity (device, kind, object, fingerprint, first_seen)
	// is fixed with its id: an update writes only what can change, so SQLite
	// maintains only the indexes of those columns.
	upsertIssue, err := s.prepare(ctx, tx, `INSERT INTO issues (id, agent_id, device, kind, severity, state, summary,
			first_seen, last_seen, resolved_at, attributes, object, fingerprint, caused_by, update_time, last_log_id, last_seq, change_type, change_pos)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET
			severity = excluded.severity, state = excluded.state,
			summary = excluded.summary, last_seen = excluded.last_seen,
			resolved_at = excluded.resolved_at, attributes = excluded.attributes,
			caused_by = excluded.caused_by, update_time = excluded.update_time,
			last_log_id = excluded.last_log_id, last_seq = excluded.last_seq, change_type = excluded.change_type,
			change_pos = excluded.change_pos
		WHERE issues.agent_id = excluded.agent_id
			AND (issues.last_log_id <> excluded.last_log_id OR issues.last_seq < excluded.last_seq)
		RETURNING device, kind, first_seen, object, fingerprint, acknowledged, acknowledged_by, acknowledged_at, acknowledged_comment`)
	if err != nil {
		return IngestResult{}, fmt.Errorf("prepare issue upsert: %w", err)
	}

	// One block of change positions for the batch; a supersession takes
	// its own after it, and Changed is put in position order at the end.
	base, err := s.takePositions(ctx, tx, len(fresh))
	if err != nil {
		return IngestResult{}, err
	}
	for i, ev := range fresh {
		is := ev.Issue
		is.AgentID = agentID
		if is.Fingerprint == "" {
			// The identity of the condition (docs/stream.md): an agent that
			// leaves it out gets the one it would have sent.
			is.Fingerprint = is.Kind + "/" + is.Device + "/" + is.Object
		}
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
		pos := base + uint64(i)
		args := []any{is.ID, agentID, is.Device, is.Kind, int64(is.Severity),
			int64(is.State), is.Summary, nanosOrZero(is.FirstSeen), nanos(is.LastSeen), nanos(is.ResolvedAt), attrs,
			is.Object, is.Fingerprint, is.CausedBy, now.UnixNano(), logID, int64(ev.Seq), int64(ev.Type), int64(pos)}
		var ack storedCols
		err = ack.scan(upsertIssue.QueryRowContext(ctx, args...))
		if err != nil && is.State == StateOpen && isOpenFingerprintConflict(err) {
			// One open issue per condition and agent: a new occurrence
			// (an agent that restarted without its state, say) ends the
			// older one, which the agent no longer tracks. Rare, so it is
			// tried only when the store refuses the second open issue.
			at := ev.Time
			if at.IsZero() {
				at = now
			}
			old, serr := s.supersede(ctx, tx, agentID, is.Fingerprint, is.ID, at, now)
			if serr != nil {
				return IngestResult{}, fmt.Errorf("seq %d: %w", ev.Seq, serr)
			}
			res.Changed = append(res.Changed, old...)
			// After the resolution, so that watchers see it first (the
			// block's position is left as a gap).
			if pos, err = s.nextPos(ctx, tx); err != nil {
				return IngestResult{}, err
			}
			args[len(args)-1] = int64(pos)
			err = ack.scan(upsertIssue.QueryRowContext(ctx, args...))
		}
		switch {
		case err == nil:
			res.Changed = append(res.Changed, Change{Type: ev.Type, Issue: ack.stored(is, now), Pos: pos})
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
	slices.SortStableFunc(res.Changed, func(a, b Change) int { return cmp.Compare(a.Pos, b.Pos) })
	return res, nil
}

// storedCols is what the upsert of an event returns: the issue's identity
// as first stored and the operator's acknowledgement, which events never
// change. The rest of the stored issue is the event's snapshot, as written.
type storedCols struct {
	device, kind, object, fingerprint string
	firstSeen                         int64
	acknowledged                      bool
	by, comment                       string
	at                                sql.NullInt64
}

func (c *storedCols) scan(r *sql.Row) error {
	return r.Scan(&c.device, &c.kind, &c.firstSeen, &c.object, &c.fingerprint, &c.acknowledged, &c.by, &c.at, &c.comment)
}

// stored is the issue as the upsert wrote it (what scanIssue would read
// back, without reading it back).
func (c storedCols) stored(is Issue, now time.Time) Issue {
	is.Device, is.Kind, is.Object, is.Fingerprint = c.device, c.kind, c.object, c.fingerprint
	is.FirstSeen = time.Time{}
	if c.firstSeen != 0 {
		is.FirstSeen = time.Unix(0, c.firstSeen).UTC()
	}
	is.Acknowledged, is.AcknowledgedBy, is.AcknowledgedAt = c.acknowledged, c.by, fromNanos(c.at)
	is.AcknowledgedComment = c.comment
	is.UpdateTime = time.Unix(0, now.UnixNano()).UTC()
	is.LastSeen = fromNanos(nanos(is.LastSeen))
	is.ResolvedAt = fromNanos(nanos(is.ResolvedAt))
	if len(is.Attributes) == 0 {
		is.Attributes = nil
	}
	return is
}

// isOpenFingerprintConflict reports whether err is the store refusing a
// second open issue of one fingerprint and agent (index
// issues_open_fingerprint).
func isOpenFingerprintConflict(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") && strings.Contains(msg, "issues.fingerprint")
}

// supersede resolves, inside tx, the agent's open issues of fingerprint
// other than keepID, as superseded by keepID at at. Each takes a change
// position, so watchers see the resolution.
func (s *Store) supersede(ctx context.Context, tx *sql.Tx, agentID, fingerprint, keepID string, at, now time.Time) ([]Change, error) {
	ids, err := openIDs(ctx, s.queryRow, tx, `SELECT id FROM issues WHERE agent_id = ? AND fingerprint = ? AND state = 1 AND id <> ?`,
		agentID, fingerprint, keepID) // state = 1 literally: the partial index issues_open_fingerprint serves it
	if err != nil {
		return nil, fmt.Errorf("supersede open issues of %s: %w", fingerprint, err)
	}
	var out []Change
	for _, id := range ids {
		ch, err := s.resolveOpen(ctx, tx, id, at, now, `json_set(attributes, '$.resolution', ?, '$.superseded_by', ?)`,
			ResolutionSuperseded, keepID)
		if err != nil {
			return nil, fmt.Errorf("supersede issue %s: %w", id, err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// openIDs runs a query of issue ids. The common case (no row) costs one
// prepared statement: the first id is read with queryRow, the rest, rare,
// with a plain query.
func openIDs(ctx context.Context, queryRow func(context.Context, *sql.Tx, string, ...any) *sql.Row, tx *sql.Tx, query string, args ...any) ([]string, error) {
	var first string
	if err := queryRow(ctx, tx, query+` ORDER BY id LIMIT 1`, args...).Scan(&first); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// resolveOpen resolves one open issue at at with the attributes expression
// attrsExpr (over args), taking the next change position.
func (s *Store) resolveOpen(ctx context.Context, tx *sql.Tx, id string, at, now time.Time, attrsExpr string, args ...any) (Change, error) {
	pos, err := s.nextPos(ctx, tx)
	if err != nil {
		return Change{}, err
	}
	q := `UPDATE issues
		SET state = ?, resolved_at = ?, last_seen = MAX(COALESCE(last_seen, 0), ?), update_time = ?,
			change_type = ?, change_pos = ?, attributes = ` + attrsExpr + `
		WHERE id = ? AND state = ?
		RETURNING ` + issueColumns
	all := append([]any{int64(StateResolved), at.UnixNano(), at.UnixNano(), now.UnixNano(), int64(EventResolved), int64(pos)}, args...)
	all = append(all, id, int64(StateOpen))
	is, err := scanIssue(tx.QueryRowContext(ctx, q, all...))
	if err != nil {
		return Change{}, err
	}
	return Change{Type: EventResolved, Issue: is, Pos: pos}, nil
}

// Resolutions the controller itself gives issues (attribute "resolution").
const (
	// ResolutionSuperseded: the agent opened a new issue for the same condition.
	ResolutionSuperseded = "superseded by a newer issue of the same condition"
	// ResolutionNotOpenAtAgent: the agent's open-issue set, sent on
	// connect, does not hold the issue (it cleared while the event was
	// lost, or the agent restarted without it).
	ResolutionNotOpenAtAgent = "no longer open at the agent"
)

// OpenSet is an agent's set of open issues as it reports it on connect.
type OpenSet struct {
	LogID string
	// AsOfSeq: the set reflects every event of LogID up to this seq.
	AsOfSeq uint64
	// IDs of the issues the agent holds open.
	IDs map[string]bool
}

// ReconcileOpen resolves the agent's open issues that are not in set:
// those last written by an event of set.LogID at or below set.AsOfSeq, or
// by any other log of the agent (a log it lost). Issues the controller
// raised itself (agent_events_dropped) are left alone. The caller applies a
// set once every event up to AsOfSeq that the agent still held is stored
// (docs/stream.md). The resolutions are published like every change; they
// are returned in id order.
func (s *Store) ReconcileOpen(ctx context.Context, agentID string, set OpenSet) ([]Change, error) {
	var out []Change
	err := s.write(ctx, func(tx *sql.Tx, now time.Time) ([]Change, error) {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM issues
			WHERE agent_id = ? AND state = ? AND last_log_id <> ''
				AND (last_log_id <> ? OR last_seq <= ?)
			ORDER BY id`, agentID, int64(StateOpen), set.LogID, clampInt64(set.AsOfSeq))
		if err != nil {
			return nil, err
		}
		var stale []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			if !set.IDs[id] {
				stale = append(stale, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for _, id := range stale {
			ch, err := s.resolveOpen(ctx, tx, id, now, now, `json_set(attributes, '$.resolution', ?)`, ResolutionNotOpenAtAgent)
			if err != nil {
				return nil, fmt.Errorf("resolve %s: %w", id, err)
			}
			out = append(out, ch)
		}
		return out, nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile open issues of agent %s: %w", agentID, err)
	}
	return out, nil
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
	return s.AcknowledgeWithComment(ctx, id, by, "")
}

// MaxAckCommentBytes bounds the comment of an acknowledgement.
const MaxAckCommentBytes = 1024

// AcknowledgeWithComment is Acknowledge with the operator's comment, kept
// with the acknowledgement.
func (s *Store) AcknowledgeWithComment(ctx context.Context, id, by, comment string) (is Issue, changed bool, err error) {
	if len(comment) > MaxAckCommentBytes {
		return Issue{}, false, fmt.Errorf("acknowledge issue %q: %w", id, argErr("comment", fmt.Sprintf("%d bytes, more than %d", len(comment), MaxAckCommentBytes)))
	}
	var ch Change
	err = s.write(ctx, func(tx *sql.Tx, now time.Time) ([]Change, error) {
		is, err := scanIssue(tx.QueryRowContext(ctx, `UPDATE issues
			SET acknowledged = 1, acknowledged_by = ?, acknowledged_at = ?, update_time = ?, change_type = ?, acknowledged_comment = ?
			WHERE id = ? AND acknowledged = 0
			RETURNING `+issueColumns, by, now.UnixNano(), now.UnixNano(), int64(EventUpdated), comment, id))
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
// MaxPageSize), after the position in token. A page also ends once its
// issues would exceed MaxPageBytes. next is empty on the last page.
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
	more, bytes := false, 0
	for rows.Next() {
		is, err := scanIssue(rows)
		if err != nil {
			return nil, "", fmt.Errorf("list issues: %w", err)
		}
		// A page ends early rather than outgrow what a client receives.
		if bytes += issueWireBytes(is); bytes > MaxPageBytes && len(issues) > 0 {
			more = true
			break
		}
		issues = append(issues, is)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list issues: %w", err)
	}
	if len(issues) > size {
		issues, more = issues[:size], true
	}
	if more {
		last := issues[len(issues)-1]
		next = encodeToken(issueToken{FirstSeen: nanosOrZero(last.FirstSeen), ID: last.ID, Filter: f.hash()})
	}
	return issues, next, nil
}

// MaxPageBytes bounds the estimated encoded size of one page of issues or agents:
// half of gRPC's default 4 MiB message, so any client can receive a page
// of issues of the largest size (limits.MaxIssueBytes) whatever its
// page_size; a page that would grow beyond it ends early with a
// next_page_token (a single larger item still makes a page).
const MaxPageBytes = 2 << 20

// issueWireBytes estimates an issue's encoded size from above: its text,
// plus room for the tags, lengths, enums and timestamps around it.
func issueWireBytes(is Issue) int {
	return limits.IssueBytes(is.Attributes, is.ID, is.AgentID, is.Device, is.Kind, is.Summary, is.Object,
		is.Fingerprint, is.CausedBy, is.AcknowledgedBy, is.AcknowledgedComment) + 8*len(is.Attributes) + 256
}
