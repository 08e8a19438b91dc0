package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	"github.com/netaiops/netaiops/agent/uplink"
)

// openIssuesFile, under agent.data_dir, holds the issues the agent had open
// when it last saved them (at most saveEvery after a change, and at stop),
// so that a restart, even kill -9, continues them (same ids) instead of
// opening them anew and leaving the old ones open at the controller.
const openIssuesFile = "open-issues.json"

// openIssuesVersion is the format of openIssuesFile. The file is the
// agent's own, independent of the engine's Go types, so that renaming a
// field of detect.Issue does not garble it across an upgrade.
const openIssuesVersion = 1

// saveEvery bounds how often the open issues are written while changes
// come: a burst of changes costs one write a second, not one per change.
const saveEvery = time.Second

// resaveEvery writes the open issues even without a returned change, for
// what changes silently (suppressed issues, evidence of held issues).
const resaveEvery = 30 * time.Second

type savedIssues struct {
	Version int          `json:"version"`
	AgentID string       `json:"agent_id"`
	SavedAt time.Time    `json:"saved_at"`
	Issues  []savedIssue `json:"issues"`
}

type savedIssue struct {
	ID          string            `json:"id"`
	Device      string            `json:"device"`
	Kind        string            `json:"kind"`
	Object      string            `json:"object,omitempty"`
	Fingerprint string            `json:"fingerprint"`
	Severity    int               `json:"severity"`
	Summary     string            `json:"summary,omitempty"`
	FirstSeen   time.Time         `json:"first_seen"`
	LastSeen    time.Time         `json:"last_seen"`
	Attributes  map[string]string `json:"attributes,omitempty"`
	CausedBy    string            `json:"caused_by,omitempty"`
	Held        bool              `json:"held,omitempty"`
}

// loadOpenIssues reads the saved open issues; none when there is no file.
// A file of another agent id or format is an error.
func loadOpenIssues(dir, agentID string) ([]detect.OpenIssue, error) {
	path := filepath.Join(dir, openIssuesFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read open issues: %w", err)
	}
	var s savedIssues
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read open issues %s: %w", path, err)
	}
	switch {
	case s.Version != openIssuesVersion:
		return nil, fmt.Errorf("read open issues %s: format version %d, this agent reads %d", path, s.Version, openIssuesVersion)
	case s.AgentID != agentID:
		return nil, fmt.Errorf("read open issues %s: saved by agent %q, this is agent %q", path, s.AgentID, agentID)
	}
	out := make([]detect.OpenIssue, 0, len(s.Issues))
	for _, is := range s.Issues {
		out = append(out, detect.OpenIssue{Held: is.Held, Issue: detect.Issue{
			ID: is.ID, Device: is.Device, Kind: is.Kind, Object: is.Object, Fingerprint: is.Fingerprint,
			Severity: detect.Severity(is.Severity), State: detect.StateOpen, Summary: is.Summary,
			FirstSeen: is.FirstSeen, LastSeen: is.LastSeen, Attributes: is.Attributes, CausedBy: is.CausedBy,
		}})
	}
	return out, nil
}

// saveOpenIssues writes the engine's open issues atomically.
func saveOpenIssues(dir, agentID string, issues []detect.OpenIssue, now time.Time) error {
	s := savedIssues{Version: openIssuesVersion, AgentID: agentID, SavedAt: now.UTC(), Issues: make([]savedIssue, 0, len(issues))}
	for _, oi := range issues {
		is := oi.Issue
		s.Issues = append(s.Issues, savedIssue{ID: is.ID, Device: is.Device, Kind: is.Kind, Object: is.Object,
			Fingerprint: is.Fingerprint, Severity: int(is.Severity), Summary: is.Summary, FirstSeen: is.FirstSeen,
			LastSeen: is.LastSeen, Attributes: is.Attributes, CausedBy: is.CausedBy, Held: oi.Held})
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("save open issues: %w", err)
	}
	if err := writeFileAtomic(dir, openIssuesFile, data); err != nil {
		return fmt.Errorf("save open issues: %w", err)
	}
	return nil
}

// restoreIssues loads the saved open issues into the engine at start and
// resolves those of devices the agent no longer watches (not a target nor
// a capture point of the starting configuration). It returns those
// resolutions, for the outbox.
func (a *Agent) restoreIssues(cur *current, now time.Time) ([]detect.Change, error) {
	issues, err := loadOpenIssues(a.cfg.Agent.DataDir, a.cfg.Agent.ID)
	if err != nil || len(issues) == 0 {
		return nil, err
	}
	a.engine.Restore(issues, now)
	known := map[string]bool{}
	for _, t := range cur.targets {
		known[t.opts.Target.Name] = true
	}
	if fc := a.cfg.Flows; fc != nil {
		for _, iface := range fc.Interfaces {
			known[FlowDevice(a.cfg.Agent.ID, iface)] = true
		}
		for _, file := range fc.PcapFiles {
			known[FlowDevice(a.cfg.Agent.ID, config.CaptureName(file))] = true
		}
	}
	var changes []detect.Change
	gone := map[string]bool{}
	for _, oi := range issues {
		if !known[oi.Device] && !gone[oi.Device] {
			gone[oi.Device] = true
			changes = append(changes, a.engine.Forget(oi.Device, now)...)
		}
	}
	a.log.Info("restored open issues", "restored", len(issues), "resolved_gone_devices", len(changes))
	return changes, nil
}

// OpenIssues implements uplink.OpenIssuesSource: the detection goroutine
// answers with the announced open issues and the outbox's last seq, taken
// together, so the set reflects exactly the events up to that seq.
func (a *Agent) OpenIssues(ctx context.Context) (uplink.OpenSet, error) {
	reply := make(chan uplink.OpenSet, 1)
	select {
	case a.openReq <- reply:
	case <-ctx.Done():
		return uplink.OpenSet{}, ctx.Err()
	}
	select {
	case set := <-reply:
		return set, nil
	case <-ctx.Done():
		return uplink.OpenSet{}, ctx.Err()
	}
}

// openSet runs on the detection goroutine.
func (a *Agent) openSet() uplink.OpenSet {
	set := uplink.OpenSet{AsOfSeq: a.ob.LastSeq()}
	for _, oi := range a.engine.OpenState() {
		if !oi.Held {
			set.Issues = append(set.Issues, uplink.OpenIssue{ID: oi.ID, Fingerprint: oi.Fingerprint})
		}
	}
	return set
}
