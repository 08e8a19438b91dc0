package uplink

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/netaiops/netaiops/collector"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Handler is the agent's side of what the controller asks for. The uplink
// calls State and ApplyConfig from its session goroutine (so they must not
// block for long) and Poll from at most MaxCommands goroutines at a time.
type Handler interface {
	// State is what a hello reports: the targets polled now and the
	// controller configuration applied.
	State() State
	// ApplyConfig validates and applies a pushed configuration. An error
	// is a NACK with its message; the agent keeps its last good config.
	ApplyConfig(ctx context.Context, c RemoteConfig) error
	// Poll polls one target now; ErrUnknownTarget when the agent has no
	// such target.
	Poll(ctx context.Context, target string) (collector.Poll, error)
}

// OpenIssuesSource is implemented by a Handler that tracks open issues: on
// every stream the uplink sends its set to the controller, which resolves
// the agent's issues the set does not hold (docs/stream.md).
type OpenIssuesSource interface {
	// OpenIssues returns the open issues that were announced to the
	// controller (not suppressed ones) and AsOfSeq, the outbox's highest
	// seq when the set was taken: the set reflects every event up to it.
	OpenIssues(ctx context.Context) (OpenSet, error)
}

// OpenSet is an agent's set of open issues as of an outbox seq.
type OpenSet struct {
	AsOfSeq uint64
	Issues  []OpenIssue
}

// OpenIssue names one open issue.
type OpenIssue struct {
	ID, Fingerprint string
}

// State is the agent's configuration as a hello reports it.
type State struct {
	Targets []collector.Target // names and addresses; never secrets
	// The controller configuration applied ("" and 0: the local file only).
	ConfigHash    string
	ConfigVersion uint64
}

// RemoteConfig is a configuration pushed by the controller.
type RemoteConfig struct {
	Version uint64
	Hash    string // "" with an empty YAML: run the local file only
	Source  string // "agent/<id>" or "labels/<k>=<v>,..."
	YAML    string
}

// ErrUnknownTarget is what Handler.Poll returns for a target it does not poll.
var ErrUnknownTarget = errors.New("unknown target")

// MaxCommands bounds the commands an agent runs at once; more are answered
// ResourceExhausted at once.
const MaxCommands = 4

// commandResult runs one command against h and builds the answer.
func commandResult(ctx context.Context, h Handler, c *netaiopsv1.Command) *netaiopsv1.CommandResult {
	r := &netaiopsv1.CommandResult{Id: c.GetId()}
	poll := c.GetPoll()
	switch {
	case h == nil:
		r.Code, r.Message = int32(codes.Unimplemented), "this agent runs no commands"
		return r
	case poll == nil:
		r.Code, r.Message = int32(codes.Unimplemented), "unknown command"
		return r
	}
	if d := c.GetTimeout().AsDuration(); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	p, err := h.Poll(ctx, poll.GetTarget())
	switch {
	case errors.Is(err, ErrUnknownTarget):
		r.Code, r.Message = int32(codes.NotFound), err.Error()
		return r
	case err != nil:
		r.Code, r.Message = int32(codes.Unavailable), err.Error()
		return r
	}
	r.Poll = pollToProto(poll.GetTarget(), p)
	return r
}

func pollToProto(target string, p collector.Poll) *netaiopsv1.PollResult {
	out := &netaiopsv1.PollResult{Target: target, Time: timeToProto(p.Time), Duration: durationpb.New(p.Duration)}
	if p.Err != nil {
		out.Error = p.Err.Error()
		return out
	}
	out.Samples = make([]*netaiopsv1.Sample, 0, len(p.Samples))
	for _, s := range p.Samples {
		ps := &netaiopsv1.Sample{Metric: s.Metric, Value: s.Value, Kind: s.Kind.String()}
		if len(s.Labels) > 0 {
			ps.Labels = make(map[string]string, len(s.Labels))
			for _, l := range s.Labels {
				ps.Labels[l.Name] = l.Value
			}
		}
		out.Samples = append(out.Samples, ps)
	}
	return out
}
