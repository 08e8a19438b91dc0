// Package agent owns the edge agent's lifecycle: it polls every configured
// target on its own schedule with bounded concurrency, feeds the polls to the
// one goroutine that owns the detection engine, queues the resulting issue
// changes in the outbox and runs the uplink that streams them to the
// controller. Polling goes on while the controller is away; the outbox keeps
// what was not yet acked. Flow capture points (flows.go) feed the same
// engine with their intervals, with or without SNMP targets.
package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netaiops/netaiops/agent/config"
	"github.com/netaiops/netaiops/agent/detect"
	detectoptions "github.com/netaiops/netaiops/agent/detect/options"
	"github.com/netaiops/netaiops/agent/outbox"
	"github.com/netaiops/netaiops/agent/uplink"
	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp"
	"github.com/netaiops/netaiops/collector/snmp/trap"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the agent's software version, set at build time with
// -ldflags "-X github.com/netaiops/netaiops/agent.Version=...".
var Version = "dev"

// Poller polls one device. *snmp.Poller is the real one.
type Poller interface {
	Poll(ctx context.Context, o snmp.Options) collector.Poll
}

// Option changes how New builds an Agent.
type Option func(*options)

type options struct {
	poller        Poller
	outboxSize    int
	uplink        func(*uplink.Config)
	registry      *prometheus.Registry
	metricsListen string
}

// WithPoller replaces the SNMP poller.
func WithPoller(p Poller) Option { return func(o *options) { o.poller = p } }

// WithOutboxSize bounds the outbox (default outbox.DefaultMaxEntries).
func WithOutboxSize(n int) Option { return func(o *options) { o.outboxSize = n } }

// WithRegistry registers the agent's and the collectors' metrics with reg
// (default: a registry of the agent's own), the one served at /metrics.
func WithRegistry(reg *prometheus.Registry) Option { return func(o *options) { o.registry = reg } }

// WithMetricsListen serves the registry at http://addr/metrics while Run
// runs; "" or "off" (the default) serves nothing. When addr cannot be bound
// New logs the error and the agent runs without /metrics.
func WithMetricsListen(addr string) Option { return func(o *options) { o.metricsListen = addr } }

// WithUplinkConfig lets the caller adjust the uplink's config (backoff,
// window) after New filled it from the agent's config.
func WithUplinkConfig(f func(*uplink.Config)) Option { return func(o *options) { o.uplink = f } }

// trapQueue bounds the trap events waiting for the detection engine.
const trapQueue = 1024

// target is one device and how to poll it.
type target struct {
	opts     snmp.Options
	interval time.Duration
	offset   time.Duration // first poll's delay after start
}

// Stats is a snapshot of the agent's counters.
type Stats struct {
	Polls      uint64 // polls done
	PollErrors uint64 // polls that failed (device unreachable, timeout, ...)
	Skipped    uint64 // polls not started because the previous one was still running when due
	Changes    uint64 // issue changes detected
	Pending    int    // changes awaiting the controller's ack
	Dropped    uint64 // changes dropped because the outbox was full
	TrapEvents uint64 // trap events fed to the detection engine
	Uplink     uplink.Stats
	Detect     detect.Stats // as of the last poll or event the engine observed
}

// Agent is a configured edge agent. Run it once.
type Agent struct {
	cfg    *config.Config
	log    *slog.Logger
	poller Poller
	engine *detect.Engine
	ob     *outbox.Outbox
	up     *uplink.Uplink
	flows  agentFlows // flow capture (flows.go)
	// traps is the trap receiver, nil when the config has no traps key.
	traps *trap.Receiver
	// snmpMetrics count skipped polls per target (the poller counts the rest).
	snmpMetrics *snmp.Metrics
	gatherer    prometheus.Gatherer
	metricsLn   net.Listener // nil: /metrics off
	// plans caches compiled profile plans by profile files and names, so
	// that targets with the same profiles share one, across pushes too.
	plansMu sync.Mutex
	plans   map[string]*snmp.Plan

	// cur is the configuration running now; ops carries pushed ones to
	// manageTargets, forget removed devices to the engine's goroutine.
	cur    atomic.Pointer[current]
	ops    chan applyOp
	forget chan string
	// openReq asks the detection goroutine for the open-issue set
	// (issuestate.go); restored holds the resolutions of restored issues
	// of devices no longer watched, queued when Run starts.
	openReq  chan chan uplink.OpenSet
	restored []detect.Change

	polls      atomic.Uint64
	pollErrors atomic.Uint64
	skipped    atomic.Uint64
	changes    atomic.Uint64
	trapEvents atomic.Uint64
	// detectStats is the engine's Stats, published by its goroutine.
	detectStats atomic.Pointer[detect.Stats]
}

// New builds an agent from a loaded (defaulted, validated) config.
func New(cfg *config.Config, logger *slog.Logger, opts ...Option) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("create agent: config is nil")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg := o.registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	sm, err := snmp.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
	}
	if o.poller == nil {
		o.poller = snmp.NewPoller(logger.With("component", "snmp"), snmp.WithMetrics(sm))
	}
	// The outbox lives on disk so that a restart or a crash loses no event
	// detected but not yet stored by the controller.
	ob, err := outbox.Open(filepath.Join(cfg.Agent.DataDir, "outbox"), outbox.Options{
		MaxEntries: o.outboxSize,
		MaxBytes:   int64(cfg.Agent.OutboxMaxBytes),
		AgentID:    cfg.Agent.ID,
		Logger:     logger.With("component", "outbox"),
	})
	if err != nil {
		return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
	}

	a := &Agent{
		cfg:         cfg,
		log:         logger,
		poller:      o.poller,
		engine:      detect.New(cfg.Agent.ID, detectoptions.FromConfig(cfg)),
		ob:          ob,
		snmpMetrics: sm,
		gatherer:    reg,
		plans:       map[string]*snmp.Plan{},
	}
	a.detectStats.Store(&detect.Stats{})
	// The targets come from the local file merged with the controller's
	// configuration (remote.go); pushes change them while running.
	cur, err := a.startConfig()
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
	}
	a.cur.Store(cur)
	a.ops = make(chan applyOp)
	a.forget = make(chan string)
	a.openReq = make(chan chan uplink.OpenSet)
	// The issues open when the agent last stopped (or crashed) continue.
	if a.restored, err = a.restoreIssues(cur, time.Now()); err != nil {
		ob.Close()
		return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
	}

	hostname, _ := os.Hostname()
	ucfg := uplink.Config{
		Address:    cfg.Controller.Address,
		Insecure:   cfg.Controller.Insecure,
		CAFile:     cfg.Controller.CAFile,
		CertFile:   cfg.Controller.CertFile,
		KeyFile:    cfg.Controller.KeyFile,
		ServerName: cfg.Controller.ServerName,
		Token:      string(cfg.Controller.Token),
		TokenFile:  cfg.Controller.TokenFile,
		AgentID:    cfg.Agent.ID,
		Version:    Version,
		Hostname:   hostname,
		Labels:     cfg.Agent.Labels,
		Handler:    a,
	}
	if o.uplink != nil {
		o.uplink(&ucfg)
	}
	a.up, err = uplink.New(ucfg, ob, logger.With("component", "uplink"))
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
	}
	if err := reg.Register(agentCollector{a}); err != nil {
		ob.Close()
		return nil, fmt.Errorf("create agent %s: register metrics: %w", cfg.Agent.ID, err)
	}
	if err := reg.Register(flowCollector{a}); err != nil {
		ob.Close()
		return nil, fmt.Errorf("create agent %s: register flow metrics: %w", cfg.Agent.ID, err)
	}
	// Sockets last: nothing after them can fail and leave them open. A
	// taken metrics port costs the metrics, not the polling.
	if a.metricsLn, err = listenMetrics(o.metricsListen); err != nil {
		logger.Error("cannot serve /metrics; running without", "err", err)
	}
	if cfg.Traps != nil {
		if a.traps, err = a.trapReceiver(cur); err == nil {
			err = trap.RegisterMetrics(reg, a.traps)
		}
		if err != nil {
			if a.traps != nil {
				closeReceiver(a.traps)
			}
			if a.metricsLn != nil {
				a.metricsLn.Close()
			}
			ob.Close()
			return nil, fmt.Errorf("create agent %s: %w", cfg.Agent.ID, err)
		}
	}
	return a, nil
}

// trapReceiver opens the trap socket of the config's traps section. Senders
// are matched to the targets of the starting configuration.
func (a *Agent) trapReceiver(cur *current) (*trap.Receiver, error) {
	tc := a.cfg.Traps
	rc := trap.Config{Listen: tc.Listen}
	for _, c := range tc.Communities {
		rc.Communities = append(rc.Communities, string(c))
	}
	for _, u := range tc.Users {
		rc.Users = append(rc.Users, snmp.USM{SecurityLevel: u.SecurityLevel, Username: u.Username,
			AuthProtocol: u.AuthProtocol, AuthPassword: string(u.AuthPassword),
			PrivProtocol: u.PrivProtocol, PrivPassword: string(u.PrivPassword)})
	}
	for _, t := range cur.targets {
		rc.Targets = append(rc.Targets, t.opts.Target)
	}
	return trap.New(rc, a.log.With("component", "traps"))
}

// TrapAddr returns the address the trap receiver listens on, or nil when
// the config has no traps section.
func (a *Agent) TrapAddr() net.Addr {
	if a.traps == nil {
		return nil
	}
	return a.traps.Addr()
}

// closeReceiver closes the socket of a receiver that will not run: Run
// with an ended context closes it and returns at once.
func closeReceiver(r *trap.Receiver) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = r.Run(ctx, nil)
}

// spread places a target's first poll within its interval by a hash of its
// name, so that targets do not all poll at once and a restart keeps each
// target's phase.
func spread(name string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(interval))
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	return Stats{
		Polls:      a.polls.Load(),
		PollErrors: a.pollErrors.Load(),
		Skipped:    a.skipped.Load(),
		Changes:    a.changes.Load(),
		Pending:    a.ob.Len(),
		Dropped:    a.ob.Dropped(),
		TrapEvents: a.trapEvents.Load(),
		Uplink:     a.up.Stats(),
		Detect:     *a.detectStats.Load(),
	}
}

// Run polls, detects and delivers until ctx ends; it returns nil then. It
// returns an error only when a part cannot run at all.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.log.Info("agent starting", "version", Version, "targets", len(a.cur.Load().targets),
		"controller", a.cfg.Controller.Address, "log_id", a.ob.LogID())

	// Polls go to the engine's goroutine. When it falls behind, pollers
	// wait here rather than drop a poll (a lost poll could hide or fake an
	// outage); the wait shows up as skipped polls of the next interval.
	polls := make(chan collector.Poll, max(len(a.cur.Load().targets), 1))

	var wg sync.WaitGroup
	var upErr error
	// Flow captures start before the detection goroutine, which reads
	// their queue (flows.go).
	a.startFlows(ctx, &wg)
	wg.Go(func() {
		if err := a.up.Run(ctx); err != nil {
			upErr = err
			cancel()
		}
	})
	// Trap events wait here for the engine's goroutine; when it falls
	// behind, the receiver drops them and counts (queue_full).
	var events chan collector.Event
	if a.traps != nil {
		events = make(chan collector.Event, trapQueue)
		wg.Go(func() {
			if err := a.traps.Run(ctx, events); err != nil {
				a.log.Error("trap receiver stopped", "err", err)
			}
		})
	}
	if a.metricsLn != nil {
		wg.Go(func() { a.serveMetrics(ctx) })
	}
	wg.Go(func() { a.detect(ctx, polls, events) })

	sem := make(chan struct{}, max(a.cfg.SNMP.MaxConcurrency, 1))
	wg.Go(func() { a.manageTargets(ctx, sem, polls) })
	wg.Wait()
	if upErr != nil {
		a.ob.Close()
		return fmt.Errorf("run agent %s: %w", a.cfg.Agent.ID, upErr)
	}
	a.log.Info("agent stopped", "pending", a.ob.Len(), "dropped", a.ob.Dropped())
	if err := a.ob.Close(); err != nil {
		return fmt.Errorf("run agent %s: %w", a.cfg.Agent.ID, err)
	}
	return nil
}

// schedule polls one target every interval from start+offset. A poll due
// while the previous one still runs (or waits for a concurrency slot) is
// skipped and counted, never queued.
func (a *Agent) schedule(ctx context.Context, t target, start time.Time, sem chan struct{}, polls chan<- collector.Poll) {
	log := a.log.With("device", t.opts.Target.Name)
	due := start.Add(t.offset)
	timer := time.NewTimer(time.Until(due))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		p := a.poller.Poll(ctx, t.opts)
		<-sem
		if ctx.Err() != nil {
			return // a poll cut short by shutdown says nothing about the device
		}
		a.polls.Add(1)
		if p.Err != nil {
			a.pollErrors.Add(1)
			log.Debug("poll failed", "err", p.Err)
		}
		select {
		case polls <- p:
		case <-ctx.Done():
			return
		}

		due = due.Add(t.interval)
		if now := time.Now(); !due.After(now) {
			missed := now.Sub(due)/t.interval + 1
			a.skipped.Add(uint64(missed))
			a.snmpMetrics.Skipped(t.opts.Target.Name, int(missed))
			due = due.Add(missed * t.interval)
			log.Warn("poll overran its interval; skipped polls", "skipped", int64(missed), "interval", t.interval, "duration", p.Duration)
		}
		timer.Reset(time.Until(due))
	}
}

// detect is the only goroutine that touches the engine. It saves the open
// issues (issuestate.go) after changes, at most every saveEvery, and at
// stop.
func (a *Agent) detect(ctx context.Context, polls <-chan collector.Poll, events <-chan collector.Event) {
	saveTick := time.NewTicker(saveEvery)
	defer saveTick.Stop()
	var lastSave time.Time
	dirty := len(a.restored) > 0
	save := func(now time.Time) {
		if err := saveOpenIssues(a.cfg.Agent.DataDir, a.cfg.Agent.ID, a.engine.OpenState(), now); err != nil {
			a.log.Error("save open issues; a restart may open them anew", "err", err)
		}
		lastSave, dirty = now, false
	}
	defer func() { save(time.Now()) }()
	a.queue(a.restored)
	a.restored = nil
	for {
		var changes []detect.Change
		select {
		case <-ctx.Done():
			return
		case p := <-polls:
			changes = a.engine.Observe(p)
		case m := <-a.flows.c:
			changes = a.observeFlows(m)
		case ev := <-events:
			a.trapEvents.Add(1)
			changes = a.engine.ObserveEvent(a.cur.Load().nameSender(ev))
		case name := <-a.forget:
			changes = a.engine.Forget(name, time.Now())
		case reply := <-a.openReq:
			reply <- a.openSet()
		case now := <-saveTick.C:
			if dirty || now.Sub(lastSave) >= resaveEvery {
				save(now)
			}
		}
		if st := a.engine.Stats(); st != *a.detectStats.Load() {
			a.detectStats.Store(&st)
		}
		if len(changes) == 0 {
			continue
		}
		a.queue(changes)
		if now := time.Now(); now.Sub(lastSave) >= saveEvery {
			save(now)
		} else {
			dirty = true
		}
	}
}

// queue logs changes and appends them to the outbox.
func (a *Agent) queue(changes []detect.Change) {
	if len(changes) == 0 {
		return
	}
	a.changes.Add(uint64(len(changes)))
	for _, c := range changes {
		a.log.Info("issue "+c.Type.String(), "kind", c.Issue.Kind, "device", c.Issue.Device,
			"object", c.Issue.Object, "severity", c.Issue.Severity.String(), "summary", c.Issue.Summary)
	}
	dropped := a.ob.Dropped()
	if _, err := uplink.Append(a.ob, changes...); err != nil {
		a.log.Error("queue issue changes for the controller", "err", err, "changes", len(changes))
		return
	}
	if d := a.ob.Dropped() - dropped; d > 0 {
		a.log.Warn("outbox full: dropped older issue changes", "dropped", d, "dropped_total", a.ob.Dropped())
	}
}
