package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/netaiops/netaiops/collector/limits"
)

// Connect records an agent's hello: it upserts the agent (version, hostname,
// labels, targets, log id, last seen), marks it connected and returns the
// stored watermark of the hello's log.
func (s *Store) Connect(ctx context.Context, a AgentInfo) (ConnectResult, error) {
	if a.ID == "" {
		return ConnectResult{}, fmt.Errorf("connect agent: %w", argErr("agent_id", "required"))
	}
	if a.LogID == "" {
		return ConnectResult{}, fmt.Errorf("connect agent %s: %w", a.ID, argErr("log_id", "required"))
	}
	if err := validateAgentInfo(a); err != nil {
		return ConnectResult{}, fmt.Errorf("connect agent %s: %w", limits.Truncate(a.ID, limits.MaxAgentIDBytes), err)
	}
	res, err := s.connect(ctx, a)
	if err != nil {
		return ConnectResult{}, fmt.Errorf("connect agent %s: %w", a.ID, err)
	}
	return res, nil
}

func (s *Store) connect(ctx context.Context, a AgentInfo) (ConnectResult, error) {
	labels, err := json.Marshal(nonNilMap(a.Labels))
	if err != nil {
		return ConnectResult{}, fmt.Errorf("encode labels: %w", err)
	}
	targets := a.Targets
	if targets == nil {
		targets = []Target{}
	}
	targetsJSON, err := json.Marshal(targets)
	if err != nil {
		return ConnectResult{}, fmt.Errorf("encode targets: %w", err)
	}
	now := s.now().UnixNano()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return ConnectResult{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit

	var res ConnectResult
	var prevLog string
	err = tx.QueryRowContext(ctx, `SELECT log_id FROM agents WHERE id = ?`, a.ID).Scan(&prevLog)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res.NewAgent = true
	case err != nil:
		return ConnectResult{}, fmt.Errorf("read agent: %w", err)
	case prevLog != a.LogID:
		res.PreviousLogID = prevLog
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO agents (id, version, hostname, labels, targets, log_id, connected, first_seen, last_seen,
			applied_config_hash, applied_config_version)
		VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, hostname = excluded.hostname,
			labels = excluded.labels, targets = excluded.targets, log_id = excluded.log_id,
			connected = 1, last_seen = excluded.last_seen,
			applied_config_hash = excluded.applied_config_hash, applied_config_version = excluded.applied_config_version`,
		a.ID, a.Version, a.Hostname, string(labels), string(targetsJSON), a.LogID, now, now,
		a.AppliedConfigHash, clampInt64(a.AppliedConfigVersion)); err != nil {
		return ConnectResult{}, fmt.Errorf("upsert agent: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO log_watermarks (agent_id, log_id, seq, update_time) VALUES (?, ?, 0, ?)
		ON CONFLICT (agent_id, log_id) DO NOTHING`, a.ID, a.LogID, now); err != nil {
		return ConnectResult{}, fmt.Errorf("create watermark: %w", err)
	}
	var wm int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM log_watermarks WHERE agent_id = ? AND log_id = ?`, a.ID, a.LogID).Scan(&wm); err != nil {
		return ConnectResult{}, fmt.Errorf("read watermark: %w", err)
	}
	res.Watermark = uint64(wm)
	if err := tx.Commit(); err != nil {
		return ConnectResult{}, fmt.Errorf("commit: %w", err)
	}
	return res, nil
}

// Disconnect marks an agent disconnected.
func (s *Store) Disconnect(ctx context.Context, agentID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET connected = 0 WHERE id = ?`, agentID); err != nil {
		return fmt.Errorf("disconnect agent %s: %w", agentID, err)
	}
	return nil
}

// DisconnectAll marks every agent disconnected: at startup no stream is open.
func (s *Store) DisconnectAll(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET connected = 0 WHERE connected <> 0`); err != nil {
		return fmt.Errorf("disconnect all agents: %w", err)
	}
	return nil
}

// Heartbeat stores an agent's reported queue state and marks it seen now.
// When the agent's count of dropped events grew, it raises the agent's
// agent_events_dropped issue.
func (s *Store) Heartbeat(ctx context.Context, agentID string, pending, dropped uint64) error {
	err := s.write(ctx, func(tx *sql.Tx, now time.Time) ([]Change, error) {
		ch, ok, err := s.heartbeat(ctx, tx, now, agentID, pending, dropped)
		if err != nil || !ok {
			return nil, err
		}
		return []Change{ch}, nil
	})
	if err != nil {
		return fmt.Errorf("heartbeat agent %s: %w", agentID, err)
	}
	return nil
}

// Touch marks an agent seen now.
func (s *Store) Touch(ctx context.Context, agentID string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET last_seen = ? WHERE id = ?`, s.now().UnixNano(), agentID); err != nil {
		return fmt.Errorf("touch agent %s: %w", agentID, err)
	}
	return nil
}

type agentToken struct {
	ID string `json:"a"`
}

// ListAgents returns agents ordered by id, at most size of them (0 means
// DefaultPageSize, capped at MaxPageSize), after the position in token. A
// page also ends once its agents (their labels and targets as stored)
// would exceed MaxPageBytes.
func (s *Store) ListAgents(ctx context.Context, size int, token string) (agents []Agent, next string, err error) {
	size, err = pageSize(size)
	if err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	after := ""
	if token != "" {
		var t agentToken
		if err := decodeToken(token, &t); err != nil {
			return nil, "", fmt.Errorf("list agents: %w", err)
		}
		if t.ID == "" {
			return nil, "", fmt.Errorf("list agents: %w", argErr("page_token", "malformed"))
		}
		after = t.ID
	}
	rows, err := s.db.QueryContext(ctx, `SELECT a.id, a.version, a.hostname, a.labels, a.targets, a.log_id, a.connected,
			a.last_seen, a.pending_events, a.dropped_events, COALESCE(w.seq, 0),
			a.applied_config_hash, a.applied_config_version, a.config_error, a.config_error_hash
		FROM agents a LEFT JOIN log_watermarks w ON w.agent_id = a.id AND w.log_id = a.log_id
		WHERE a.id > ? ORDER BY a.id LIMIT ?`, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	more, bytes := false, 0
	for rows.Next() {
		var (
			a                          Agent
			labels, targets            string
			lastSeen, pend, drop, wmax int64
			appliedVersion             int64
		)
		if err := rows.Scan(&a.ID, &a.Version, &a.Hostname, &labels, &targets, &a.LogID, &a.Connected,
			&lastSeen, &pend, &drop, &wmax, &a.AppliedConfigHash, &appliedVersion, &a.ConfigError, &a.ConfigErrorHash); err != nil {
			return nil, "", fmt.Errorf("list agents: %w", err)
		}
		if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
			return nil, "", fmt.Errorf("list agents: decode labels of %s: %w", a.ID, err)
		}
		if err := json.Unmarshal([]byte(targets), &a.Targets); err != nil {
			return nil, "", fmt.Errorf("list agents: decode targets of %s: %w", a.ID, err)
		}
		a.LastSeen = time.Unix(0, lastSeen).UTC()
		a.Pending, a.Dropped, a.LastStoredSeq = uint64(pend), uint64(drop), uint64(wmax)
		a.AppliedConfigVersion = uint64(appliedVersion)
		// A page ends early rather than outgrow what a client receives.
		if bytes += len(labels) + len(targets) + len(a.Version) + len(a.Hostname) + len(a.LogID) + len(a.AppliedConfigHash) +
			len(a.ConfigError) + len(a.ConfigErrorHash) + 256; bytes > MaxPageBytes && len(agents) > 0 {
			more = true
			break
		}
		agents = append(agents, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list agents: %w", err)
	}
	if len(agents) > size {
		agents, more = agents[:size], true
	}
	if more {
		next = encodeToken(agentToken{ID: agents[len(agents)-1].ID})
	}
	return agents, next, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
