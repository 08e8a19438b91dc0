package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// agentView is an agent as -o json and -o yaml print it.
type agentView struct {
	ID                   string            `json:"id"`
	Connected            bool              `json:"connected"`
	Version              string            `json:"version"`
	Hostname             string            `json:"hostname"`
	LastSeen             *time.Time        `json:"last_seen,omitempty"`
	Labels               map[string]string `json:"labels,omitempty"`
	Targets              []string          `json:"targets,omitempty"`
	PendingEvents        uint64            `json:"pending_events"`
	DroppedEvents        uint64            `json:"dropped_events"`
	DesiredConfigSource  string            `json:"desired_config_source,omitempty"`
	DesiredConfigVersion uint64            `json:"desired_config_version,omitempty"`
	DesiredConfigHash    string            `json:"desired_config_hash,omitempty"`
	AppliedConfigVersion uint64            `json:"applied_config_version,omitempty"`
	AppliedConfigHash    string            `json:"applied_config_hash,omitempty"`
	ConfigError          string            `json:"config_error,omitempty"`
}

// configState says in a few words how an agent's configuration stands.
func configState(ag *netaiopsv1.Agent) (string, string) {
	switch {
	case ag.GetConfigError() != "" && ag.GetConfigErrorHash() == ag.GetDesiredConfigHash():
		return "NACK: " + ag.GetConfigError(), colRed
	case ag.GetDesiredConfigHash() == "" && ag.GetAppliedConfigHash() == "":
		return "local file", ""
	case ag.GetDesiredConfigHash() == ag.GetAppliedConfigHash():
		return fmt.Sprintf("v%d applied", ag.GetAppliedConfigVersion()), colGreen
	case ag.GetDesiredConfigHash() == "":
		return fmt.Sprintf("v%d applied; none stored now", ag.GetAppliedConfigVersion()), colYellow
	}
	return fmt.Sprintf("v%d pending", ag.GetDesiredConfigVersion()), colYellow
}

func (a *app) agentsList(args []string) error {
	fs := a.newFlagSet("agents list")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("agents list", rest); err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	all, err := a.listAgents(c, "list agents")
	if err != nil {
		return err
	}
	views := make([]agentView, 0, len(all))
	for _, ag := range all {
		v := agentView{ID: ag.GetId(), Connected: ag.GetConnected(), Version: ag.GetVersion(), Hostname: ag.GetHostname(),
			LastSeen: tsPtr(ag.GetLastSeen()), Labels: ag.GetLabels(), PendingEvents: ag.GetPendingEvents(), DroppedEvents: ag.GetDroppedEvents(),
			DesiredConfigSource: ag.GetDesiredConfigSource(), DesiredConfigVersion: ag.GetDesiredConfigVersion(), DesiredConfigHash: ag.GetDesiredConfigHash(),
			AppliedConfigVersion: ag.GetAppliedConfigVersion(), AppliedConfigHash: ag.GetAppliedConfigHash(), ConfigError: ag.GetConfigError()}
		for _, t := range ag.GetTargets() {
			v.Targets = append(v.Targets, t.GetName())
		}
		views = append(views, v)
	}
	if done, err := a.emit(views); done {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(a.stderr, "no agents")
		return nil
	}
	now := time.Now()
	rows := make([][]cell, 0, len(all))
	for _, ag := range all {
		conn, connCol := "no", colRed
		if ag.GetConnected() {
			conn, connCol = "yes", colGreen
		}
		cfg, cfgCol := configState(ag)
		rows = append(rows, []cell{{text: ag.GetId()}, {text: conn, color: connCol}, {text: ag.GetVersion()},
			{text: ago(tsTime(ag.GetLastSeen()), now)}, {text: strconv.Itoa(len(ag.GetTargets()))},
			{text: labelString(ag.GetLabels())}, {text: cfg, color: cfgCol}})
	}
	a.table([]string{"AGENT", "CONNECTED", "VERSION", "LAST SEEN", "TARGETS", "LABELS", "CONFIG"}, rows)
	return nil
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// labelFlags collects repeated --label k=v.
type labelFlags map[string]string

func (l labelFlags) String() string { return labelString(l) }
func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	if _, dup := l[k]; dup {
		return fmt.Errorf("label %s given twice", k)
	}
	l[k] = val
	return nil
}

// selectorFlags registers --agent and --label on fs.
func selectorFlags(fs *flag.FlagSet) (*string, labelFlags) {
	agent := fs.String("agent", "", "agent id")
	labels := labelFlags{}
	fs.Var(labels, "label", "label key=value of a label group (repeatable)")
	return agent, labels
}

func selector(cmd, agent string, labels labelFlags) (*netaiopsv1.ConfigSelector, error) {
	switch {
	case agent != "" && len(labels) > 0:
		return nil, usageErr(cmd + ": --agent and --label: choose one")
	case agent == "" && len(labels) == 0:
		return nil, usageErr(cmd + ": want --agent ID or --label key=value")
	}
	return &netaiopsv1.ConfigSelector{AgentId: agent, Labels: labels}, nil
}

// configView is a stored configuration as -o json and -o yaml print it.
type configView struct {
	Source     string            `json:"source"`
	AgentID    string            `json:"agent_id,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Version    uint64            `json:"version"`
	Hash       string            `json:"hash"`
	UpdateTime *time.Time        `json:"update_time,omitempty"`
	UpdatedBy  string            `json:"updated_by,omitempty"`
	YAML       string            `json:"yaml"`
}

func toConfigView(c *netaiopsv1.AgentConfig) configView {
	return configView{Source: c.GetSource(), AgentID: c.GetSelector().GetAgentId(), Labels: c.GetSelector().GetLabels(),
		Version: c.GetVersion(), Hash: c.GetHash(), UpdateTime: tsPtr(c.GetUpdateTime()), UpdatedBy: c.GetUpdatedBy(), YAML: c.GetYaml()}
}

func (a *app) configList(args []string) error {
	fs := a.newFlagSet("config list")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("config list", rest); err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.fleet.ListConfigs(ctx, &netaiopsv1.ListConfigsRequest{})
	cancel()
	if err != nil {
		return a.callErr("list configs", err)
	}
	views := make([]configView, 0, len(resp.GetConfigs()))
	rows := make([][]cell, 0, len(resp.GetConfigs()))
	now := time.Now()
	for _, cfg := range resp.GetConfigs() {
		views = append(views, toConfigView(cfg))
		rows = append(rows, []cell{{text: cfg.GetSource()}, {text: strconv.FormatUint(cfg.GetVersion(), 10)},
			{text: ago(tsTime(cfg.GetUpdateTime()), now)}, {text: cfg.GetUpdatedBy()}, {text: shortHash(cfg.GetHash())}})
	}
	if done, err := a.emit(views); done {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stderr, "no configurations stored")
		return nil
	}
	a.table([]string{"SOURCE", "VERSION", "UPDATED", "BY", "HASH"}, rows)
	return nil
}

// selectorCommand parses a command that takes only selector flags (config
// get, config delete) and connects.
func (a *app) selectorCommand(name string, args []string) (*netaiopsv1.ConfigSelector, *clients, error) {
	fs := a.newFlagSet(name)
	agent, labels := selectorFlags(fs)
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return nil, nil, err
	}
	if err := noArgs(name, rest); err != nil {
		return nil, nil, err
	}
	sel, err := selector(name, *agent, labels)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.connect()
	if err != nil {
		return nil, nil, err
	}
	return sel, c, nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func (a *app) configGet(args []string) error {
	sel, c, err := a.selectorCommand("config get", args)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.fleet.GetConfig(ctx, &netaiopsv1.GetConfigRequest{Selector: sel})
	cancel()
	if err != nil {
		return a.callErr("get config", err)
	}
	cfg := resp.GetConfig()
	if done, err := a.emit(toConfigView(cfg)); done {
		return err
	}
	fmt.Fprintf(a.stdout, "# %s version %d, set %s by %s, hash %s\n", cfg.GetSource(), cfg.GetVersion(),
		ago(tsTime(cfg.GetUpdateTime()), time.Now()), cfg.GetUpdatedBy(), shortHash(cfg.GetHash()))
	fmt.Fprint(a.stdout, cfg.GetYaml())
	return nil
}

// readConfigFile reads the YAML file of config set and config diff.
func readConfigFile(cmd string, args []string) (string, error) {
	path, err := oneArg(cmd, "a YAML FILE (snmp, targets)", args)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageErr(fmt.Sprintf("%s: %v", cmd, err))
	}
	return string(b), nil
}

func (a *app) configSet(args []string) error {
	fs := a.newFlagSet("config set")
	agent, labels := selectorFlags(fs)
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	sel, err := selector("config set", *agent, labels)
	if err != nil {
		return err
	}
	doc, err := readConfigFile("config set", rest)
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.fleet.SetConfig(ctx, &netaiopsv1.SetConfigRequest{Selector: sel, Yaml: doc})
	cancel()
	if err != nil {
		return a.callErr("set config", err)
	}
	cfg := resp.GetConfig()
	if done, err := a.emit(toConfigView(cfg)); done {
		return err
	}
	fmt.Fprintf(a.stdout, "%s: version %d stored (hash %s); connected agents it applies to get it now\n",
		cfg.GetSource(), cfg.GetVersion(), shortHash(cfg.GetHash()))
	return nil
}

func (a *app) configDelete(args []string) error {
	sel, c, err := a.selectorCommand("config delete", args)
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	_, err = c.fleet.DeleteConfig(ctx, &netaiopsv1.DeleteConfigRequest{Selector: sel})
	cancel()
	if err != nil {
		return a.callErr("delete config", err)
	}
	if done, err := a.emit(map[string]any{"deleted": true, "agent_id": sel.GetAgentId(), "labels": sel.GetLabels()}); done {
		return err
	}
	fmt.Fprintln(a.stdout, "configuration deleted")
	return nil
}

// configDiff prints the unified diff from the stored configuration to a
// file. Both sides are normalised as the controller stores answers:
// re-encoded YAML with secrets shown as "<secret>" (the controller never
// returns them), so only a change of a secret is invisible.
func (a *app) configDiff(args []string) error {
	fs := a.newFlagSet("config diff")
	agent, labels := selectorFlags(fs)
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	sel, err := selector("config diff", *agent, labels)
	if err != nil {
		return err
	}
	doc, err := readConfigFile("config diff", rest)
	if err != nil {
		return err
	}
	local, err := normalizeYAML(doc)
	if err != nil {
		return fmt.Errorf("config diff: %s: %w", rest[0], err)
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.fleet.GetConfig(ctx, &netaiopsv1.GetConfigRequest{Selector: sel})
	cancel()
	stored, label := "", "(none stored)"
	switch {
	case err == nil:
		stored, label = resp.GetConfig().GetYaml(), fmt.Sprintf("%s version %d", resp.GetConfig().GetSource(), resp.GetConfig().GetVersion())
		if n, nerr := normalizeYAML(stored); nerr == nil {
			stored = n
		}
	case status.Code(err) == codes.NotFound:
	default:
		return a.callErr("get config", err)
	}
	d := unifiedDiff("stored: "+label, "file: "+rest[0], stored, local)
	if done, err := a.emit(map[string]any{"stored": label, "file": rest[0], "equal": d == "", "diff": d}); done {
		return err
	}
	if d == "" {
		fmt.Fprintln(a.stderr, "no differences")
		return nil
	}
	for _, line := range strings.SplitAfter(d, "\n") {
		col := ""
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
			col = colBold
		case strings.HasPrefix(line, "+"):
			col = colGreen
		case strings.HasPrefix(line, "-"):
			col = colRed
		case strings.HasPrefix(line, "@@"):
			col = colBlue
		}
		if col != "" && a.color {
			fmt.Fprint(a.stdout, a.paint(strings.TrimSuffix(line, "\n"), col)+"\n")
		} else {
			fmt.Fprint(a.stdout, line)
		}
	}
	return nil
}

// normalizeYAML re-encodes doc with secrets redacted, as the controller
// answers.
func normalizeYAML(doc string) (string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		return "", fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(root.Content) == 0 {
		return "", nil
	}
	redact(&root)
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// isSecretKey follows the controller's rule for what it redacts.
func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	if strings.HasSuffix(k, "_file") {
		return false
	}
	for _, s := range []string{"community", "password", "secret", "token", "passphrase"} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return strings.HasSuffix(k, "_key")
}

func redact(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if isSecretKey(n.Content[i].Value) {
				v := n.Content[i+1]
				*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "<secret>", Line: v.Line, Column: v.Column}
				continue
			}
			redact(n.Content[i+1])
		}
		return
	}
	for _, c := range n.Content {
		redact(c)
	}
}

// pollView is a poll result as -o json and -o yaml print it.
type pollView struct {
	Agent    string       `json:"agent"`
	Target   string       `json:"target"`
	Time     *time.Time   `json:"time,omitempty"`
	Duration string       `json:"duration,omitempty"`
	Error    string       `json:"error,omitempty"`
	Samples  []sampleView `json:"samples"`
}

type sampleView struct {
	Metric string            `json:"metric"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
	Kind   string            `json:"kind"`
}

// pollFailed is a poll the agent ran and the device did not answer: exit 1.
type pollFailed struct{ target, reason string }

func (e *pollFailed) Error() string { return "poll " + e.target + ": " + e.reason }

func (a *app) poll(args []string) error {
	fs := a.newFlagSet("poll")
	agent := fs.String("agent", "", "agent that polls the target (required)")
	wait := fs.Duration("wait", 10*time.Second, "how long the controller waits for the agent (at most 60s)")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	target, err := oneArg("poll", "a TARGET name", rest)
	if err != nil {
		return err
	}
	if *agent == "" {
		return usageErr("poll: want --agent ID (the agent that polls " + target + ")")
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	if a.g.timeout < *wait+2*time.Second && !a.g.setFlags["timeout"] {
		a.g.timeout = *wait + 2*time.Second
	}
	ctx, cancel := a.callCtx()
	resp, err := c.fleet.PollTarget(ctx, &netaiopsv1.PollTargetRequest{AgentId: *agent, Target: target, Timeout: durationpb.New(*wait)})
	cancel()
	if err != nil {
		return a.callErr(fmt.Sprintf("poll %s via agent %s", target, *agent), err)
	}
	r := resp.GetResult()
	v := pollView{Agent: *agent, Target: r.GetTarget(), Time: tsPtr(r.GetTime()), Error: r.GetError(), Samples: []sampleView{}}
	if r.GetDuration() != nil {
		v.Duration = r.GetDuration().AsDuration().Round(100 * time.Microsecond).String()
	}
	for _, s := range r.GetSamples() {
		v.Samples = append(v.Samples, sampleView{Metric: s.GetMetric(), Labels: s.GetLabels(), Value: s.GetValue(), Kind: s.GetKind()})
	}
	done, err := a.emit(v)
	if err != nil {
		return err
	}
	if !done {
		if r.GetError() == "" {
			fmt.Fprintf(a.stdout, "%s polled by %s in %s: %d samples\n", r.GetTarget(), *agent, v.Duration, len(v.Samples))
			rows := make([][]cell, 0, len(v.Samples))
			for _, s := range v.Samples {
				rows = append(rows, []cell{{text: s.Metric}, {text: labelString(s.Labels)},
					{text: strconv.FormatFloat(s.Value, 'f', -1, 64)}, {text: s.Kind}})
			}
			if len(rows) > 0 {
				a.table([]string{"METRIC", "LABELS", "VALUE", "KIND"}, rows)
			}
		}
	}
	if r.GetError() != "" {
		return &pollFailed{target: target, reason: r.GetError()}
	}
	return nil
}
