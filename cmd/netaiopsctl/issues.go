package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// issueView is an issue as -o json and -o yaml print it: stable names.
type issueView struct {
	ID             string            `json:"id"`
	AgentID        string            `json:"agent_id"`
	Device         string            `json:"device"`
	Kind           string            `json:"kind"`
	Severity       string            `json:"severity"`
	State          string            `json:"state"`
	Summary        string            `json:"summary"`
	Object         string            `json:"object,omitempty"`
	Fingerprint    string            `json:"fingerprint,omitempty"`
	CausedBy       string            `json:"caused_by,omitempty"`
	FirstSeen      *time.Time        `json:"first_seen,omitempty"`
	LastSeen       *time.Time        `json:"last_seen,omitempty"`
	ResolvedAt     *time.Time        `json:"resolved_at,omitempty"`
	Acknowledged   bool              `json:"acknowledged"`
	AcknowledgedBy string            `json:"acknowledged_by,omitempty"`
	AcknowledgedAt *time.Time        `json:"acknowledged_at,omitempty"`
	AckComment     string            `json:"acknowledged_comment,omitempty"`
	UpdateTime     *time.Time        `json:"update_time,omitempty"`
	Attributes     map[string]string `json:"attributes,omitempty"`
}

// eventView is one event of an issue's timeline.
type eventView struct {
	Seq      uint64     `json:"seq"`
	Type     string     `json:"type"`
	Time     *time.Time `json:"time,omitempty"`
	Severity string     `json:"severity"`
	State    string     `json:"state"`
	Summary  string     `json:"summary"`
	// Attributes are the evidence the agent sent with this change.
	Attributes map[string]string `json:"attributes,omitempty"`
}

// changeView is one line of issues watch.
type changeView struct {
	Position uint64    `json:"position"`
	Type     string    `json:"type"`
	Issue    issueView `json:"issue"`
}

func tsPtr(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime().UTC()
	return &t
}

func tsTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func severityName(s netaiopsv1.Severity) string {
	if s == netaiopsv1.Severity_SEVERITY_UNSPECIFIED {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_"))
}

func stateName(s netaiopsv1.IssueState) string {
	if s == netaiopsv1.IssueState_ISSUE_STATE_UNSPECIFIED {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "ISSUE_STATE_"))
}

func eventTypeName(t netaiopsv1.IssueEventType) string {
	if t == netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UNSPECIFIED {
		return "unspecified"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ISSUE_EVENT_TYPE_"))
}

func severityColor(s netaiopsv1.Severity) string {
	switch s {
	case netaiopsv1.Severity_SEVERITY_CRITICAL:
		return colRed + ";" + colBold
	case netaiopsv1.Severity_SEVERITY_MAJOR:
		return colRed
	case netaiopsv1.Severity_SEVERITY_WARNING:
		return colYellow
	case netaiopsv1.Severity_SEVERITY_INFO:
		return colBlue
	}
	return ""
}

func toIssueView(is *netaiopsv1.Issue) issueView {
	return issueView{
		ID: is.GetId(), AgentID: is.GetAgentId(), Device: is.GetDevice(), Kind: is.GetKind(),
		Severity: severityName(is.GetSeverity()), State: stateName(is.GetState()), Summary: is.GetSummary(),
		Object: is.GetObject(), Fingerprint: is.GetFingerprint(), CausedBy: is.GetCausedBy(),
		FirstSeen: tsPtr(is.GetFirstSeen()), LastSeen: tsPtr(is.GetLastSeen()), ResolvedAt: tsPtr(is.GetResolvedAt()),
		Acknowledged: is.GetAcknowledged(), AcknowledgedBy: is.GetAcknowledgedBy(), AcknowledgedAt: tsPtr(is.GetAcknowledgedAt()),
		AckComment: is.GetAcknowledgedComment(), UpdateTime: tsPtr(is.GetUpdateTime()), Attributes: is.GetAttributes(),
	}
}

// issueFilter holds the filter flags of issues list and issues watch.
type issueFilter struct {
	state, kind, severity, agent, device string
	labels                               matcherFlags
}

// register adds the filter flags to fs; state defaults to defState.
func (f *issueFilter) register(fs *flag.FlagSet, defState string) {
	fs.StringVar(&f.state, "state", defState, "open, resolved or all")
	fs.StringVar(&f.kind, "kind", "", "issue kind, e.g. interface_down")
	fs.StringVar(&f.severity, "severity", "", "info, warning, major or critical")
	fs.StringVar(&f.agent, "agent", "", "agent id")
	fs.StringVar(&f.device, "device", "", "device (target) name")
	fs.Var(&f.labels, "label", "agent label matcher: name=value, name!=value, name=~re, name!~re (repeatable)")
}

func parseState(s string) (netaiopsv1.IssueState, error) {
	switch s {
	case "", "all":
		return netaiopsv1.IssueState_ISSUE_STATE_UNSPECIFIED, nil
	case "open":
		return netaiopsv1.IssueState_ISSUE_STATE_OPEN, nil
	case "resolved":
		return netaiopsv1.IssueState_ISSUE_STATE_RESOLVED, nil
	}
	return 0, usageErr(fmt.Sprintf("--state %s: want open, resolved or all", s))
}

func parseSeverity(s string) (netaiopsv1.Severity, error) {
	if s == "" {
		return netaiopsv1.Severity_SEVERITY_UNSPECIFIED, nil
	}
	v, ok := netaiopsv1.Severity_value["SEVERITY_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, usageErr(fmt.Sprintf("--severity %s: want info, warning, major or critical", s))
	}
	return netaiopsv1.Severity(v), nil
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usageErr(fmt.Sprintf("%s: unexpected argument %q", cmd, args[0]))
	}
	return nil
}

// enums parses the state and severity filters.
func (f issueFilter) enums() (netaiopsv1.IssueState, netaiopsv1.Severity, error) {
	state, err := parseState(f.state)
	if err != nil {
		return 0, 0, err
	}
	sev, err := parseSeverity(f.severity)
	return state, sev, err
}

func (a *app) issuesList(args []string) error {
	var f issueFilter
	fs := a.newFlagSet("issues list")
	f.register(fs, "open")
	pageSize := fs.Int("page-size", 500, "issues per call")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("issues list", rest); err != nil {
		return err
	}
	state, sev, err := f.enums()
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	all, err := allPages(func(token string) ([]*netaiopsv1.Issue, string, error) {
		ctx, cancel := a.callCtx()
		defer cancel()
		resp, err := c.issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{State: state, Kind: f.kind, Severity: sev,
			AgentId: f.agent, Device: f.device, PageSize: int32(*pageSize), PageToken: token})
		if err != nil {
			return nil, "", a.callErr("list issues", err)
		}
		return resp.GetIssues(), resp.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	if labels := f.labels; len(labels) > 0 {
		agents, err := a.agentLabels(c)
		if err != nil {
			return err
		}
		kept := all[:0]
		for _, is := range all {
			if labels.matchAll(agents[is.GetAgentId()]) {
				kept = append(kept, is)
			}
		}
		all = kept
	}
	// Most severe first; within a severity the newest first.
	slices.SortStableFunc(all, func(x, y *netaiopsv1.Issue) int {
		if c := cmp.Compare(y.GetSeverity(), x.GetSeverity()); c != 0 {
			return c
		}
		if c := tsTime(y.GetFirstSeen()).Compare(tsTime(x.GetFirstSeen())); c != 0 {
			return c
		}
		return cmp.Compare(x.GetId(), y.GetId())
	})
	views := make([]issueView, len(all))
	for i, is := range all {
		views[i] = toIssueView(is)
	}
	if done, err := a.emit(views); done {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(a.stderr, "no issues match")
		return nil
	}
	now := time.Now()
	rows := make([][]cell, 0, len(all))
	for _, is := range all {
		ack, ackCol := "", ""
		if is.GetAcknowledged() {
			ack, ackCol = "ack", colGreen
		}
		stCol := ""
		if is.GetState() == netaiopsv1.IssueState_ISSUE_STATE_RESOLVED {
			stCol = colDim
		}
		rows = append(rows, []cell{
			{text: severityName(is.GetSeverity()), color: severityColor(is.GetSeverity())},
			{text: stateName(is.GetState()), color: stCol},
			{text: ack, color: ackCol},
			{text: ago(tsTime(is.GetFirstSeen()), now)},
			{text: is.GetKind()},
			{text: is.GetDevice()},
			{text: is.GetAgentId()},
			{text: is.GetId(), color: colDim},
			{text: is.GetSummary()},
		})
	}
	a.table([]string{"SEVERITY", "STATE", "ACK", "AGE", "KIND", "DEVICE", "AGENT", "ID", "SUMMARY"}, rows)
	return nil
}

// oneArg returns the single positional argument of cmd.
func oneArg(cmd, what string, args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", usageErr(fmt.Sprintf("%s: want %s", cmd, what))
	case len(args) > 1:
		return "", usageErr(fmt.Sprintf("%s: unexpected argument %q", cmd, args[1]))
	}
	return args[0], nil
}

func (a *app) issuesGet(args []string) error {
	fs := a.newFlagSet("issues get")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	id, err := oneArg("issues get", "an issue ID", rest)
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.issues.GetIssue(ctx, &netaiopsv1.GetIssueRequest{Id: id})
	cancel()
	if err != nil {
		return a.callErr("get issue "+id, err)
	}
	is := resp.GetIssue()
	events, err := allPages(func(token string) ([]*netaiopsv1.IssueEvent, string, error) {
		ctx, cancel := a.callCtx()
		defer cancel()
		er, err := c.issues.ListIssueEvents(ctx, &netaiopsv1.ListIssueEventsRequest{IssueId: id, PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, "", a.callErr("list events of issue "+id, err)
		}
		return er.GetEvents(), er.GetNextPageToken(), nil
	})
	if err != nil {
		return err
	}
	out := struct {
		Issue  issueView   `json:"issue"`
		Events []eventView `json:"events"`
	}{Issue: toIssueView(is), Events: make([]eventView, 0, len(events))}
	for _, e := range events {
		out.Events = append(out.Events, eventView{Seq: e.GetSeq(), Type: eventTypeName(e.GetType()), Time: tsPtr(e.GetTime()),
			Severity: severityName(e.GetIssue().GetSeverity()), State: stateName(e.GetIssue().GetState()),
			Summary: e.GetIssue().GetSummary(), Attributes: e.GetIssue().GetAttributes()})
	}
	if done, err := a.emit(out); done {
		return err
	}
	now := time.Now()
	w := a.stdout
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-14s %s\n", k+":", v)
		}
	}
	when := func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return ""
		}
		return fmt.Sprintf("%s (%s)", ago(ts.AsTime(), now), ts.AsTime().UTC().Format(time.RFC3339))
	}
	field("Issue", is.GetId())
	field("Summary", is.GetSummary())
	field("Severity", a.paint(severityName(is.GetSeverity()), severityColor(is.GetSeverity())))
	field("State", stateName(is.GetState()))
	field("Kind", is.GetKind())
	field("Device", is.GetDevice())
	field("Object", is.GetObject())
	field("Agent", is.GetAgentId())
	field("Fingerprint", is.GetFingerprint())
	field("Caused by", is.GetCausedBy())
	field("First seen", when(is.GetFirstSeen()))
	field("Last seen", when(is.GetLastSeen()))
	field("Resolved", when(is.GetResolvedAt()))
	if is.GetAcknowledged() {
		field("Acknowledged", fmt.Sprintf("by %s %s", is.GetAcknowledgedBy(), when(is.GetAcknowledgedAt())))
		field("Comment", is.GetAcknowledgedComment())
	}
	if attrs := is.GetAttributes(); len(attrs) > 0 {
		fmt.Fprintln(w, "\nEvidence:")
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		wk := 0
		for _, k := range keys {
			wk = max(wk, len(k))
		}
		for _, k := range keys {
			fmt.Fprintf(w, "  %-*s  %s\n", wk, k, attrs[k])
		}
	}
	fmt.Fprintln(w, "\nTimeline:")
	rows := make([][]cell, 0, len(events)+1)
	for _, e := range events {
		ei := e.GetIssue()
		rows = append(rows, []cell{
			{text: tsTime(e.GetTime()).UTC().Format(time.RFC3339)},
			{text: ago(tsTime(e.GetTime()), now)},
			{text: strconv.FormatUint(e.GetSeq(), 10)},
			{text: eventTypeName(e.GetType())},
			{text: severityName(ei.GetSeverity()), color: severityColor(ei.GetSeverity())},
			{text: stateName(ei.GetState())},
			{text: ei.GetSummary()},
		})
	}
	if is.GetAcknowledged() {
		at := tsTime(is.GetAcknowledgedAt())
		rows = append(rows, []cell{{text: at.UTC().Format(time.RFC3339)}, {text: ago(at, now)}, {text: "-"},
			{text: "acknowledged", color: colGreen}, {text: ""}, {text: ""}, {text: ackText(is)}})
		slices.SortStableFunc(rows, func(x, y []cell) int { return cmp.Compare(x[0].text, y[0].text) })
	}
	a.table([]string{"TIME", "AGE", "SEQ", "EVENT", "SEVERITY", "STATE", "SUMMARY"}, rows)
	return nil
}

func ackText(is *netaiopsv1.Issue) string {
	s := "by " + is.GetAcknowledgedBy()
	if c := is.GetAcknowledgedComment(); c != "" {
		s += ": " + c
	}
	return s
}

func (a *app) issuesAck(args []string) error {
	fs := a.newFlagSet("issues ack")
	by := fs.String("by", "", "who acknowledges when the controller runs without tokens (default $USER); with a token, the token's name")
	comment := fs.String("comment", "", "why, or what is being done (kept with the acknowledgement)")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	id, err := oneArg("issues ack", "an issue ID", rest)
	if err != nil {
		return err
	}
	if *by == "" {
		*by = a.getenv("USER")
	}
	if *by == "" {
		*by = "netaiopsctl"
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	ctx, cancel := a.callCtx()
	resp, err := c.issues.AcknowledgeIssue(ctx, &netaiopsv1.AcknowledgeIssueRequest{Id: id, By: *by, Comment: *comment})
	cancel()
	if err != nil {
		return a.callErr("acknowledge issue "+id, err)
	}
	is := resp.GetIssue()
	if done, err := a.emit(toIssueView(is)); done {
		return err
	}
	line := fmt.Sprintf("issue %s acknowledged by %s %s", is.GetId(), is.GetAcknowledgedBy(), ago(tsTime(is.GetAcknowledgedAt()), time.Now()))
	if c := is.GetAcknowledgedComment(); c != "" {
		line += ": " + c
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}

// Watch reconnection backoff: jittered, capped, reset by a stream that
// delivered its headers.
const (
	watchBackoffMin = 250 * time.Millisecond
	watchBackoffMax = 10 * time.Second
)

func (a *app) issuesWatch(args []string) error {
	var f issueFilter
	fs := a.newFlagSet("issues watch")
	f.register(fs, "all")
	resume := fs.Uint64("resume-after", 0, "start after this change position (0: from now)")
	rest, err := a.parse(fs, args, false)
	if err != nil {
		return err
	}
	if err := noArgs("issues watch", rest); err != nil {
		return err
	}
	state, sev, err := f.enums()
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	defer c.conn.Close()
	req := &netaiopsv1.WatchIssuesRequest{State: state, Kind: f.kind, Severity: sev, AgentId: f.agent, Device: f.device, ResumeAfter: *resume}
	w := &watchLabels{a: a, c: c, matchers: f.labels}
	if len(f.labels) > 0 {
		if w.agents, err = a.agentLabels(c); err != nil {
			return err
		}
	}
	backoff := watchBackoffMin
	everConnected := false
	for {
		pos, connected, err := a.watchOnce(c, req, w)
		if pos > req.ResumeAfter {
			req.ResumeAfter = pos
		}
		if a.ctx.Err() != nil {
			return nil // Ctrl-C: a clean end
		}
		if connected {
			backoff, everConnected = watchBackoffMin, true
		}
		if !everConnected {
			// A watch that never started (wrong address, TLS, token) is
			// an error to report, not to retry.
			return a.callErr("watch issues", err)
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Aborted:
			// The stream broke or the controller ended it: resume after
			// the last position it sent.
		default:
			return a.callErr("watch issues", err)
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		fmt.Fprintf(a.stderr, "netaiopsctl: watch interrupted (%s: %s); reconnecting to resume after position %d in %s\n",
			status.Code(err), status.Convert(err).Message(), req.ResumeAfter, wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, watchBackoffMax)
	}
}

// watchOnce runs one WatchIssues stream until it ends; it returns the
// position to resume after (0: none learned) and whether the stream got as
// far as its headers.
func (a *app) watchOnce(c *clients, req *netaiopsv1.WatchIssuesRequest, w *watchLabels) (pos uint64, connected bool, err error) {
	stream, err := c.issues.WatchIssues(a.ctx, req)
	if err != nil {
		return 0, false, err
	}
	md, err := stream.Header()
	if err != nil {
		return 0, false, err
	}
	if v := md.Get("netaiops-watch-position"); len(v) > 0 {
		pos, _ = strconv.ParseUint(v[0], 10, 64)
		connected = true
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			if p := trailerPos(stream); p > pos {
				pos = p
			}
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "the controller ended the watch")
			}
			return pos, connected, err
		}
		connected = true
		pos = max(pos, m.GetPosition())
		if !w.match(m.GetIssue().GetAgentId()) {
			continue
		}
		if err := a.printChange(m, time.Now()); err != nil {
			return pos, connected, status.Error(codes.Canceled, err.Error())
		}
	}
}

// watchLabels filters watched changes by their agent's labels; an agent
// not seen before (it connected after the watch began) makes it read the
// agents again, at most once per agent id.
type watchLabels struct {
	a        *app
	c        *clients
	matchers matcherFlags
	agents   map[string]map[string]string
	reread   map[string]bool
}

func (w *watchLabels) match(agentID string) bool {
	if len(w.matchers) == 0 {
		return true
	}
	if _, ok := w.agents[agentID]; !ok && !w.reread[agentID] {
		if w.reread == nil {
			w.reread = map[string]bool{}
		}
		w.reread[agentID] = true
		if agents, err := w.a.agentLabels(w.c); err == nil {
			w.agents = agents
		} else {
			fmt.Fprintf(w.a.stderr, "netaiopsctl: %v\n", err)
		}
	}
	return w.matchers.matchAll(w.agents[agentID])
}

func trailerPos(stream grpc.ClientStream) uint64 {
	var md metadata.MD = stream.Trailer()
	if v := md.Get("netaiops-resume-after"); len(v) > 0 {
		p, _ := strconv.ParseUint(v[0], 10, 64)
		return p
	}
	return 0
}

// printChange writes one watch line: a table-like line, or one JSON object
// (JSON lines), or one YAML document.
func (a *app) printChange(m *netaiopsv1.WatchIssuesResponse, now time.Time) error {
	v := changeView{Position: m.GetPosition(), Type: eventTypeName(m.GetType()), Issue: toIssueView(m.GetIssue())}
	switch a.g.output {
	case "json":
		b, err := jsonLine(v)
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(b)
		return err
	case "yaml":
		if _, err := io.WriteString(a.stdout, "---\n"); err != nil {
			return err
		}
		return writeYAML(a.stdout, v)
	}
	is := m.GetIssue()
	typ := eventTypeName(m.GetType())
	if m.GetType() == netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_UPDATED && is.GetAcknowledged() &&
		is.GetUpdateTime() != nil && is.GetAcknowledgedAt() != nil && is.GetUpdateTime().AsTime().Equal(is.GetAcknowledgedAt().AsTime()) {
		typ = "acked"
	}
	typCol := ""
	switch m.GetType() {
	case netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED:
		typCol = colRed
	case netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_RESOLVED:
		typCol = colGreen
	}
	summary := is.GetSummary()
	if typ == "acked" {
		typCol = colGreen
		summary += " (acknowledged " + ackText(is) + ")"
	}
	_, err := fmt.Fprintf(a.stdout, "%s  %s  %s  %s  %s  %s  %s\n", now.Format("15:04:05"),
		a.paint(fmt.Sprintf("%-8s", typ), typCol),
		a.paint(fmt.Sprintf("%-8s", severityName(is.GetSeverity())), severityColor(is.GetSeverity())),
		is.GetKind(), is.GetDevice(), is.GetId(), summary)
	return err
}
