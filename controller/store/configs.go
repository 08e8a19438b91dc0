package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Config is a desired agent configuration stored for a selector: one agent
// (AgentID) or every agent carrying all of Labels (none: every agent).
type Config struct {
	Source     string // "agent/<id>" or "labels/<k>=<v>,..." (sorted)
	AgentID    string
	Labels     map[string]string
	YAML       string
	Hash       string // lowercase hex HMAC-SHA256 of YAML under the store's key (see ConfigHash)
	Version    uint64
	UpdateTime time.Time
	UpdatedBy  string
}

// ConfigSource names a selector: "agent/<id>" for an agent, else
// "labels/" followed by the sorted k=v pairs joined by commas ("labels/"
// alone selects every agent).
func ConfigSource(agentID string, labels map[string]string) (string, error) {
	if agentID != "" {
		if len(labels) > 0 {
			return "", argErr("selector", "agent_id and labels both set; choose one")
		}
		if strings.ContainsAny(agentID, " \t\n/") {
			return "", argErr("selector.agent_id", fmt.Sprintf("bad id %q", agentID))
		}
		return "agent/" + agentID, nil
	}
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		if k == "" || strings.ContainsAny(k+v, "=,") {
			return "", argErr("selector.labels", fmt.Sprintf("bad label %q=%q: names are non-empty and neither holds '=' or ','", k, v))
		}
		pairs = append(pairs, k+"="+v)
	}
	slices.Sort(pairs)
	return "labels/" + strings.Join(pairs, ","), nil
}

// ConfigHash is the content hash of a configuration document: an
// HMAC-SHA256 under a key derived from the store's key file, so that the
// hash, which viewers see next to the redacted document, cannot be used to
// test guesses of the secrets in it. Agents only compare it for equality.
func (s *Store) ConfigHash(yaml string) string { return s.secrets.hash(yaml) }

// SetConfig stores c (Source, AgentID, Labels, YAML, UpdatedBy) and
// returns it as stored. A document equal to the stored one changes nothing
// (changed false); otherwise the version becomes one more than any
// version stored.
func (s *Store) SetConfig(ctx context.Context, c Config) (stored Config, changed bool, err error) {
	if c.YAML == "" {
		return Config{}, false, fmt.Errorf("set config %s: %w", c.Source, argErr("yaml", "empty; use DeleteConfig to remove a configuration"))
	}
	c.Hash = s.ConfigHash(c.YAML)
	labels, err := json.Marshal(nonNilMap(c.Labels))
	if err != nil {
		return Config{}, false, fmt.Errorf("set config %s: encode labels: %w", c.Source, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Config{}, false, fmt.Errorf("set config %s: begin: %w", c.Source, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	old, err := s.getConfig(ctx, tx, c.Source)
	switch {
	case err == nil && old.Hash == c.Hash:
		return old, false, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Config{}, false, fmt.Errorf("set config %s: %w", c.Source, err)
	}
	var maxVersion int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM configs`).Scan(&maxVersion); err != nil {
		return Config{}, false, fmt.Errorf("set config %s: read versions: %w", c.Source, err)
	}
	c.Version = uint64(maxVersion) + 1
	c.UpdateTime = s.now().UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO configs (source, agent_id, labels, yaml, hash, version, update_time, updated_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET yaml = excluded.yaml, hash = excluded.hash, version = excluded.version,
			update_time = excluded.update_time, updated_by = excluded.updated_by`,
		c.Source, c.AgentID, string(labels), s.sealConfig(c.Source, c.YAML), c.Hash, int64(c.Version), c.UpdateTime.UnixNano(), c.UpdatedBy); err != nil {
		return Config{}, false, fmt.Errorf("set config %s: %w", c.Source, err)
	}
	if err := tx.Commit(); err != nil {
		return Config{}, false, fmt.Errorf("set config %s: commit: %w", c.Source, err)
	}
	return c, true, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const configColumns = `source, agent_id, labels, yaml, hash, version, update_time, updated_by`

func (s *Store) scanConfig(scan func(...any) error) (Config, error) {
	var (
		c       Config
		labels  string
		version int64
		updated int64
	)
	if err := scan(&c.Source, &c.AgentID, &labels, &c.YAML, &c.Hash, &version, &updated, &c.UpdatedBy); err != nil {
		return Config{}, err
	}
	if err := json.Unmarshal([]byte(labels), &c.Labels); err != nil {
		return Config{}, fmt.Errorf("decode labels of %s: %w", c.Source, err)
	}
	c.Version, c.UpdateTime = uint64(version), time.Unix(0, updated).UTC()
	doc, err := s.openConfig(c.Source, c.YAML)
	if err != nil {
		return Config{}, err
	}
	c.YAML = doc
	return c, nil
}

func (s *Store) getConfig(ctx context.Context, q querier, source string) (Config, error) {
	c, err := s.scanConfig(q.QueryRowContext(ctx, `SELECT `+configColumns+` FROM configs WHERE source = ?`, source).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Config{}, ErrNotFound
	}
	return c, err
}

// GetConfig returns the configuration stored for source.
func (s *Store) GetConfig(ctx context.Context, source string) (Config, error) {
	c, err := s.getConfig(ctx, s.db, source)
	if err != nil {
		return Config{}, fmt.Errorf("get config %s: %w", source, err)
	}
	return c, nil
}

// ListConfigs returns every stored configuration by source.
func (s *Store) ListConfigs(ctx context.Context) ([]Config, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+configColumns+` FROM configs ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	defer rows.Close()
	var out []Config
	for rows.Next() {
		c, err := s.scanConfig(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list configs: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	return out, nil
}

// DeleteConfig removes the configuration of source.
func (s *Store) DeleteConfig(ctx context.Context, source string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM configs WHERE source = ?`, source)
	if err != nil {
		return fmt.Errorf("delete config %s: %w", source, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete config %s: %w", source, ErrNotFound)
	}
	return nil
}

// DesiredConfig returns the configuration an agent should run: its own,
// else the label group it matches with the most labels (ties: the smallest
// source). ok is false when none applies.
func (s *Store) DesiredConfig(ctx context.Context, agentID string, labels map[string]string) (c Config, ok bool, err error) {
	all, err := s.ListConfigs(ctx)
	if err != nil {
		return Config{}, false, fmt.Errorf("desired config of %s: %w", agentID, err)
	}
	c, ok = Resolve(all, agentID, labels)
	return c, ok, nil
}

// Resolve picks an agent's configuration from all (sorted by source) by
// the rule of DesiredConfig.
func Resolve(all []Config, agentID string, labels map[string]string) (Config, bool) {
	best, found := Config{}, false
	for _, c := range all {
		if c.AgentID != "" {
			if c.AgentID == agentID {
				return c, true
			}
			continue
		}
		match := true
		for k, v := range c.Labels {
			if got, has := labels[k]; !has || got != v {
				match = false
				break
			}
		}
		if match && (!found || len(c.Labels) > len(best.Labels)) {
			best, found = c, true
		}
	}
	return best, found
}

// ConfigApplied records an agent's ACK: it runs hash at version and polls
// targets; any earlier NACK is cleared.
func (s *Store) ConfigApplied(ctx context.Context, agentID, hash string, version uint64, targets []Target) error {
	if err := validateTargets("config_status.targets", targets); err != nil {
		return fmt.Errorf("record config ack of %s: %w", agentID, err)
	}
	if targets == nil {
		targets = []Target{}
	}
	tj, err := json.Marshal(targets)
	if err != nil {
		return fmt.Errorf("record config ack of %s: encode targets: %w", agentID, err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET applied_config_hash = ?, applied_config_version = ?, targets = ?,
		config_error = '', config_error_hash = '', last_seen = ? WHERE id = ?`,
		hash, clampInt64(version), string(tj), s.now().UnixNano(), agentID); err != nil {
		return fmt.Errorf("record config ack of %s: %w", agentID, err)
	}
	return nil
}

// ConfigRejected records an agent's NACK of hash with its reason.
func (s *Store) ConfigRejected(ctx context.Context, agentID, hash, reason string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE agents SET config_error = ?, config_error_hash = ?, last_seen = ? WHERE id = ?`,
		reason, hash, s.now().UnixNano(), agentID); err != nil {
		return fmt.Errorf("record config nack of %s: %w", agentID, err)
	}
	return nil
}
