package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"
	"github.com/netaiops/netaiops/collector/snmp/profile"
)

// savedConfigFile, under agent.data_dir, holds the last controller
// configuration the agent applied, so that it starts with it when the
// controller is away. It holds SNMP secrets: mode 0600.
const savedConfigFile = "controller-config.json"

// savedConfig is a controller configuration as the agent keeps it.
type savedConfig struct {
	Version uint64 `json:"version"`
	Hash    string `json:"hash"`
	Source  string `json:"source"`
	YAML    string `json:"yaml"`
}

// current is the configuration the agent runs: the local file merged with
// the controller's configuration (hash "" when none).
type current struct {
	cfg     *config.Config
	targets []target
	byName  map[string]target
	byAddr  map[netip.Addr]string // target names by IP address, for trap senders
	hash    string
	version uint64
}

// applyOp asks the goroutine that owns the running targets to switch to
// next; done is closed once it did.
type applyOp struct {
	next *current
	done chan struct{}
}

// targetsOf turns a configuration's targets into poll schedules. Targets
// with the same profiles share one compiled plan; an unknown profile or a
// bad profile file is an error.
func (a *Agent) targetsOf(cfg *config.Config) ([]target, error) {
	var out []target
	for _, t := range cfg.Targets {
		plan, err := a.plan(cfg.Profiles.Files, cfg.EffectiveProfiles(t))
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		ct := collector.Target{Name: t.Name, Address: t.Address, Version: t.Version}
		interval := t.Interval
		if interval <= 0 {
			interval = cfg.SNMP.Interval
		}
		timeout := t.Timeout
		if timeout <= 0 {
			timeout = cfg.SNMP.Timeout
		}
		out = append(out, target{
			opts: snmp.Options{
				Target:         ct,
				Community:      string(t.Community),
				Timeout:        timeout,
				Retries:        t.EffectiveRetries(cfg.SNMP),
				MaxRepetitions: cfg.SNMP.MaxRepetitions,
				USM: snmp.USM{SecurityLevel: t.SecurityLevel, Username: t.Username,
					AuthProtocol: t.AuthProtocol, AuthPassword: string(t.AuthPassword),
					PrivProtocol: t.PrivProtocol, PrivPassword: string(t.PrivPassword), Context: t.Context},
				Plan:          plan,
				MaxOIDsPerGet: cfg.SNMP.MaxOIDsPerRequest,
				MaxWalks:      cfg.SNMP.MaxWalksPerDevice,
			},
			interval: interval,
			offset:   spread(t.Name, interval),
		})
	}
	return out, nil
}

// CheckProfiles reports what config cannot check, being a leaf: that the
// profile files load and every profile a target names exists. New fails on
// the same errors; --check-config calls it to say so before a start.
func CheckProfiles(cfg *config.Config) error {
	a := &Agent{plans: map[string]*snmp.Plan{}}
	_, err := a.targetsOf(cfg)
	return err
}

// plan returns the compiled plan of the named profiles, with user profiles
// from files. Plans are cached by files and names: a running target whose
// profiles did not change keeps its plan (and the poller its counter
// state) across pushes. A changed profile file takes effect at restart.
func (a *Agent) plan(files, names []string) (*snmp.Plan, error) {
	key := strings.Join(files, "\x00") + "\x01" + strings.Join(names, "\x00")
	a.plansMu.Lock()
	defer a.plansMu.Unlock()
	if p := a.plans[key]; p != nil {
		return p, nil
	}
	user, err := profile.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	p, err := snmp.PlanFor(names, user)
	if err != nil {
		return nil, err
	}
	a.plans[key] = p
	return p, nil
}

func (a *Agent) newCurrent(cfg *config.Config, hash string, version uint64) (*current, error) {
	targets, err := a.targetsOf(cfg)
	if err != nil {
		return nil, err
	}
	c := &current{cfg: cfg, targets: targets, byName: map[string]target{}, byAddr: map[netip.Addr]string{}, hash: hash, version: version}
	for _, t := range c.targets {
		c.byName[t.opts.Target.Name] = t
		host, _, err := net.SplitHostPort(t.opts.Target.Address)
		if err != nil {
			host = t.opts.Target.Address
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			c.byAddr[ip.Unmap()] = t.opts.Target.Name
		}
	}
	return c, nil
}

// nameSender names a trap's device after the running configuration: the
// receiver matches senders to the targets the agent started with, so a
// target pushed since arrives by address, and one removed since by its old
// name, which the engine must not bring back (nothing would resolve its
// issues). Host names are matched by the receiver only, resolved at start.
func (c *current) nameSender(ev collector.Event) collector.Event {
	if _, ok := c.byName[ev.Device]; ok && ev.Attrs["unknown_source"] != "true" {
		return ev
	}
	host, _, err := net.SplitHostPort(ev.Attrs["source"])
	if err != nil {
		return ev
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ev
	}
	ip = ip.Unmap()
	if name, ok := c.byAddr[ip]; ok {
		ev.Device = name
		delete(ev.Attrs, "unknown_source")
	} else {
		ev.Device = ip.String()
		ev.Attrs["unknown_source"] = "true"
	}
	return ev
}

// startConfig returns what the agent starts with: the local file merged
// with the saved controller configuration, or the local file alone when
// there is none or it no longer applies (then the controller pushes again).
// It fails only when the local file's own targets cannot be polled (an
// unknown profile, a bad profile file).
func (a *Agent) startConfig() (*current, error) {
	path := filepath.Join(a.cfg.Agent.DataDir, savedConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return a.newCurrent(a.cfg, "", 0)
	}
	var sc savedConfig
	if err == nil {
		err = json.Unmarshal(data, &sc)
	}
	if err != nil {
		a.log.Warn("ignoring the saved controller configuration", "path", path, "err", err)
		return a.newCurrent(a.cfg, "", 0)
	}
	merged, _, err := a.cfg.WithRemote([]byte(sc.YAML), remoteName(sc.Source, sc.Version))
	var cur *current
	if err == nil {
		cur, err = a.newCurrent(merged, sc.Hash, sc.Version)
	}
	if err != nil {
		a.log.Warn("ignoring the saved controller configuration: it does not apply to this file", "path", path, "err", err)
		return a.newCurrent(a.cfg, "", 0)
	}
	a.log.Info("starting with the saved controller configuration", "source", sc.Source, "version", sc.Version, "hash", sc.Hash)
	return cur, nil
}

func remoteName(source string, version uint64) string {
	return fmt.Sprintf("controller config %s v%d", source, version)
}

// save writes the controller configuration atomically (temp file, fsync,
// rename); an empty hash removes it.
func (a *Agent) save(rc uplink.RemoteConfig) error {
	dir := a.cfg.Agent.DataDir
	path := filepath.Join(dir, savedConfigFile)
	if rc.Hash == "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove saved config: %w", err)
		}
		return nil
	}
	data, err := json.Marshal(savedConfig{Version: rc.Version, Hash: rc.Hash, Source: rc.Source, YAML: rc.YAML})
	if err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := writeFileAtomic(dir, savedConfigFile, data); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// writeFileAtomic replaces dir/name with data (temp file, fsync, rename),
// mode 0600, creating dir (0700) when missing.
func writeFileAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// State implements uplink.Handler: what a hello reports.
func (a *Agent) State() uplink.State {
	c := a.cur.Load()
	st := uplink.State{ConfigHash: c.hash, ConfigVersion: c.version}
	for _, t := range c.targets {
		st.Targets = append(st.Targets, t.opts.Target)
	}
	return st
}

// ApplyConfig implements uplink.Handler: it validates the pushed
// configuration against the local file (an error is the NACK, and nothing
// changes), saves it, and hands it to the goroutine that owns the running
// targets. Targets whose settings did not change keep running, with their
// detection state.
func (a *Agent) ApplyConfig(ctx context.Context, rc uplink.RemoteConfig) error {
	merged, ignored, err := a.cfg.WithRemote([]byte(rc.YAML), remoteName(rc.Source, rc.Version))
	if err != nil {
		return err
	}
	if len(ignored) > 0 {
		a.log.Info("controller configuration sets pinned sections: the local file's are kept", "pinned", ignored, "source", rc.Source)
	}
	if merged.SNMP.MaxConcurrency != a.cfg.SNMP.MaxConcurrency || merged.SNMP.UnreachableAfter != a.cfg.SNMP.UnreachableAfter {
		a.log.Info("snmp.max_concurrency and snmp.unreachable_after from the controller take effect at the next start")
	}
	next, err := a.newCurrent(merged, rc.Hash, rc.Version)
	if err != nil {
		return fmt.Errorf("apply config: %w", err)
	}
	if err := a.save(rc); err != nil {
		return err
	}
	op := applyOp{next: next, done: make(chan struct{})}
	select {
	case a.ops <- op:
	case <-ctx.Done():
		return fmt.Errorf("apply config: %w", ctx.Err())
	}
	select {
	case <-op.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("apply config: %w", ctx.Err())
	}
}

// Poll implements uplink.Handler: one poll of a target now, for a
// controller command. It bypasses detection: a debugging poll must not
// change the issues.
func (a *Agent) Poll(ctx context.Context, name string) (collector.Poll, error) {
	t, ok := a.cur.Load().byName[name]
	if !ok {
		return collector.Poll{}, fmt.Errorf("poll %s: %w", name, uplink.ErrUnknownTarget)
	}
	return a.poller.Poll(ctx, t.opts), nil
}

// runningTarget is one target's schedule goroutine.
type runningTarget struct {
	t      target
	cancel context.CancelFunc
	done   chan struct{}
}

// manageTargets owns the set of running schedules: it starts the current
// targets, then applies each configuration change by stopping removed and
// changed targets (removed ones are forgotten by the engine, resolving
// their issues) and starting added and changed ones. It returns when ctx
// ends, after every schedule ended.
func (a *Agent) manageTargets(ctx context.Context, sem chan struct{}, polls chan<- collector.Poll) {
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[string]*runningTarget{}
	start := func(t target, at time.Time) {
		tctx, cancel := context.WithCancel(ctx)
		r := &runningTarget{t: t, cancel: cancel, done: make(chan struct{})}
		running[t.opts.Target.Name] = r
		wg.Go(func() {
			defer close(r.done)
			a.schedule(tctx, t, at, sem, polls)
		})
	}
	stop := func(r *runningTarget) {
		r.cancel()
		<-r.done
	}
	now := time.Now()
	for _, t := range a.cur.Load().targets {
		start(t, now)
	}
	for {
		select {
		case <-ctx.Done():
			for _, r := range running {
				r.cancel()
			}
			return
		case op := <-a.ops:
			now := time.Now()
			var added, changed, removed int
			for name, r := range running {
				if _, keep := op.next.byName[name]; !keep {
					stop(r)
					delete(running, name)
					removed++
					if f, ok := a.poller.(interface{ Forget(snmp.Options) }); ok {
						f.Forget(r.t.opts) // its engine id, keys and counter state
					}
					select {
					case a.forget <- name:
					case <-ctx.Done():
					}
				}
			}
			for _, t := range op.next.targets {
				r, ok := running[t.opts.Target.Name]
				switch {
				case !ok:
					added++
				case reflect.DeepEqual(r.t, t):
					continue
				default:
					stop(r)
					changed++
				}
				start(t, now)
			}
			a.cur.Store(op.next)
			close(op.done)
			a.log.Info("configuration applied", "hash", op.next.hash, "version", op.next.version,
				"targets", len(op.next.targets), "added", added, "changed", changed, "removed", removed)
		}
	}
}
