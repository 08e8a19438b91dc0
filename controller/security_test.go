package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netaiops/netaiops/controller/certs"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// Tokens of the secured test controller.
const (
	tokAgent3   = "agent-edge-3-token-0123456789"
	tokViewer   = "viewer-alice-token-0123456789"
	tokOperator = "operator-bob-token-0123456789"
	tokAdmin    = "admin-root-token-0123456789ab"
)

// secured is a controller with TLS, agent client certificates and tokens.
type secured struct {
	r    *running
	addr string
	dir  string
	ca   *x509.CertPool
	cfg  Config
}

func runSecured(t *testing.T) *secured { return runSecuredWith(t, nil) }

// runSecuredWith runs the secured controller; mod changes its config once
// the certificates and tokens exist in dir.
func runSecuredWith(t *testing.T, mod func(cfg *Config, dir string)) *secured {
	t.Helper()
	dir := t.TempDir()
	if _, err := certs.Generate(certs.Options{Dir: filepath.Join(dir, "pki"), Agents: []string{"edge-1", "edge-2"}}); err != nil {
		t.Fatal(err)
	}
	tokens := "# role name token\n" +
		"agent edge-3 " + tokAgent3 + "\n" +
		"viewer alice " + tokViewer + "\n" +
		"operator bob " + tokOperator + "\n" +
		"admin root " + tokAdmin + "\n"
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	pki := func(name string) string { return filepath.Join(dir, "pki", name) }
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DBPath = filepath.Join(dir, "controller.db")
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = pki(certs.ServerFile), pki(certs.ServerKey), pki(certs.CAFile)
	cfg.TokensFile = filepath.Join(dir, "tokens")
	if mod != nil {
		mod(&cfg, dir)
	}
	s := &secured{dir: dir, ca: x509.NewCertPool(), cfg: cfg}
	caPEM, err := os.ReadFile(pki(certs.CAFile))
	if err != nil || !s.ca.AppendCertsFromPEM(caPEM) {
		t.Fatalf("read CA: %v", err)
	}
	s.r = runConfig(t, cfg, credentials.NewTLS(&tls.Config{RootCAs: s.ca}))
	s.addr = s.r.ctl.Addr().String()
	return s
}

// dialAgent connects with the client certificate of agent id.
func (s *secured) dialAgent(t *testing.T, id string) *grpc.ClientConn {
	t.Helper()
	cf, kf := certs.AgentFiles(id)
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.dir, "pki", cf), filepath.Join(s.dir, "pki", kf))
	if err != nil {
		t.Fatal(err)
	}
	return s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca, Certificates: []tls.Certificate{cert}}))
}

func (s *secured) dial(t *testing.T, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// hello opens a Connect stream, says hello as agentID and returns the
// first answer's error (nil for a welcome).
func hello(ctx context.Context, conn *grpc.ClientConn, agentID string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{AgentId: agentID, LogId: "log-1"}}}); err != nil {
		_, err = stream.Recv()
		return err
	}
	m, err := stream.Recv()
	if err != nil {
		return err
	}
	if m.GetWelcome() == nil {
		return status.Errorf(codes.Internal, "first answer %v is not a welcome", m)
	}
	return nil
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: got %v, want %s", what, err, want)
	}
}

func TestSecurityAgents(t *testing.T) {
	s := runSecured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	edge1 := s.dialAgent(t, "edge-1")
	wantCode(t, "edge-1 certificate, hello edge-1", hello(ctx, edge1, "edge-1"), codes.OK)
	err := hello(ctx, edge1, "edge-2")
	wantCode(t, "edge-1 certificate, hello edge-2", err, codes.PermissionDenied)
	if err != nil && !strings.Contains(err.Error(), `credentials are for agent "edge-1"`) {
		t.Errorf("message does not say whose credentials: %v", err)
	}

	server := s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca}))
	wantCode(t, "token edge-3, hello edge-3", hello(bearer(ctx, tokAgent3), server, "edge-3"), codes.OK)
	wantCode(t, "token edge-3, hello edge-1", hello(bearer(ctx, tokAgent3), server, "edge-1"), codes.PermissionDenied)
	wantCode(t, "no credentials", hello(ctx, server, "edge-1"), codes.Unauthenticated)
	wantCode(t, "unknown token", hello(bearer(ctx, "not-a-token-at-all-0000"), server, "edge-3"), codes.Unauthenticated)
	wantCode(t, "operator token on Connect", hello(bearer(ctx, tokOperator), server, "bob"), codes.PermissionDenied)
	// A token decides over a certificate: edge-1's certificate with
	// edge-3's token is edge-3.
	wantCode(t, "edge-1 certificate, edge-3 token, hello edge-1", hello(bearer(ctx, tokAgent3), edge1, "edge-1"), codes.PermissionDenied)

	// Agents are not operators.
	_, err = netaiopsv1.NewIssueServiceClient(edge1).ListIssues(ctx, &netaiopsv1.ListIssuesRequest{})
	wantCode(t, "agent certificate on ListIssues", err, codes.PermissionDenied)
	_, err = netaiopsv1.NewFleetServiceClient(server).ListAgents(bearer(ctx, tokAgent3), &netaiopsv1.ListAgentsRequest{})
	wantCode(t, "agent token on ListAgents", err, codes.PermissionDenied)

	// A certificate from another CA fails the handshake.
	other := t.TempDir()
	if _, err := certs.Generate(certs.Options{Dir: other, Agents: []string{"edge-1"}}); err != nil {
		t.Fatal(err)
	}
	cf, kf := certs.AgentFiles("edge-1")
	foreign, err := tls.LoadX509KeyPair(filepath.Join(other, cf), filepath.Join(other, kf))
	if err != nil {
		t.Fatal(err)
	}
	fconn := s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca, Certificates: []tls.Certificate{foreign}}))
	wantCode(t, "certificate of another CA", hello(ctx, fconn, "edge-1"), codes.Unavailable)
	// Plaintext against the TLS listener fails too.
	wantCode(t, "plaintext client", hello(ctx, s.dial(t, insecure.NewCredentials()), "edge-1"), codes.Unavailable)
}

func TestSecurityOperators(t *testing.T) {
	s := runSecured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	agent := connectAgent(t, s.dialAgent(t, "edge-1"), ctx, "issue-1")
	defer agent.CloseSend()

	conn := s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca}))
	issues := netaiopsv1.NewIssueServiceClient(conn)
	_, err := issues.ListIssues(ctx, &netaiopsv1.ListIssuesRequest{})
	wantCode(t, "ListIssues without a token", err, codes.Unauthenticated)
	_, err = issues.ListIssues(bearer(ctx, "wrong-token-0123456789abcdef"), &netaiopsv1.ListIssuesRequest{})
	wantCode(t, "ListIssues with an unknown token", err, codes.Unauthenticated)
	_, err = issues.ListIssues(metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+tokViewer), &netaiopsv1.ListIssuesRequest{})
	wantCode(t, "ListIssues with a Basic scheme", err, codes.Unauthenticated)

	list, err := issues.ListIssues(bearer(ctx, tokViewer), &netaiopsv1.ListIssuesRequest{})
	if err != nil || len(list.GetIssues()) != 1 {
		t.Fatalf("viewer ListIssues: %v %v", list, err)
	}
	_, err = issues.AcknowledgeIssue(bearer(ctx, tokViewer), &netaiopsv1.AcknowledgeIssueRequest{Id: "issue-1", By: "alice"})
	wantCode(t, "viewer AcknowledgeIssue", err, codes.PermissionDenied)
	got, err := issues.GetIssue(bearer(ctx, tokViewer), &netaiopsv1.GetIssueRequest{Id: "issue-1"})
	if err != nil || got.GetIssue().GetAcknowledged() {
		t.Fatalf("after the viewer's refused ack: %v %v", got, err)
	}
	ack, err := issues.AcknowledgeIssue(bearer(ctx, tokOperator), &netaiopsv1.AcknowledgeIssueRequest{Id: "issue-1", By: "mallory"})
	if err != nil {
		t.Fatalf("operator AcknowledgeIssue: %v", err)
	}
	if by := ack.GetIssue().GetAcknowledgedBy(); by != "bob" {
		t.Errorf("acknowledged_by = %q, want the token's name bob", by)
	}
	if _, err := issues.AcknowledgeIssue(bearer(ctx, tokAdmin), &netaiopsv1.AcknowledgeIssueRequest{Id: "issue-1"}); err != nil {
		t.Errorf("admin AcknowledgeIssue: %v", err)
	}

	// Configuration needs admin; reading it viewer; commands operator.
	fleet := netaiopsv1.NewFleetServiceClient(conn)
	sel := &netaiopsv1.ConfigSelector{AgentId: "edge-1"}
	doc := "targets:\n  - name: a\n    address: 10.0.0.1\n    community: s3cret-community\n"
	_, err = fleet.SetConfig(bearer(ctx, tokOperator), &netaiopsv1.SetConfigRequest{Selector: sel, Yaml: doc})
	wantCode(t, "operator SetConfig", err, codes.PermissionDenied)
	set, err := fleet.SetConfig(bearer(ctx, tokAdmin), &netaiopsv1.SetConfigRequest{Selector: sel, Yaml: doc})
	if err != nil || set.GetConfig().GetUpdatedBy() != "root" {
		t.Fatalf("admin SetConfig: %v %v", set, err)
	}
	got2, err := fleet.GetConfig(bearer(ctx, tokViewer), &netaiopsv1.GetConfigRequest{Selector: sel})
	if err != nil || strings.Contains(got2.GetConfig().GetYaml(), "s3cret-community") || got2.GetConfig().GetHash() != set.GetConfig().GetHash() {
		t.Errorf("viewer GetConfig: %v %v", got2, err)
	}
	_, err = fleet.DeleteConfig(bearer(ctx, tokViewer), &netaiopsv1.DeleteConfigRequest{Selector: sel})
	wantCode(t, "viewer DeleteConfig", err, codes.PermissionDenied)
	_, err = fleet.PollTarget(bearer(ctx, tokViewer), &netaiopsv1.PollTargetRequest{AgentId: "edge-1", Target: "a"})
	wantCode(t, "viewer PollTarget", err, codes.PermissionDenied)
	_, err = fleet.PollTarget(bearer(ctx, tokOperator), &netaiopsv1.PollTargetRequest{AgentId: "edge-9", Target: "a"})
	wantCode(t, "operator PollTarget of an unconnected agent", err, codes.Unavailable)

	// Health and reflection need no token.
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v %v", h, err)
	}
}

func TestReloadTokens(t *testing.T) {
	s := runSecured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	issues := netaiopsv1.NewIssueServiceClient(s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca})))
	const carol = "viewer-carol-token-0123456789"
	list := func(tok string) error {
		_, err := issues.ListIssues(bearer(ctx, tok), &netaiopsv1.ListIssuesRequest{})
		return err
	}
	wantCode(t, "carol before she is in the file", list(carol), codes.Unauthenticated)
	if err := os.WriteFile(filepath.Join(s.dir, "tokens"), []byte("viewer carol "+carol+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "carol before the reload", list(carol), codes.Unauthenticated)
	if err := s.r.ctl.ReloadTokens(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "carol after the reload", list(carol), codes.OK)
	wantCode(t, "alice, dropped from the file", list(tokViewer), codes.Unauthenticated)
	// A broken file keeps the tokens in force.
	if err := os.WriteFile(filepath.Join(s.dir, "tokens"), []byte("viewer carol short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.r.ctl.ReloadTokens(); err == nil {
		t.Error("a broken tokens file reloaded")
	}
	wantCode(t, "carol after a failed reload", list(carol), codes.OK)
}
