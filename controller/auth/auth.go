// Package auth decides who may call what on the controller. Agents prove
// their identity with a client certificate (mTLS: the agent id is the
// certificate's spiffe://netaiops/agent/<id> URI SAN, else its subject CN)
// or with a per-agent bearer token; operators with a bearer token that
// carries a role: viewer (read), operator (also acknowledge and poll) or
// admin (also change configuration). Tokens come from a tokens file. The
// package provides gRPC interceptors that check a method policy and put the
// caller's Principal in the request context; a missing or unknown token is
// Unauthenticated, a known caller without the right is PermissionDenied.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Role is what an operator may do; each role includes the ones below it.
type Role int

// Roles, least powerful first.
const (
	RoleNone     Role = iota
	RoleViewer        // read issues, agents and configs
	RoleOperator      // also acknowledge issues and run commands
	RoleAdmin         // also change configuration
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Kind says whether a caller is an agent or an operator.
type Kind int

// Kinds of callers.
const (
	KindAnonymous Kind = iota // authentication is off (plaintext lab mode without a tokens file)
	KindAgent
	KindOperator
)

// Principal is an authenticated caller.
type Principal struct {
	Kind Kind
	// Name is the agent id for agents, the operator's name for operators.
	Name string
	// Role is an operator's role; agents have none.
	Role Role
	// Via says how the caller proved who it is: "mtls", "token" or "none".
	Via string
}

// AgentURIPrefix starts the URI SAN that names an agent in its certificate.
const AgentURIPrefix = "spiffe://netaiops/agent/"

// AgentID returns the agent id a verified client certificate names: its
// spiffe://netaiops/agent/<id> URI SAN, else its subject common name.
func AgentID(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if id, ok := strings.CutPrefix(u.String(), AgentURIPrefix); ok && id != "" && !strings.Contains(id, "/") {
			return id, nil
		}
	}
	if cn := cert.Subject.CommonName; cn != "" {
		return cn, nil
	}
	return "", fmt.Errorf("client certificate %s names no agent: no %s<id> URI SAN and no common name", cert.SerialNumber, AgentURIPrefix)
}

// Tokens maps bearer tokens to principals. Only SHA-256 digests are kept.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	p      Principal
}

// MinTokenLen is the shortest plaintext token a tokens file may hold.
const MinTokenLen = 16

// LoadTokens reads a tokens file: one token a line as "ROLE NAME TOKEN",
// where ROLE is agent, viewer, operator or admin, NAME is the agent id (for
// agent) or the operator's name, and TOKEN is the token itself (at least
// 16 characters) or sha256:<hex digest of it>. Blank lines and lines
// starting with # are ignored.
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokens: %w", err)
	}
	return ParseTokens(data, path)
}

// ParseTokens parses the tokens file format of LoadTokens; filename is used
// in errors only.
func ParseTokens(data []byte, filename string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("tokens file %s:%d: %s", filename, line, fmt.Sprintf(format, args...))
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, bad("want \"ROLE NAME TOKEN\", got %d fields", len(f))
		}
		p := Principal{Kind: KindOperator, Name: f[1], Via: "token"}
		switch f[0] {
		case "agent":
			p.Kind = KindAgent
		case "viewer":
			p.Role = RoleViewer
		case "operator":
			p.Role = RoleOperator
		case "admin":
			p.Role = RoleAdmin
		default:
			return nil, bad("role %q: allowed: agent, viewer, operator, admin", f[0])
		}
		var e tokenEntry
		if hx, ok := strings.CutPrefix(f[2], "sha256:"); ok {
			b, err := hex.DecodeString(hx)
			if err != nil || len(b) != sha256.Size {
				return nil, bad("token: sha256: wants %d hex digits", 2*sha256.Size)
			}
			copy(e.digest[:], b)
		} else {
			if len(f[2]) < MinTokenLen {
				return nil, bad("token of %s %s: %d characters, want at least %d", f[0], f[1], len(f[2]), MinTokenLen)
			}
			e.digest = sha256.Sum256([]byte(f[2]))
		}
		if first, dup := seen[e.digest]; dup {
			return nil, bad("token already used on line %d", first)
		}
		seen[e.digest] = line
		e.p = p
		t.entries = append(t.entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", filename, err)
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Lookup returns the principal of a token. It compares digests in constant
// time and looks at every entry, so timing says nothing about the token.
func (t *Tokens) Lookup(token string) (Principal, bool) {
	if t == nil || token == "" {
		return Principal{}, false
	}
	d := sha256.Sum256([]byte(token))
	var found Principal
	ok := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found, ok = e.p, 1
		}
	}
	return found, ok == 1
}

// Need is what a method requires of its caller.
type Need struct {
	// Agent: only agents may call (ControlService/Connect).
	Agent bool
	// Role: the least operator role that may call; ignored when Agent.
	Role Role
}

// Authenticator checks calls against a policy. Methods under one of the
// protected prefixes that the policy does not list are denied to everyone,
// so a new method is never open by accident; methods outside them (health,
// reflection) need no credentials.
type Authenticator struct {
	tokens    atomic.Pointer[Tokens]
	policy    map[string]Need
	protected []string
	off       bool
}

// New returns an Authenticator. With off true every call passes as an
// anonymous principal (plaintext lab mode without a tokens file).
func New(tokens *Tokens, policy map[string]Need, protected []string, off bool) *Authenticator {
	a := &Authenticator{policy: policy, protected: protected, off: off}
	a.tokens.Store(tokens)
	return a
}

// SetTokens replaces the tokens (a reloaded tokens file); calls in flight
// finish with the tokens they were checked against.
func (a *Authenticator) SetTokens(t *Tokens) { a.tokens.Store(t) }

type ctxKey struct{}

// FromContext returns the caller the interceptors authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p (tests and in-process callers).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// Authorize authenticates the caller of method and checks the policy; it
// returns ctx with the principal, or a gRPC status error.
func (a *Authenticator) Authorize(ctx context.Context, method string) (context.Context, error) {
	need, listed := a.policy[method]
	if !listed {
		for _, p := range a.protected {
			if strings.HasPrefix(method, p) {
				return nil, status.Errorf(codes.PermissionDenied, "%s: no one may call it", method)
			}
		}
		return ctx, nil // public: health, reflection
	}
	if a.off {
		return WithPrincipal(ctx, Principal{Kind: KindAnonymous, Via: "none"}), nil
	}
	p, err := a.identify(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case need.Agent && p.Kind != KindAgent:
		return nil, status.Errorf(codes.PermissionDenied, "%s: only agents may call it, not operator %q", method, p.Name)
	case !need.Agent && p.Kind != KindOperator:
		return nil, status.Errorf(codes.PermissionDenied, "%s: only operators may call it, not agent %q", method, p.Name)
	case !need.Agent && p.Role < need.Role:
		return nil, status.Errorf(codes.PermissionDenied, "%s: needs role %s, operator %q has role %s", method, need.Role, p.Name, p.Role)
	}
	return WithPrincipal(ctx, p), nil
}

// identify finds the caller: a bearer token when one is sent, else a
// verified client certificate.
func (a *Authenticator) identify(ctx context.Context) (Principal, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return Principal{}, status.Error(codes.Unauthenticated, "authorization: sent more than once")
		}
		tok, ok := cutBearer(vals[0])
		if !ok {
			return Principal{}, status.Error(codes.Unauthenticated, `authorization: want "Bearer <token>"`)
		}
		p, ok := a.tokens.Load().Lookup(tok)
		if !ok {
			return Principal{}, status.Error(codes.Unauthenticated, "authorization: unknown token")
		}
		return p, nil
	}
	if pr, ok := peer.FromContext(ctx); ok {
		if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.PeerCertificates) > 0 {
			id, err := AgentID(ti.State.PeerCertificates[0])
			if err != nil {
				return Principal{}, status.Error(codes.Unauthenticated, err.Error())
			}
			return Principal{Kind: KindAgent, Name: id, Via: "mtls"}, nil
		}
	}
	return Principal{}, status.Error(codes.Unauthenticated, `no credentials: send "authorization: Bearer <token>" or an agent client certificate`)
}

func cutBearer(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// UnaryInterceptor checks unary calls.
func (a *Authenticator) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor checks streaming calls.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrapped{ServerStream: ss, ctx: ctx})
	}
}

type wrapped struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrapped) Context() context.Context { return w.ctx }
