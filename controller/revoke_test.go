package controller

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/netaiops/netaiops/controller/certs"
	netaiopsv1 "github.com/netaiops/netaiops/gen/netaiops/v1"
)

// openStream says hello as agentID and waits for the welcome; the stream
// stays open.
func openStream(t *testing.T, ctx context.Context, conn *grpc.ClientConn, agentID string) agentStream {
	t.Helper()
	stream, err := netaiopsv1.NewControlServiceClient(conn).Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Hello{Hello: &netaiopsv1.Hello{AgentId: agentID, LogId: "log-" + agentID}}}); err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetWelcome() == nil {
		t.Fatalf("%s: want welcome: %v %v", agentID, m, err)
	}
	return stream
}

// sendEvent sends one opened issue at seq and waits for its ack.
func sendEvent(t *testing.T, stream agentStream, agentID string, seq uint64, id string) {
	t.Helper()
	ts := timestamppb.New(time.Date(2026, 11, 24, 12, 0, int(seq), 0, time.UTC))
	if err := stream.Send(&netaiopsv1.ConnectRequest{Msg: &netaiopsv1.ConnectRequest_Events{Events: &netaiopsv1.EventBatch{LogId: "log-" + agentID,
		Events: []*netaiopsv1.IssueEvent{{Seq: seq, Type: netaiopsv1.IssueEventType_ISSUE_EVENT_TYPE_OPENED, Time: ts,
			Issue: &netaiopsv1.Issue{Id: id, Device: "core-sw1", Kind: "interface_down", State: netaiopsv1.IssueState_ISSUE_STATE_OPEN,
				Severity: netaiopsv1.Severity_SEVERITY_MAJOR, Summary: "ge-0/0/1 down", FirstSeen: ts, LastSeen: ts}}}}}}); err != nil {
		t.Fatalf("%s: send: %v", agentID, err)
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("%s: want ack of %d: %v", agentID, seq, err)
		}
		if m.GetAck().GetAckedSeq() == seq {
			return
		}
	}
}

// ended returns a channel that receives the error that ends a stream
// (messages before it, such as heartbeats, are skipped).
func ended(recv func() error) <-chan error {
	ch := make(chan error, 1)
	go func() {
		for {
			if err := recv(); err != nil {
				ch <- err
				return
			}
		}
	}()
	return ch
}

func wantEnded(t *testing.T, what string, ch <-chan error, want codes.Code, msg string) {
	t.Helper()
	select {
	case err := <-ch:
		if status.Code(err) != want || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s ended with %v, want %s containing %q", what, err, want, msg)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s still open 5s after the reload", what)
	}
}

func wantOpen(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Errorf("%s ended: %v", what, err)
	default:
	}
}

// Removing a token and reloading ends that token's open streams (an
// agent's Connect, an operator's WatchIssues) with Unauthenticated; the
// streams of other credentials go on.
func TestTokenRemovalEndsStreams(t *testing.T) {
	s := runSecured(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	plain := s.dial(t, credentials.NewTLS(&tls.Config{RootCAs: s.ca}))

	edge3 := openStream(t, bearer(ctx, tokAgent3), plain, "edge-3")
	edge3End := ended(func() error { _, err := edge3.Recv(); return err })
	issues := netaiopsv1.NewIssueServiceClient(plain)
	watch := func(tok string) grpc.ServerStreamingClient[netaiopsv1.WatchIssuesResponse] {
		w, err := issues.WatchIssues(bearer(ctx, tok), &netaiopsv1.WatchIssuesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Header(); err != nil {
			t.Fatal(err)
		}
		return w
	}
	alice := watch(tokViewer)
	aliceEnd := ended(func() error { _, err := alice.Recv(); return err })
	root := watch(tokAdmin)
	edge1 := openStream(t, ctx, s.dialAgent(t, "edge-1"), "edge-1")

	// alice and edge-3 leave the file; bob and root stay.
	if err := os.WriteFile(filepath.Join(s.dir, "tokens"), []byte("operator bob "+tokOperator+"\nadmin root "+tokAdmin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.r.ctl.Reload(); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, "edge-3's Connect stream", edge3End, codes.Unauthenticated, `the token of agent "edge-3" was revoked`)
	wantEnded(t, "alice's WatchIssues stream", aliceEnd, codes.Unauthenticated, `the token of operator "alice" was revoked`)

	// edge-1 (certificate) and root (token kept) go on: edge-1's next
	// event is acked and root's watch sees it.
	sendEvent(t, edge1, "edge-1", 1, "issue-after-reload")
	m, err := root.Recv()
	if err != nil || m.GetIssue().GetId() != "issue-after-reload" {
		t.Fatalf("root's watch after the reload: %v %v", m, err)
	}
	// A new call with a removed token is refused too.
	_, err = issues.ListIssues(bearer(ctx, tokViewer), &netaiopsv1.ListIssuesRequest{})
	wantCode(t, "alice's ListIssues after the reload", err, codes.Unauthenticated)
	if n := s.r.ctl.auth.Streams(); n != 2 {
		t.Errorf("%d streams tracked, want 2 (edge-1, root)", n)
	}
}

// writeCRL writes a CRL signed by the test CA that revokes the client
// certificates of agents, as PEM or DER.
func writeCRL(t *testing.T, dir, name string, asPEM bool, number int64, agents ...string) string {
	t.Helper()
	pki := filepath.Join(dir, "pki")
	ca, caKey := loadPair(t, filepath.Join(pki, certs.CAFile), filepath.Join(pki, certs.CAKeyFile))
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, id := range agents {
		cf, kf := certs.AgentFiles(id)
		cert, _ := loadPair(t, filepath.Join(pki, cf), filepath.Join(pki, kf))
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: cert.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca, caKey.PrivateKey.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	data := der
	if asPEM {
		data = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadPair(t *testing.T, certFile, keyFile string) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return cert, pair
}

// A client certificate listed in the CRL is refused at the handshake, on
// a connection made before the reload, and its open stream ends at the
// reload; a CRL the controller cannot verify keeps the old one in force;
// the CRL in the file is in force from the start.
func TestCRLRevokesCertificates(t *testing.T) {
	var crlFile string
	s := runSecuredWith(t, func(cfg *Config, dir string) {
		crlFile = writeCRL(t, dir, "agents.crl", true, 1) // PEM, nothing revoked yet
		cfg.CRLFile = crlFile
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	edge1 := openStream(t, ctx, s.dialAgent(t, "edge-1"), "edge-1")
	edge1End := ended(func() error { _, err := edge1.Recv(); return err })
	edge2Conn := s.dialAgent(t, "edge-2")
	edge2 := openStream(t, ctx, edge2Conn, "edge-2")
	edge2End := ended(func() error { _, err := edge2.Recv(); return err })

	writeCRL(t, s.dir, "agents.crl", false, 2, "edge-2") // DER this time
	if err := s.r.ctl.Reload(); err != nil {
		t.Fatal(err)
	}
	wantEnded(t, "edge-2's Connect stream", edge2End, codes.Unauthenticated, `the client certificate of agent "edge-2"`)
	wantOpen(t, "edge-1's Connect stream", edge1End)
	// The connection made before the reload: the next call is refused.
	wantCode(t, "edge-2 on its old connection", hello(ctx, edge2Conn, "edge-2"), codes.Unauthenticated)
	// A new connection fails the handshake.
	wantCode(t, "edge-2 on a new connection", hello(ctx, s.dialAgent(t, "edge-2"), "edge-2"), codes.Unavailable)
	wantCode(t, "edge-1 on a new connection", hello(ctx, s.dialAgent(t, "edge-1"), "edge-1"), codes.OK)

	// A CRL of another CA is refused; the one in force stays.
	other := t.TempDir()
	if _, err := certs.Generate(certs.Options{Dir: filepath.Join(other, "pki"), Agents: []string{"edge-1"}}); err != nil {
		t.Fatal(err)
	}
	foreign := writeCRL(t, other, "foreign.crl", true, 3, "edge-1")
	data, err := os.ReadFile(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crlFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.r.ctl.Reload(); err == nil || !strings.Contains(err.Error(), "not signed by a CA of the client CA bundle") {
		t.Errorf("reload of a foreign CRL: %v", err)
	}
	wantCode(t, "edge-2 after a failed reload", hello(ctx, s.dialAgent(t, "edge-2"), "edge-2"), codes.Unavailable)

	// At start: a controller started with a CRL revoking edge-2.
	writeCRL(t, s.dir, "agents.crl", true, 4, "edge-2")
	s.r.stop(t)
	s.r = runConfig(t, s.cfg, credentials.NewTLS(&tls.Config{RootCAs: s.ca}))
	s.addr = s.r.ctl.Addr().String()
	wantCode(t, "edge-2 after a restart", hello(ctx, s.dialAgent(t, "edge-2"), "edge-2"), codes.Unavailable)
	wantCode(t, "edge-1 after a restart", hello(ctx, s.dialAgent(t, "edge-1"), "edge-1"), codes.OK)
}
