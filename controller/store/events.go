package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// eventToken is the position after the last event of a page: the sort key
// (time, received_at, log_id, seq) of that event, and the issue it was
// issued for.
type eventToken struct {
	Time     int64  `json:"t"`
	Received int64  `json:"r"`
	LogID    string `json:"l"`
	Seq      uint64 `json:"s"`
	IssueID  string `json:"i"`
}

// ListIssueEvents returns the events stored for one issue, oldest first by
// (event time, arrival, log, seq), at most size of them (0 means
// DefaultPageSize, capped at MaxPageSize), after the position in token. A
// page also ends once its events would exceed MaxPageBytes. next is empty
// on the last page. An issue with no events that the store does not know
// is ErrNotFound.
func (s *Store) ListIssueEvents(ctx context.Context, issueID string, size int, token string) (events []Event, next string, err error) {
	if issueID == "" {
		return nil, "", fmt.Errorf("list issue events: %w", argErr("issue_id", "required"))
	}
	size, err = pageSize(size)
	if err != nil {
		return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, err)
	}
	q := `SELECT time, received_at, log_id, seq, payload FROM issue_events WHERE issue_id = ?`
	args := []any{issueID}
	if token != "" {
		var t eventToken
		if err := decodeToken(token, &t); err != nil {
			return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, err)
		}
		if t.IssueID != issueID {
			return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, argErr("page_token", "not issued for this issue"))
		}
		q += ` AND (time, received_at, log_id, seq) > (?, ?, ?, ?)`
		args = append(args, t.Time, t.Received, t.LogID, int64(t.Seq))
	}
	q += ` ORDER BY time, received_at, log_id, seq LIMIT ?`
	args = append(args, size+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, err)
	}
	defer rows.Close()
	var keys []eventToken
	more, bytes := false, 0
	for rows.Next() {
		var k eventToken
		var seq int64
		var payload string
		if err := rows.Scan(&k.Time, &k.Received, &k.LogID, &seq, &payload); err != nil {
			return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, err)
		}
		k.Seq, k.IssueID = uint64(seq), issueID
		var ev Event
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return nil, "", fmt.Errorf("list issue events of %q: decode event %s/%d: %w", issueID, k.LogID, k.Seq, err)
		}
		if bytes += issueWireBytes(ev.Issue) + 32; bytes > MaxPageBytes && len(events) > 0 {
			more = true
			break
		}
		events, keys = append(events, ev), append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list issue events of %q: %w", issueID, err)
	}
	if len(events) > size {
		events, keys, more = events[:size], keys[:size], true
	}
	if more {
		next = encodeToken(keys[len(keys)-1])
	}
	if len(events) == 0 && token == "" {
		// No events: an issue whose events were pruned, or none at all.
		if _, err := s.GetIssue(ctx, issueID); err != nil {
			return nil, "", fmt.Errorf("list issue events: %w", err)
		}
	}
	return events, next, nil
}
