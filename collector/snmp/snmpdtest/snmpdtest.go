// Package snmpdtest runs Debian's net-snmp snmpd on a loopback port as the
// SNMP device of a test, and net-snmp's command-line tools (snmptrap,
// snmpinform, ...) cut off from the host's configuration. It is for tests
// only: nothing outside _test.go files imports it.
//
// Each snmpd gets a config it never touches and, apart from it, its own
// SNMP_PERSISTENT_DIR: snmpd rewrites $SNMP_PERSISTENT_DIR/snmpd.conf on exit
// (engine ID, engine boots, localized user keys), so a config written there
// would be clobbered; kept apart, a restarted snmpd comes back as the same
// engine with its boots counted up, as a rebooted device does.
package snmpdtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Config describes the device. The zero Config is a v1/v2c agent with the
// read-only community "public" and the sysName "test-device".
type Config struct {
	// SysName is the device's sysName.0; "" means "test-device".
	SysName string
	// Communities may read everything from 127.0.0.1 with SNMPv1 and v2c.
	// nil means "public"; an empty, non-nil slice means none.
	Communities []string
	// Users are SNMPv3 users, each created and granted read access at its
	// own security level.
	Users []User
	// Extra lines go at the end of snmpd.conf: views, contexts, proxies,
	// trap sinks, users with other grants.
	Extra []string
	// Port is the UDP port on 127.0.0.1; 0 picks a free one. Set it (from
	// FreePort) when an Extra line must name snmpd's own port.
	Port int
}

// User is an SNMPv3 user of snmpd. Protocols use net-snmp's createUser
// names: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512; DES, AES, AES-192,
// AES-256, AES-192-C, AES-256-C.
type User struct {
	Name string
	// Auth and AuthPassword: "" for noAuthNoPriv.
	Auth, AuthPassword string
	// Priv and PrivPassword: "" for no privacy.
	Priv, PrivPassword string
}

// lines returns the createUser and rouser lines of u.
func (u User) lines() []string {
	create, level := "createUser "+u.Name, "noauth"
	if u.Auth != "" {
		create += " " + u.Auth + " " + u.AuthPassword
		level = "auth"
		if u.Priv != "" {
			create += " " + u.Priv + " " + u.PrivPassword
			level = "priv"
		}
	}
	return []string{create, "rouser " + u.Name + " " + level}
}

// Snmpd is one snmpd, stopped and cleaned up when the test ends.
type Snmpd struct {
	t    testing.TB
	bin  string
	conf string // our config, which snmpd only reads
	pers string // SNMP_PERSISTENT_DIR, which snmpd writes
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  syncBuffer    // the output of every run
}

// Start writes the config of cfg, runs snmpd and waits until it answers. It
// skips the test when snmpd is not installed.
func Start(t testing.TB, cfg Config) *Snmpd {
	t.Helper()
	bin := lookSnmpd()
	if bin == "" {
		t.Skip("net-snmp snmpd not installed (apt-get install snmpd): this test needs a real SNMP agent")
	}
	dir := t.TempDir()
	s := &Snmpd{t: t, bin: bin, conf: filepath.Join(dir, "snmpd.conf"), pers: filepath.Join(dir, "persist"), port: cfg.Port}
	if s.port == 0 {
		s.port = FreePort(t)
	}
	if err := os.Mkdir(s.pers, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.conf, []byte(cfg.render()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("snmpd output:\n%s", s.Output())
		}
	})
	s.Start()
	return s
}

func (cfg Config) render() string {
	name, communities := cfg.SysName, cfg.Communities
	if name == "" {
		name = "test-device"
	}
	if communities == nil {
		communities = []string{"public"}
	}
	lines := []string{"sysName " + name, "dontLogTCPWrappersConnects yes"}
	for _, c := range communities {
		lines = append(lines, "rocommunity "+c+" 127.0.0.1")
	}
	for _, u := range cfg.Users {
		lines = append(lines, u.lines()...)
	}
	lines = append(lines, cfg.Extra...)
	return strings.Join(lines, "\n") + "\n"
}

func lookSnmpd() string {
	if bin, err := exec.LookPath("snmpd"); err == nil {
		return bin
	}
	// Debian installs it in sbin, which a user's PATH may lack.
	for _, c := range []string{"/usr/sbin/snmpd", "/usr/local/sbin/snmpd"} {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// Addr is snmpd's address, 127.0.0.1:port.
func (s *Snmpd) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is snmpd's UDP port.
func (s *Snmpd) Port() int { return s.port }

// Output is what snmpd has logged so far, over all its runs.
func (s *Snmpd) Output() string { return s.out.String() }

// Start runs a stopped snmpd again on the same port and waits until it
// answers. It keeps the persistent state of the run before, so snmpd is
// the same engine with one more boot; ResetEngine first makes it a new one.
// Start on a running snmpd does nothing.
func (s *Snmpd) Start() {
	s.t.Helper()
	if s.cmd != nil {
		return
	}
	// -C keeps snmpd from reading the host's config and, with it, the
	// persistent file: name that too once a run has written it.
	conf := s.conf
	if pers := filepath.Join(s.pers, "snmpd.conf"); exists(pers) {
		conf += "," + pers
	}
	// The endpoint is named here only: an agentaddress line as well would
	// make snmpd bind the port twice and fail.
	cmd := exec.Command(s.bin, "-f", "-Lo", "-C", "-c", conf,
		"-p", filepath.Join(filepath.Dir(s.conf), "snmpd.pid"), "udp:"+s.Addr())
	cmd.Env = append(os.Environ(), "SNMP_PERSISTENT_DIR="+s.pers, "MIBS=")
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start snmpd: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }() // owned by Stop, which waits on done
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Stop()
		s.t.Fatalf("snmpd on %s: %v\nsnmpd output:\n%s", s.Addr(), err, s.Output())
	}
}

// Stop ends snmpd with SIGTERM, so that it saves its persistent state
// (SIGKILL after 5s), and waits for it. Stop on a stopped snmpd does
// nothing.
func (s *Snmpd) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.t.Logf("snmpd did not stop within 5s of SIGTERM; killing it")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// ResetEngine removes the persistent state of a stopped snmpd: the next
// Start is a new engine (a new engine ID, boots from 1), as a device that
// lost its configuration comes back.
func (s *Snmpd) ResetEngine() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("snmpdtest: ResetEngine on a running snmpd")
	}
	entries, err := os.ReadDir(s.pers)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.pers, e.Name())); err != nil {
			s.t.Fatal(err)
		}
	}
}

// discovery is an SNMPv3 engine discovery request (RFC 3414 section 4):
// noAuthNoPriv, reportable, empty engine ID and user. An SNMPv3 agent
// answers it with a report whatever its communities and users, so it tells
// that snmpd is up without an SNMP library.
var discovery = []byte{
	0x30, 0x38, // SNMPv3Message
	0x02, 0x01, 0x03, // msgVersion 3
	0x30, 0x0e, // msgGlobalData
	0x02, 0x01, 0x01, // msgID 1
	0x02, 0x03, 0x00, 0xff, 0xe3, // msgMaxSize 65507
	0x04, 0x01, 0x04, // msgFlags: reportable
	0x02, 0x01, 0x03, // msgSecurityModel: USM
	0x04, 0x10, 0x30, 0x0e, // msgSecurityParameters
	0x04, 0x00, // msgAuthoritativeEngineID ""
	0x02, 0x01, 0x00, // msgAuthoritativeEngineBoots 0
	0x02, 0x01, 0x00, // msgAuthoritativeEngineTime 0
	0x04, 0x00, // msgUserName ""
	0x04, 0x00, // msgAuthenticationParameters ""
	0x04, 0x00, // msgPrivacyParameters ""
	0x30, 0x11, // ScopedPDU
	0x04, 0x00, // contextEngineID ""
	0x04, 0x00, // contextName ""
	0xa0, 0x0b, // GetRequest-PDU
	0x02, 0x01, 0x01, // request-id 1
	0x02, 0x01, 0x00, // error-status 0
	0x02, 0x01, 0x00, // error-index 0
	0x30, 0x00, // variable-bindings: none
}

// waitReady sends discovery requests until snmpd answers one, snmpd exits
// or timeout passes.
func (s *Snmpd) waitReady(timeout time.Duration) error {
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("snmpd exited before it answered")
		default:
		}
		if _, err := c.Write(discovery); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && n > 0 {
			return nil
		}
		// A read error is a timeout, or ICMP port unreachable before
		// snmpd has bound: either way, try again.
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %v", timeout)
}

// FreePort returns a UDP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Command returns net-snmp's command-line tool name (snmptrap, snmpinform,
// snmpget, ...) with args, run with MIBS, SNMP_PERSISTENT_DIR, SNMPCONFPATH
// and HOME pointing at an empty directory of the test, so that neither the
// host's nor the user's net-snmp files change what it sends. It skips the
// test when the tool is not installed.
func Command(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("net-snmp %s not installed (apt-get install snmp): this test uses it as the sender", name)
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "MIBS=", "SNMP_PERSISTENT_DIR="+dir, "SNMPCONFPATH="+dir, "HOME="+dir)
	return cmd
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// syncBuffer is a bytes.Buffer that snmpd's output and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
