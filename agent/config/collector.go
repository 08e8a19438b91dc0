package config

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Profiles says what the SNMP collector reads. Profile names are those of
// collector/snmp/profile: the shipped system, if_mib, host_resources,
// ucd_snmp, entity_sensor, lldp_mib, and those of the user's files (a user
// profile of a shipped name replaces it). Whether a name exists is checked
// when the agent loads the files (agent.New), not here: config is a leaf.
type Profiles struct {
	Default []string `yaml:"default,omitempty"` // profiles of targets that name none; absent: [system, if_mib]
	Files   []string `yaml:"files,omitempty"`   // user profile files (YAML, see collector/snmp/profile)
}

// DefaultProfiles are the profiles of a target when neither it nor
// profiles.default names any.
var DefaultProfiles = []string{"system", "if_mib"}

// Traps configures the SNMP trap and inform receiver; a nil *Traps (the key
// absent) leaves it off.
type Traps struct {
	Listen      string     `yaml:"listen"`                // host:port, e.g. 127.0.0.1:9162
	Communities []Secret   `yaml:"communities,omitempty"` // v1/v2c communities accepted; absent: any
	Users       []TrapUser `yaml:"users,omitempty"`       // SNMPv3 users accepted
}

// TrapUser is an SNMPv3 user whose traps and informs are accepted.
type TrapUser struct {
	Username      string `yaml:"username"`
	SecurityLevel string `yaml:"security_level"` // noAuthNoPriv, authNoPriv or authPriv
	AuthProtocol  string `yaml:"auth_protocol,omitempty"`
	AuthPassword  Secret `yaml:"auth_password,omitempty"`
	PrivProtocol  string `yaml:"priv_protocol,omitempty"`
	PrivPassword  Secret `yaml:"priv_password,omitempty"`
}

var profileNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// EffectiveProfiles returns the profiles target t polls.
func (c *Config) EffectiveProfiles(t Target) []string {
	switch {
	case len(t.Profiles) > 0:
		return t.Profiles
	case len(c.Profiles.Default) > 0:
		return c.Profiles.Default
	}
	return DefaultProfiles
}

// validateCollector checks the SNMP collector's keys: profiles, the walk
// limits and the trap receiver.
func (c *Config) validateCollector(bad func(path, format string, args ...any)) {
	if n := c.SNMP.MaxOIDsPerRequest; n < 0 || (n == 0 && c.isSet("snmp.max_oids_per_request")) {
		bad("snmp.max_oids_per_request", "must be at least 1, got %d", n)
	}
	if n := c.SNMP.MaxWalksPerDevice; n < 0 || (n == 0 && c.isSet("snmp.max_walks_per_device")) {
		bad("snmp.max_walks_per_device", "must be at least 1, got %d", n)
	}
	names := func(path string, list []string) {
		seen := map[string]bool{}
		for i, n := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case !profileNameRE.MatchString(n):
				bad(p, "bad profile name %q: letters, digits and _ only", n)
			case seen[n]:
				bad(p, "profile %q listed twice", n)
			}
			seen[n] = true
		}
		if list != nil && len(list) == 0 && c.isSet(path) {
			bad(path, "empty list: name at least one profile, or leave the key out for %s", strings.Join(DefaultProfiles, ", "))
		}
	}
	names("profiles.default", c.Profiles.Default)
	for i, f := range c.Profiles.Files {
		if strings.TrimSpace(f) == "" {
			bad(fmt.Sprintf("profiles.files[%d]", i), "empty file name")
		}
	}
	for i, t := range c.Targets {
		names(fmt.Sprintf("targets[%d].profiles", i), t.Profiles)
	}
	if c.Traps == nil {
		return
	}
	tr := c.Traps
	if tr.Listen == "" {
		bad("traps.listen", "required (host:port to receive traps on, e.g. 127.0.0.1:9162)")
	} else if host, port, err := net.SplitHostPort(tr.Listen); err != nil {
		bad("traps.listen", "bad address %q: want host:port", tr.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || (host != "" && net.ParseIP(host) == nil && strings.ContainsAny(host, " /")) {
		bad("traps.listen", "bad address %q: bad port %q (want 0-65535)", tr.Listen, port)
	}
	for i, s := range tr.Communities {
		if s == "" {
			bad(fmt.Sprintf("traps.communities[%d]", i), "must not be empty")
		}
	}
	users := map[string]int{}
	for i, u := range tr.Users {
		p := fmt.Sprintf("traps.users[%d]", i)
		if u.Username == "" {
			bad(p+".username", "required")
		} else if j, dup := users[u.Username]; dup {
			bad(p+".username", "duplicate user %q (first at traps.users[%d])", u.Username, j)
		} else {
			users[u.Username] = i
		}
		t := Target{Version: "3", Username: u.Username, SecurityLevel: u.SecurityLevel, AuthProtocol: u.AuthProtocol,
			AuthPassword: u.AuthPassword, PrivProtocol: u.PrivProtocol, PrivPassword: u.PrivPassword}
		if u.Username == "" {
			t.Username = "-" // reported above
		}
		c.validateV3(t, p, bad)
	}
}
