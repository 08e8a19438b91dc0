package snmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/netaiops/netaiops/collector"
	"github.com/netaiops/netaiops/collector/snmp/snmpdtest"
)

const (
	testAuthPass = "auth-secret-1"
	testPrivPass = "priv-secret-1"
)

// netsnmpAuth and netsnmpPriv are net-snmp's createUser names of our protocols.
var (
	netsnmpAuth = map[string]string{"MD5": "MD5", "SHA": "SHA", "SHA224": "SHA-224", "SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}
	netsnmpPriv = map[string]string{"DES": "DES", "AES": "AES", "AES192": "AES-192", "AES256": "AES-256", "AES192C": "AES-192-C", "AES256C": "AES-256-C"}
)

// usmCase is one combination of security level and protocols.
type usmCase struct {
	level, auth, priv string
}

func (c usmCase) user() string {
	return strings.ToLower(strings.Join([]string{"u", c.level, c.auth, c.priv}, "_"))
}

func (c usmCase) usm() USM {
	u := USM{SecurityLevel: c.level, Username: c.user()}
	if c.auth != "" {
		u.AuthProtocol, u.AuthPassword = c.auth, testAuthPass
	}
	if c.priv != "" {
		u.PrivProtocol, u.PrivPassword = c.priv, testPrivPass
	}
	return u
}

// usmCases lists every combination net-snmp 5.9's snmpd supports.
func usmCases() []usmCase {
	cases := []usmCase{{level: NoAuthNoPriv}}
	for _, a := range AuthProtocols {
		cases = append(cases, usmCase{level: AuthNoPriv, auth: a})
		for _, p := range PrivProtocols {
			cases = append(cases, usmCase{level: AuthPriv, auth: a, priv: p})
		}
	}
	return cases
}

// usmUsers returns the snmpd users of the cases.
func usmUsers(cases []usmCase) []snmpdtest.User {
	var users []snmpdtest.User
	for _, c := range cases {
		u := snmpdtest.User{Name: c.user()}
		if c.auth != "" {
			u.Auth, u.AuthPassword = netsnmpAuth[c.auth], testAuthPass
		}
		if c.priv != "" {
			u.Priv, u.PrivPassword = netsnmpPriv[c.priv], testPrivPass
		}
		users = append(users, u)
	}
	return users
}

func v3opts(addr string, u USM) Options {
	return Options{Target: collector.Target{Name: "dev3", Address: addr, Version: "3"},
		USM: u, Timeout: time.Second, Retries: 1, MaxRepetitions: 10}
}

// Every security level and protocol combination polls net-snmp's snmpd.
func TestPollV3Combinations(t *testing.T) {
	cases := usmCases()
	dev := snmpdtest.Start(t, snmpdtest.Config{Users: usmUsers(cases)})
	p := NewPoller(nil)
	for _, c := range cases {
		t.Run(c.user(), func(t *testing.T) {
			o := v3opts(dev.Addr(), c.usm())
			for i := range 2 { // the second poll uses the cached engine and keys
				r := p.Poll(context.Background(), o)
				if r.Err != nil {
					t.Fatalf("poll %d: %v", i+1, r.Err)
				}
				if s, ok := find(r.Samples, "sysName", ""); !ok || s.Labels.Get("sysName") != "test-device" {
					t.Fatalf("poll %d: sysName = %+v (found %v)", i+1, s, ok)
				}
				if _, ok := find(r.Samples, "ifHCInOctets", "lo"); !ok {
					t.Fatalf("poll %d: no ifHCInOctets for lo", i+1)
				}
				if _, ok := p.engines.get(o, time.Now()); !ok {
					t.Fatalf("poll %d: engine not cached", i+1)
				}
			}
		})
	}
}

// Wrong credentials fail at once with an error that names the target and
// says whether auth or priv failed, not after a timeout.
func TestPollV3WrongCredentials(t *testing.T) {
	good := usmCase{level: AuthPriv, auth: "SHA256", priv: "AES"}
	authOnly := usmCase{level: AuthNoPriv, auth: "SHA"}
	dev := snmpdtest.Start(t, snmpdtest.Config{Users: usmUsers([]usmCase{good, authOnly})})

	wrongAuth := good.usm()
	wrongAuth.AuthPassword = "not-the-auth-password"
	wrongAuthNoPriv := authOnly.usm()
	wrongAuthNoPriv.AuthPassword = "not-the-auth-password"
	wrongAuthProto := authOnly.usm()
	wrongAuthProto.AuthProtocol = "MD5"
	wrongPriv := good.usm()
	wrongPriv.PrivPassword = "not-the-priv-password"
	unknownUser := good.usm()
	unknownUser.Username = "nobody"
	levelTooHigh := authOnly.usm()
	levelTooHigh.SecurityLevel, levelTooHigh.PrivProtocol, levelTooHigh.PrivPassword = AuthPriv, "AES", testPrivPass

	tests := []struct {
		name string
		usm  USM
		want string // after "poll dev3 (addr): get scalars: "
	}{
		{"wrong auth password", wrongAuth, `authentication failure: auth failed for user "u_authpriv_sha256_aes": the device reports a wrong digest (usmStatsWrongDigests): check auth_password and auth_protocol (SHA256)`},
		{"wrong auth password without priv", wrongAuthNoPriv, `authentication failure: auth failed for user "u_authnopriv_sha_": the device reports a wrong digest (usmStatsWrongDigests): check auth_password and auth_protocol (SHA)`},
		{"wrong auth protocol", wrongAuthProto, `authentication failure: auth failed for user "u_authnopriv_sha_": the device reports a wrong digest (usmStatsWrongDigests): check auth_password and auth_protocol (MD5)`},
		{"wrong priv password", wrongPriv, `authentication failure: priv failed for user "u_authpriv_sha256_aes": the device cannot decrypt our requests: check priv_password and priv_protocol (AES)`},
		{"unknown user", unknownUser, `authentication failure: the device does not know user "nobody" (usmStatsUnknownUserNames)`},
		{"security level above the user's", levelTooHigh, `authentication failure: user "u_authnopriv_sha_" may not use security level authPriv on the device (usmStatsUnsupportedSecLevels)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := v3opts(dev.Addr(), tt.usm)
			o.Timeout, o.Retries = 2*time.Second, 1
			start := time.Now()
			r := NewPoller(nil).Poll(context.Background(), o)
			took := time.Since(start)
			want := fmt.Sprintf("poll dev3 (%s): get scalars: %s", dev.Addr(), tt.want)
			if r.Err == nil || r.Err.Error() != want {
				t.Errorf("err = %v\nwant %s", r.Err, want)
			}
			if !errors.Is(r.Err, ErrAuthFailure) || errors.Is(r.Err, ErrTimeout) {
				t.Errorf("err = %v: want ErrAuthFailure, not a timeout", r.Err)
			}
			// net-snmp drops a request it cannot decrypt without a word, so a
			// wrong priv password is known only after the request timed out
			// (and one authNoPriv probe answered); every other rejection is
			// reported at once.
			limit := o.Timeout
			if strings.Contains(tt.name, "priv password") {
				limit = o.Timeout*time.Duration(o.Retries+1) + time.Second
			}
			if took >= limit {
				t.Errorf("took %v: want less than %v", took, limit)
			}
		})
	}
}

// A v3 context name reaches the device: snmpd serves context "ctx1" (by
// proxying to itself) and the user may read only there.
func TestPollV3Context(t *testing.T) {
	port := snmpdtest.FreePort(t)
	dev := snmpdtest.Start(t, snmpdtest.Config{Port: port, Extra: []string{
		"createUser u_ctx SHA " + testAuthPass, "view all included .1", "rouser u_ctx auth -V all ctx1",
		fmt.Sprintf("proxy -Cn ctx1 -v 2c -c public 127.0.0.1:%d .1.3.6.1.2.1", port),
	}})
	u := USM{SecurityLevel: AuthNoPriv, Username: "u_ctx", AuthProtocol: "SHA", AuthPassword: testAuthPass, Context: "ctx1"}
	r := NewPoller(nil).Poll(context.Background(), v3opts(dev.Addr(), u))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if _, ok := find(r.Samples, "ifOperStatus", "lo"); !ok {
		t.Errorf("no ifOperStatus for lo through context ctx1: %v", r.Samples)
	}
	u.Context = ""
	r = NewPoller(nil).Poll(context.Background(), v3opts(dev.Addr(), u))
	if want := "get scalars: device answered AuthorizationError"; r.Err == nil || !strings.Contains(r.Err.Error(), want) {
		t.Errorf("default context: err = %v, want %q", r.Err, want)
	}
}

// After the device restarts (its engine boots go up, its engine time starts
// again) the cached engine is out of its time window: the poller must
// resynchronize, not stay stuck. After a restart that lost the engine's
// state (a new engine ID), it must discover the engine again.
func TestPollV3EngineRestart(t *testing.T) {
	c := usmCase{level: AuthPriv, auth: "SHA", priv: "AES"}
	dev := snmpdtest.Start(t, snmpdtest.Config{Users: usmUsers([]usmCase{c})})
	p := NewPoller(nil)
	o := v3opts(dev.Addr(), c.usm())
	poll := func(step string) engine {
		t.Helper()
		r := p.Poll(context.Background(), o)
		if r.Err != nil {
			t.Fatalf("%s: %v\nsnmpd output:\n%s", step, r.Err, dev.Output())
		}
		e, ok := p.engines.get(o, time.Now())
		if !ok {
			t.Fatalf("%s: no engine cached", step)
		}
		return e
	}
	first := poll("first poll")

	dev.Stop()
	dev.Start()
	again := poll("poll after restart")
	if again.id != first.id || again.boots <= first.boots {
		t.Errorf("after restart: engine %x boots %d, want engine %x with boots above %d", again.id, again.boots, first.id, first.boots)
	}

	dev.Stop()
	dev.ResetEngine()
	dev.Start()
	// The new engine's unknownEngineID report cannot be authenticated with
	// keys localized to the old one; the poll rediscovers and goes on.
	if r := p.Poll(context.Background(), o); r.Err != nil {
		t.Fatalf("first poll after the engine changed: %v", r.Err)
	}
	fresh, _ := p.engines.get(o, time.Now())
	if fresh.id == first.id {
		t.Errorf("engine id %x unchanged after snmpd lost its state; the test did not change the engine", fresh.id)
	}
}

// USM settings are checked before any packet is sent.
func TestUSMParams(t *testing.T) {
	tests := []struct {
		usm  USM
		want string
	}{
		{USM{SecurityLevel: AuthNoPriv}, "SNMPv3 needs a username"},
		{USM{Username: "u", SecurityLevel: "authpriv"}, `bad security level "authpriv" (want noAuthNoPriv, authNoPriv or authPriv)`},
		{USM{Username: "u", SecurityLevel: AuthNoPriv, AuthProtocol: "SHA1", AuthPassword: "x"}, `bad auth protocol "SHA1" (want one of MD5, SHA, SHA224, SHA256, SHA384, SHA512)`},
		{USM{Username: "u", SecurityLevel: AuthNoPriv, AuthProtocol: "SHA"}, "security level authNoPriv needs an auth password"},
		{USM{Username: "u", SecurityLevel: AuthPriv, AuthProtocol: "SHA", AuthPassword: "x", PrivProtocol: "3DES", PrivPassword: "y"}, `bad priv protocol "3DES" (want one of DES, AES, AES192, AES256, AES192C, AES256C)`},
		{USM{Username: "u", SecurityLevel: AuthPriv, AuthProtocol: "SHA", AuthPassword: "x", PrivProtocol: "AES"}, "security level authPriv needs a priv password"},
	}
	for _, tt := range tests {
		_, _, err := tt.usm.Params()
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v: err = %v, want %s", tt.usm, err, tt.want)
		}
	}
}

// A v3 device that does not answer at all is a timeout, not an auth failure.
func TestPollV3Timeout(t *testing.T) {
	c := usmCase{level: AuthPriv, auth: "SHA", priv: "AES"}
	o := v3opts(fmt.Sprintf("127.0.0.1:%d", snmpdtest.FreePort(t)), c.usm())
	o.Timeout, o.Retries = 200*time.Millisecond, 0
	r := NewPoller(nil).Poll(context.Background(), o)
	if !errors.Is(r.Err, ErrTimeout) || errors.Is(r.Err, ErrAuthFailure) {
		t.Errorf("err = %v, want ErrTimeout", r.Err)
	}
}
