// Package auth decides who may call what on the controller. Agents prove
// their identity with a client certificate (mTLS: the agent id is the
// certificate's spiffe://netaiops/agent/<id> URI SAN, else its subject CN)
// or with a per-agent bearer token; operators with a bearer token that
// carries a role: viewer (read), operator (also acknowledge and poll) or
// admin (also change configuration). Tokens come from a tokens file. The
// package provides gRPC interceptors that check a method policy and put the
// caller's Principal in the request context; a missing or unknown token is
// Unauthenticated, a known caller without the right is PermissionDenied.
// Agent certificates can be revoked with a CRL. Open streams are tracked
// with the credential that opened them: replacing the tokens or the CRL
// (a reload) ends each stream whose credential is no longer good.
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
	"sync"
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
	return t.lookupDigest(sha256.Sum256([]byte(token)))
}

func (t *Tokens) lookupDigest(d [sha256.Size]byte) (Principal, bool) {
	if t == nil {
		return Principal{}, false
	}
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
	crl       atomic.Pointer[CRL]
	policy    map[string]Need
	protected []string
	off       bool

	mu      sync.Mutex
	streams map[*liveStream]struct{} // open streaming calls with credentials
}

// credential is what a caller proved itself with: a token's digest or a
// verified client certificate.
type credential struct {
	digest *[sha256.Size]byte
	cert   *x509.Certificate
}

// liveStream is an open streaming call, checked again at every reload.
type liveStream struct {
	method string
	need   Need
	p      Principal
	cred   credential
	end    context.CancelCauseFunc
	ended  error // why a reload ended it; guarded by Authenticator.mu
}

// New returns an Authenticator. With off true every call passes as an
// anonymous principal (plaintext lab mode without a tokens file).
func New(tokens *Tokens, policy map[string]Need, protected []string, off bool) *Authenticator {
	a := &Authenticator{policy: policy, protected: protected, off: off, streams: map[*liveStream]struct{}{}}
	a.tokens.Store(tokens)
	return a
}

// SetTokens replaces the tokens (a reloaded tokens file). Unary calls in
// flight finish with the tokens they were checked against; open streams
// whose token was removed end with Unauthenticated (PermissionDenied when
// the token stays but its role no longer allows the method). It returns
// how many streams it ended.
func (a *Authenticator) SetTokens(t *Tokens) int {
	a.tokens.Store(t)
	return a.recheck()
}

// SetCRL replaces the revocation list (nil: none). New handshakes and calls
// with a revoked client certificate are refused, and open streams of one
// end with Unauthenticated. It returns how many streams it ended.
func (a *Authenticator) SetCRL(c *CRL) int {
	a.crl.Store(c)
	return a.recheck()
}

// Revoked reports whether the CRL in force revokes cert; the controller's
// TLS configuration calls it to refuse the handshake.
func (a *Authenticator) Revoked(cert *x509.Certificate) bool { return a.crl.Load().Revoked(cert) }

// Streams is the number of open streams with credentials.
func (a *Authenticator) Streams() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.streams)
}

// recheck ends every open stream whose credential no longer passes.
func (a *Authenticator) recheck() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	ended := 0
	for ls := range a.streams {
		if err := a.stillGood(ls); err != nil {
			ls.ended = err
			ls.end(err)
			delete(a.streams, ls)
			ended++
		}
	}
	return ended
}

// stillGood checks a stream's credential against the tokens and the CRL in
// force now.
func (a *Authenticator) stillGood(ls *liveStream) error {
	switch {
	case ls.cred.digest != nil:
		p, ok := a.tokens.Load().lookupDigest(*ls.cred.digest)
		if !ok || p.Kind != ls.p.Kind || p.Name != ls.p.Name {
			return status.Errorf(codes.Unauthenticated, "%s: the token of %s %q was revoked (tokens reloaded)", ls.method, kindName(ls.p.Kind), ls.p.Name)
		}
		return permit(ls.method, ls.need, p)
	case ls.cred.cert != nil:
		if a.Revoked(ls.cred.cert) {
			return status.Errorf(codes.Unauthenticated, "%s: the client certificate of agent %q (serial %s) was revoked (CRL reloaded)", ls.method, ls.p.Name, ls.cred.cert.SerialNumber)
		}
	}
	return nil
}

func kindName(k Kind) string {
	if k == KindAgent {
		return "agent"
	}
	return "operator"
}

// track registers an open stream; it fails when the stream's credential is
// no longer good (a reload between its check and now).
func (a *Authenticator) track(ls *liveStream) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.stillGood(ls); err != nil {
		return err
	}
	a.streams[ls] = struct{}{}
	return nil
}

// untrack forgets a stream and returns why a reload ended it, if one did.
func (a *Authenticator) untrack(ls *liveStream) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.streams, ls)
	return ls.ended
}

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
	ctx, _, err := a.authorize(ctx, method)
	return ctx, err
}

// authorize is Authorize that also returns the stream to track: nil for a
// public method or with authentication off.
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, *liveStream, error) {
	need, listed := a.policy[method]
	if !listed {
		for _, p := range a.protected {
			if strings.HasPrefix(method, p) {
				return nil, nil, status.Errorf(codes.PermissionDenied, "%s: no one may call it", method)
			}
		}
		return ctx, nil, nil // public: health, reflection
	}
	if a.off {
		return WithPrincipal(ctx, Principal{Kind: KindAnonymous, Via: "none"}), nil, nil
	}
	p, cred, err := a.identify(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := permit(method, need, p); err != nil {
		return nil, nil, err
	}
	return WithPrincipal(ctx, p), &liveStream{method: method, need: need, p: p, cred: cred}, nil
}

// permit checks the policy of a method for an identified caller.
func permit(method string, need Need, p Principal) error {
	switch {
	case need.Agent && p.Kind != KindAgent:
		return status.Errorf(codes.PermissionDenied, "%s: only agents may call it, not operator %q", method, p.Name)
	case !need.Agent && p.Kind != KindOperator:
		return status.Errorf(codes.PermissionDenied, "%s: only operators may call it, not agent %q", method, p.Name)
	case !need.Agent && p.Role < need.Role:
		return status.Errorf(codes.PermissionDenied, "%s: needs role %s, operator %q has role %s", method, need.Role, p.Name, p.Role)
	}
	return nil
}

// identify finds the caller: a bearer token when one is sent, else a
// verified client certificate that the CRL does not revoke.
func (a *Authenticator) identify(ctx context.Context) (Principal, credential, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if vals := md.Get("authorization"); len(vals) > 0 {
		if len(vals) > 1 {
			return Principal{}, credential{}, status.Error(codes.Unauthenticated, "authorization: sent more than once")
		}
		tok, ok := cutBearer(vals[0])
		if !ok {
			return Principal{}, credential{}, status.Error(codes.Unauthenticated, `authorization: want "Bearer <token>"`)
		}
		d := sha256.Sum256([]byte(tok))
		p, ok := a.tokens.Load().lookupDigest(d)
		if !ok {
			return Principal{}, credential{}, status.Error(codes.Unauthenticated, "authorization: unknown token")
		}
		return p, credential{digest: &d}, nil
	}
	if pr, ok := peer.FromContext(ctx); ok {
		if ti, ok := pr.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.PeerCertificates) > 0 {
			cert := ti.State.PeerCertificates[0]
			id, err := AgentID(cert)
			if err != nil {
				return Principal{}, credential{}, status.Error(codes.Unauthenticated, err.Error())
			}
			// The handshake refuses revoked certificates; a connection made
			// before the CRL listed its certificate is refused here.
			if a.Revoked(cert) {
				return Principal{}, credential{}, status.Errorf(codes.Unauthenticated, "client certificate of agent %q (serial %s) is revoked", id, cert.SerialNumber)
			}
			return Principal{Kind: KindAgent, Name: id, Via: "mtls"}, credential{cert: cert}, nil
		}
	}
	return Principal{}, credential{}, status.Error(codes.Unauthenticated, `no credentials: send "authorization: Bearer <token>" or an agent client certificate`)
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

// StreamInterceptor checks streaming calls and tracks them while open: a
// reload that revokes a stream's credential cancels the stream's context,
// and the call ends with the reason (Unauthenticated) instead of the
// handler's cancellation error.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, ls, err := a.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if ls == nil {
			return handler(srv, &wrapped{ServerStream: ss, ctx: ctx})
		}
		ctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		ls.end = cancel
		if err := a.track(ls); err != nil {
			return err
		}
		err = handler(srv, &wrapped{ServerStream: ss, ctx: ctx})
		if ended := a.untrack(ls); ended != nil {
			return ended
		}
		return err
	}
}

type wrapped struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrapped) Context() context.Context { return w.ctx }
