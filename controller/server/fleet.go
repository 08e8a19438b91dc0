package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/netaiops/netaiops/controller/auth"
	"github.com/netaiops/netaiops/controller/store"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// configSections are the top-level keys a controller configuration may
// set; the rest of the agent's file (identity, controller address,
// credentials, data_dir) stays the agent's own.
var configSections = map[string]bool{"snmp": true, "targets": true}

// redactedValue replaces secrets in answers, as the agent's config.Secret does.
const redactedValue = "<secret>"

// isSecretKey reports whether a configuration key holds a secret: SNMP
// communities, v3 passwords and keys, tokens. A key ending in _file
// (community_file, auth_password_file) names a file on the agent's host
// that holds the secret: the name is shown.
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

// checkConfigYAML checks what the controller can of a configuration
// document: size, YAML syntax, a mapping of allowed sections. The agent
// validates the rest and NACKs what it cannot apply.
func checkConfigYAML(doc string) (*yaml.Node, error) {
	if doc == "" {
		return nil, &store.ArgError{Field: "yaml", Reason: "empty; use DeleteConfig to remove a configuration"}
	}
	if len(doc) > MaxConfigBytes {
		return nil, &store.ArgError{Field: "yaml", Reason: fmt.Sprintf("%d bytes, more than %d", len(doc), MaxConfigBytes)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		return nil, &store.ArgError{Field: "yaml", Reason: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	n := &root
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, &store.ArgError{Field: "yaml", Reason: "want a mapping with keys snmp, targets"}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i].Value; !configSections[k] {
			return nil, &store.ArgError{Field: "yaml", Reason: fmt.Sprintf("line %d: %s: not settable by the controller (allowed: snmp, targets)", n.Content[i].Line, k)}
		}
	}
	return &root, nil
}

// redactYAML returns doc with the value of every secret key replaced by
// "<secret>". A document that does not parse is withheld whole.
func redactYAML(doc string) string {
	if doc == "" {
		return ""
	}
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		return "# withheld: not valid YAML\n"
	}
	redactNode(&root)
	out, err := yaml.Marshal(&root)
	if err != nil {
		return "# withheld: cannot render\n"
	}
	return string(out)
}

func redactNode(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if isSecretKey(n.Content[i].Value) {
				v := n.Content[i+1]
				*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: redactedValue, Line: v.Line, Column: v.Column}
				continue
			}
			redactNode(n.Content[i+1])
		}
		return
	}
	for _, c := range n.Content {
		redactNode(c)
	}
}

func configToProto(c store.Config) *netaiopsv1.AgentConfig {
	sel := &netaiopsv1.ConfigSelector{AgentId: c.AgentID}
	if c.AgentID == "" {
		sel.Labels = c.Labels
	}
	return &netaiopsv1.AgentConfig{
		Selector:   sel,
		Yaml:       redactYAML(c.YAML),
		Version:    c.Version,
		Hash:       c.Hash,
		Source:     c.Source,
		UpdateTime: toTimestamp(c.UpdateTime),
		UpdatedBy:  c.UpdatedBy,
	}
}

func sourceOf(sel *netaiopsv1.ConfigSelector) (string, error) {
	src, err := store.ConfigSource(sel.GetAgentId(), sel.GetLabels())
	if err != nil {
		return "", status.Error(codes.InvalidArgument, err.Error())
	}
	return src, nil
}

func (f *fleetService) SetConfig(ctx context.Context, req *netaiopsv1.SetConfigRequest) (*netaiopsv1.SetConfigResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	src, err := sourceOf(req.GetSelector())
	if err != nil {
		return nil, err
	}
	if _, err := checkConfigYAML(req.GetYaml()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	by := p.Name
	if p.Kind == auth.KindAnonymous {
		by = "anonymous"
	}
	c, changed, err := f.s.store.SetConfig(ctx, store.Config{Source: src, AgentID: req.GetSelector().GetAgentId(),
		Labels: req.GetSelector().GetLabels(), YAML: req.GetYaml(), UpdatedBy: by})
	if err != nil {
		return nil, f.s.toStatus("set config", err)
	}
	if changed {
		f.s.logger.Info("configuration set", "source", src, "version", c.Version, "hash", c.Hash, "by", by)
		f.s.notifyConfig()
	}
	return &netaiopsv1.SetConfigResponse{Config: configToProto(c)}, nil
}

func (f *fleetService) GetConfig(ctx context.Context, req *netaiopsv1.GetConfigRequest) (*netaiopsv1.GetConfigResponse, error) {
	src, err := sourceOf(req.GetSelector())
	if err != nil {
		return nil, err
	}
	c, err := f.s.store.GetConfig(ctx, src)
	if err != nil {
		return nil, f.s.toStatus("get config", err)
	}
	return &netaiopsv1.GetConfigResponse{Config: configToProto(c)}, nil
}

func (f *fleetService) ListConfigs(ctx context.Context, _ *netaiopsv1.ListConfigsRequest) (*netaiopsv1.ListConfigsResponse, error) {
	all, err := f.s.store.ListConfigs(ctx)
	if err != nil {
		return nil, f.s.toStatus("list configs", err)
	}
	resp := &netaiopsv1.ListConfigsResponse{Configs: make([]*netaiopsv1.AgentConfig, 0, len(all))}
	for _, c := range all {
		resp.Configs = append(resp.Configs, configToProto(c))
	}
	return resp, nil
}

func (f *fleetService) DeleteConfig(ctx context.Context, req *netaiopsv1.DeleteConfigRequest) (*netaiopsv1.DeleteConfigResponse, error) {
	src, err := sourceOf(req.GetSelector())
	if err != nil {
		return nil, err
	}
	if err := f.s.store.DeleteConfig(ctx, src); err != nil {
		return nil, f.s.toStatus("delete config", err)
	}
	f.s.logger.Info("configuration deleted", "source", src)
	f.s.notifyConfig()
	return &netaiopsv1.DeleteConfigResponse{}, nil
}

// pendingCommand is a command sent to an agent and not yet answered.
type pendingCommand struct {
	agentID string
	result  chan *netaiopsv1.CommandResult // capacity 1
}

// commandResult hands an agent's answer to the waiting PollTarget. A late
// answer (the caller gave up) or one from another agent is dropped.
func (s *Server) commandResult(log *slog.Logger, agentID string, r *netaiopsv1.CommandResult) {
	s.cmdMu.Lock()
	p := s.pending[r.GetId()]
	if p != nil && p.agentID == agentID {
		delete(s.pending, r.GetId())
	} else {
		p = nil
	}
	s.cmdMu.Unlock()
	if p == nil {
		log.Debug("dropping a command result nobody waits for", "command", r.GetId())
		return
	}
	p.result <- r
}

func (f *fleetService) PollTarget(ctx context.Context, req *netaiopsv1.PollTargetRequest) (*netaiopsv1.PollTargetResponse, error) {
	s := f.s
	switch {
	case req.GetAgentId() == "":
		return nil, status.Error(codes.InvalidArgument, "agent_id: required")
	case req.GetTarget() == "":
		return nil, status.Error(codes.InvalidArgument, "target: required")
	}
	timeout := DefaultCommandTimeout
	if d := req.GetTimeout(); d != nil {
		if timeout = d.AsDuration(); timeout <= 0 || timeout > MaxCommandTimeout {
			return nil, status.Errorf(codes.InvalidArgument, "timeout: %s is outside (0, %s]", timeout, MaxCommandTimeout)
		}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	st := s.stream(req.GetAgentId())
	if st == nil {
		return nil, status.Errorf(codes.Unavailable, "agent %q is not connected", req.GetAgentId())
	}

	p := &pendingCommand{agentID: req.GetAgentId(), result: make(chan *netaiopsv1.CommandResult, 1)}
	s.cmdMu.Lock()
	s.nextCmd++
	id := s.nextCmd
	s.pending[id] = p
	s.cmdMu.Unlock()
	defer func() {
		s.cmdMu.Lock()
		delete(s.pending, id)
		s.cmdMu.Unlock()
	}()

	cmd := &netaiopsv1.Command{Id: id, Timeout: durationpb.New(timeout),
		Command: &netaiopsv1.Command_Poll{Poll: &netaiopsv1.PollCommand{Target: req.GetTarget()}}}
	if !st.out.command(cmd) {
		return nil, status.Errorf(codes.ResourceExhausted, "agent %q has %d commands queued; retry later", req.GetAgentId(), cap(st.out.commands))
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-p.result:
		if c := codes.Code(r.GetCode()); c != codes.OK {
			return nil, status.Errorf(c, "agent %s: %s", req.GetAgentId(), r.GetMessage())
		}
		return &netaiopsv1.PollTargetResponse{Result: r.GetPoll()}, nil
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "agent %q did not answer within %s", req.GetAgentId(), timeout)
	case <-st.done:
		return nil, status.Errorf(codes.Unavailable, "agent %q disconnected before answering", req.GetAgentId())
	case <-s.shutdown:
		return nil, status.Error(codes.Unavailable, "controller shutting down")
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}
