package snmpdtest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestConfigRender(t *testing.T) {
	cfg := Config{
		Users: []User{
			{Name: "none"},
			{Name: "a", Auth: "SHA", AuthPassword: "auth-pass"},
			{Name: "ap", Auth: "SHA-256", AuthPassword: "auth-pass", Priv: "AES", PrivPassword: "priv-pass"},
		},
		Extra: []string{"view all included .1"},
	}
	want := `sysName test-device
dontLogTCPWrappersConnects yes
rocommunity public 127.0.0.1
createUser none
rouser none noauth
createUser a SHA auth-pass
rouser a auth
createUser ap SHA-256 auth-pass AES priv-pass
rouser ap priv
view all included .1
`
	if got := cfg.render(); got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	if got := (Config{SysName: "d", Communities: []string{}}).render(); strings.Contains(got, "rocommunity") || !strings.HasPrefix(got, "sysName d\n") {
		t.Errorf("no communities:\n%s", got)
	}
}

// answers reports whether something answers the discovery request on addr.
func answers(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(discovery); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := c.Read(make([]byte, 1500))
	return err == nil && n > 0
}

// A v3-only snmpd is ready too (the discovery request needs no community),
// and Stop and Start keep the port.
func TestStartStopStart(t *testing.T) {
	s := Start(t, Config{Communities: []string{}, Users: []User{{Name: "u"}}})
	addr := s.Addr()
	if !answers(t, addr) {
		t.Fatalf("snmpd on %s does not answer", addr)
	}
	s.Stop()
	if answers(t, addr) {
		t.Fatalf("stopped snmpd on %s answers", addr)
	}
	s.Stop() // a no-op
	s.Start()
	if s.Addr() != addr || !answers(t, addr) {
		t.Fatalf("restarted snmpd on %s (was %s) does not answer", s.Addr(), addr)
	}
	s.Stop()
	s.ResetEngine()
	s.Start()
	if !answers(t, addr) {
		t.Fatalf("snmpd with a new engine on %s does not answer", addr)
	}
}
