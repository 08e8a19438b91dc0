package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// KindEventsDropped is the issue the controller raises for an agent that
// lost issue events: its outbox was full (the heartbeat's dropped count
// grew) or a batch skipped seqs the controller never received.
const KindEventsDropped = "agent_events_dropped"

// droppedIssueID is the id of the agent_events_dropped issue of one agent's
// event log: one issue per log, updated as the losses grow.
func droppedIssueID(agentID, logID string) string {
	h := sha256.New()
	h.Write([]byte("controller"))
	h.Write([]byte{0})
	h.Write([]byte(agentID))
	h.Write([]byte{0})
	h.Write([]byte(KindEventsDropped))
	h.Write([]byte{0})
	h.Write([]byte(logID))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// raiseEventsDropped opens or updates, inside tx, the agent_events_dropped
// issue of the agent's log: reported is the agent's own cumulative drop
// count (kept when it grew), missing the seqs just found skipped (added).
// It returns the change, or ok false when nothing grew.
func (s *Store) raiseEventsDropped(ctx context.Context, tx *sql.Tx, agentID, logID string, reported, missing uint64, now time.Time) (ch Change, ok bool, err error) {
	id := droppedIssueID(agentID, logID)
	old, err := scanIssue(tx.QueryRowContext(ctx, `SELECT `+issueColumns+` FROM issues WHERE id = ?`, id))
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Change{}, false, fmt.Errorf("read %s issue: %w", KindEventsDropped, err)
	}
	var oldReported, oldMissing uint64
	if exists {
		oldReported, _ = strconv.ParseUint(old.Attributes["dropped_events"], 10, 64)
		oldMissing, _ = strconv.ParseUint(old.Attributes["missing_events"], 10, 64)
	}
	newReported, newMissing := max(oldReported, reported), oldMissing+missing
	if exists && newReported == oldReported && newMissing == oldMissing {
		return Change{}, false, nil
	}
	attrs := map[string]string{
		"log_id":         logID,
		"dropped_events": strconv.FormatUint(newReported, 10),
		"missing_events": strconv.FormatUint(newMissing, 10),
	}
	attrJSON, err := json.Marshal(attrs)
	if err != nil {
		return Change{}, false, fmt.Errorf("encode %s attributes: %w", KindEventsDropped, err)
	}
	summary := fmt.Sprintf("agent %s lost issue events: %d dropped from its full outbox, %d seqs never received", agentID, newReported, newMissing)
	typ := EventUpdated
	if !exists {
		typ = EventOpened
	}
	is, err := scanIssue(tx.QueryRowContext(ctx, `INSERT INTO issues (id, agent_id, device, kind, severity, state, summary,
			first_seen, last_seen, resolved_at, attributes, object, fingerprint, caused_by, update_time, last_log_id, last_seq, change_type)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, '', ?, '', 0, ?)
		ON CONFLICT (id) DO UPDATE SET state = excluded.state, summary = excluded.summary, last_seen = excluded.last_seen,
			resolved_at = NULL, attributes = excluded.attributes, update_time = excluded.update_time, change_type = excluded.change_type
		RETURNING `+issueColumns,
		id, agentID, agentID, KindEventsDropped, int64(SeverityMajor), int64(StateOpen), summary,
		now.UnixNano(), now.UnixNano(), string(attrJSON), logID, KindEventsDropped+"/"+agentID+"/"+logID, now.UnixNano(), int64(typ)))
	if err != nil {
		return Change{}, false, fmt.Errorf("upsert %s issue: %w", KindEventsDropped, err)
	}
	pos, err := s.changePos(ctx, tx)
	if err != nil {
		return Change{}, false, err
	}
	return Change{Type: typ, Issue: is, Pos: pos}, true, nil
}

// heartbeat stores, inside tx, the reported queue state with the
// agent_events_dropped issue it may raise (returned, ok true).
func (s *Store) heartbeat(ctx context.Context, tx *sql.Tx, now time.Time, agentID string, pending, dropped uint64) (ch Change, ok bool, err error) {
	var (
		before int64
		logID  string
	)
	err = tx.QueryRowContext(ctx, `SELECT dropped_events, log_id FROM agents WHERE id = ?`, agentID).Scan(&before, &logID)
	if errors.Is(err, sql.ErrNoRows) {
		return Change{}, false, nil // never said hello: nothing to record
	}
	if err != nil {
		return Change{}, false, fmt.Errorf("read agent: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE agents SET pending_events = ?, dropped_events = ?, last_seen = ? WHERE id = ?`,
		clampInt64(pending), clampInt64(dropped), now.UnixNano(), agentID); err != nil {
		return Change{}, false, fmt.Errorf("update agent: %w", err)
	}
	if clampInt64(dropped) > before {
		ch, ok, err = s.raiseEventsDropped(ctx, tx, agentID, logID, dropped, 0, now)
		if err != nil {
			return Change{}, false, err
		}
		if ok {
			s.logger.Warn("agent dropped issue events: its outbox was full", "agent", agentID, "log_id", logID,
				"dropped_events", dropped, "issue", ch.Issue.ID)
		}
	}
	return ch, ok, nil
}
