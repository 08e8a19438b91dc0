package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"net/url"
	"testing"
)

func TestParseTokens(t *testing.T) {
	digest := sha256.Sum256([]byte("hashed-token-0123456789"))
	tk, err := ParseTokens([]byte("# comment\n\nagent edge-1 agent-token-0123456789\nviewer alice viewer-token-0123456789\n"+
		"admin root sha256:"+hex.EncodeToString(digest[:])+"\n"), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]Principal{
		"agent-token-0123456789":  {Kind: KindAgent, Name: "edge-1", Via: "token"},
		"viewer-token-0123456789": {Kind: KindOperator, Name: "alice", Role: RoleViewer, Via: "token"},
		"hashed-token-0123456789": {Kind: KindOperator, Name: "root", Role: RoleAdmin, Via: "token"},
	} {
		if got, ok := tk.Lookup(tok); !ok || got != want {
			t.Errorf("Lookup(%s) = %+v %v, want %+v", tok, got, ok, want)
		}
	}
	if _, ok := tk.Lookup("agent-token-012345678"); ok {
		t.Error("a token's prefix matched")
	}
	if _, ok := tk.Lookup(""); ok {
		t.Error("the empty token matched")
	}

	for data, want := range map[string]string{
		"agent edge-1\n":                  `tokens file f:1: want "ROLE NAME TOKEN", got 2 fields`,
		"root x token-0123456789abcdef\n": `tokens file f:1: role "root": allowed: agent, viewer, operator, admin`,
		"\nviewer a short\n":              `tokens file f:2: token of viewer a: 5 characters, want at least 16`,
		"viewer a sha256:abc\n":           `tokens file f:1: token: sha256: wants 64 hex digits`,
		"viewer a tok-0123456789abcdef\nadmin b tok-0123456789abcdef\n": `tokens file f:2: token already used on line 1`,
	} {
		if _, err := ParseTokens([]byte(data), "f"); err == nil || err.Error() != want {
			t.Errorf("ParseTokens(%q): got %v, want %s", data, err, want)
		}
	}
}

func TestAgentID(t *testing.T) {
	u, _ := url.Parse(AgentURIPrefix + "edge-7")
	other, _ := url.Parse("spiffe://example/other")
	for _, tc := range []struct {
		cert *x509.Certificate
		want string
	}{
		{&x509.Certificate{Subject: pkix.Name{CommonName: "cn-name"}, URIs: []*url.URL{other, u}}, "edge-7"},
		{&x509.Certificate{Subject: pkix.Name{CommonName: "cn-name"}, URIs: []*url.URL{other}}, "cn-name"},
	} {
		if got, err := AgentID(tc.cert); err != nil || got != tc.want {
			t.Errorf("AgentID = %q %v, want %q", got, err, tc.want)
		}
	}
	if _, err := AgentID(&x509.Certificate{}); err == nil {
		t.Error("a certificate without URI SAN or CN named an agent")
	}
}
