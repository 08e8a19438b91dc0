// Package config owns the agent's configuration file: it decodes YAML
// strictly (unknown keys are errors), fills defaults and validates, so that
// every other package gets a complete, checked Config. Every error names the
// file, the line when known, the key path and what is allowed. It is a leaf:
// standard library and YAML only.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/netaiops/netaiops/collector/limits"
)

// Defaults, applied to keys the file leaves out.
const (
	DefaultDataDir          = "/var/lib/netaiops"
	DefaultOutboxMaxBytes   = 64 << 20 // 64 MiB of queued issue events
	MinOutboxMaxBytes       = 64 << 10
	DefaultInterval         = 10 * time.Second
	DefaultTimeout          = 2 * time.Second
	DefaultRetries          = 1
	DefaultMaxRepetitions   = 25
	DefaultUnreachableAfter = 3
	DefaultMaxConcurrency   = 64
	DefaultVersion          = "2c"
	DefaultCommunity        = "public"
	DefaultSNMPPort         = "161"
)

// Config is the agent's whole configuration after defaults are filled.
type Config struct {
	Agent      Agent      `yaml:"agent"`
	Controller Controller `yaml:"controller"`
	SNMP       SNMP       `yaml:"snmp"`
	Targets    []Target   `yaml:"targets"`
	Rules      Rules      `yaml:"rules"`    // detection rules; see rules.go
	Profiles   Profiles   `yaml:"profiles"` // what the SNMP collector reads; see collector.go
	Traps      *Traps     `yaml:"traps"`    // SNMP trap receiver; absent: off
	Flows      *Flows     `yaml:"flows"`    // flow capture and flow rules; absent: off; see flows.go

	// file and lines let Validate name where a bad value came from.
	file  string
	lines map[string]int
	// raw is the document Parse read: WithRemote merges into it.
	raw []byte
}

// Agent identifies this agent.
type Agent struct {
	ID      string            `yaml:"id"`       // default: the host name
	DataDir string            `yaml:"data_dir"` // default: /var/lib/netaiops
	Labels  map[string]string `yaml:"labels"`
	// OutboxMaxBytes bounds the issue events queued on disk for the
	// controller; when full, the oldest resolves and low-severity events go
	// first. Default 64 MiB; 0 in a Config built in code means the default.
	OutboxMaxBytes int `yaml:"outbox_max_bytes"`
}

// Controller says where the controller is.
type Controller struct {
	Address  string `yaml:"address"`  // host:port, required
	Insecure bool   `yaml:"insecure"` // plaintext gRPC instead of TLS (a controller on loopback)
	// CAFile verifies the controller's certificate (PEM); empty: the
	// system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the agent's client certificate and key for
	// mTLS; the certificate must name this agent's id.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the controller's
	// certificate (default: the host of address).
	ServerName string `yaml:"server_name"`
	// Token is this agent's bearer token; TokenFile names a file holding it
	// (read at every connection, so it can be rotated). At most one.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Pin lists sections of this file the controller's configuration
	// cannot override: snmp, targets.
	Pin []string `yaml:"pin"`
}

// SNMP holds the polling settings every target inherits.
type SNMP struct {
	Interval         time.Duration `yaml:"interval"`          // default 10s
	Timeout          time.Duration `yaml:"timeout"`           // per request, default 2s
	Retries          int           `yaml:"retries"`           // default 1
	MaxRepetitions   uint32        `yaml:"max_repetitions"`   // GetBulk, default 25
	UnreachableAfter int           `yaml:"unreachable_after"` // failed polls before device_unreachable, default 3
	MaxConcurrency   int           `yaml:"max_concurrency"`   // polls in flight, default 64
	// MaxOIDsPerRequest bounds the OIDs of one Get; 0 or absent: 60.
	MaxOIDsPerRequest int `yaml:"max_oids_per_request,omitempty"`
	// MaxWalksPerDevice bounds the tables walked at once on one device, each
	// on its own socket; 0 or absent: 2.
	MaxWalksPerDevice int `yaml:"max_walks_per_device,omitempty"`
}

// Target is one device to poll. After Load, Address is host:port and
// Interval, Timeout and Retries hold the effective values (the target's own,
// or those inherited from SNMP).
type Target struct {
	Name      string `yaml:"name"`
	Address   string `yaml:"address"`             // host or host:port; port default 161
	Version   string `yaml:"version"`             // "1", "2c" or "3", default "2c"
	Community Secret `yaml:"community,omitempty"` // v1/v2c only, default "public"
	// CommunityFile names a file holding the community instead.
	CommunityFile string        `yaml:"community_file,omitempty"`
	Interval      time.Duration `yaml:"interval"` // 0: inherit snmp.interval
	Timeout       time.Duration `yaml:"timeout"`  // 0: inherit snmp.timeout
	Retries       *int          `yaml:"retries"`  // nil: inherit snmp.retries

	// SNMPv3 (USM), version "3" only.
	SecurityLevel string `yaml:"security_level,omitempty"` // noAuthNoPriv, authNoPriv or authPriv; required
	Username      string `yaml:"username,omitempty"`       // required
	AuthProtocol  string `yaml:"auth_protocol,omitempty"`  // MD5, SHA, SHA224, SHA256, SHA384, SHA512
	AuthPassword  Secret `yaml:"auth_password,omitempty"`  // at least 8 characters
	// AuthPasswordFile names a file holding the auth password instead.
	AuthPasswordFile string `yaml:"auth_password_file,omitempty"`
	PrivProtocol     string `yaml:"priv_protocol,omitempty"` // DES, AES, AES192, AES256, AES192C, AES256C
	PrivPassword     Secret `yaml:"priv_password,omitempty"` // at least 8 characters
	// PrivPasswordFile names a file holding the priv password instead.
	PrivPasswordFile string `yaml:"priv_password_file,omitempty"`
	Context          string `yaml:"context,omitempty"` // context name; default the default context ""

	Profiles []string `yaml:"profiles,omitempty"` // what to poll; absent: profiles.default
}

// SNMPv3 choices, as the config spells them. AES192 and AES256 use the
// Blumenthal key extension (net-snmp's AES-192/AES-256), AES192C and AES256C
// the Reeder one (Cisco's).
var (
	SecurityLevels = []string{"noAuthNoPriv", "authNoPriv", "authPriv"}
	AuthProtocols  = []string{"MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"}
	PrivProtocols  = []string{"DES", "AES", "AES192", "AES256", "AES192C", "AES256C"}
)

// minPasswordLen is USM's shortest password (RFC 3414 section 11.2; net-snmp
// refuses shorter ones).
const minPasswordLen = 8

// Error is one problem with a configuration: where it is and what is wrong.
type Error struct {
	File string // "" for a Config not read from a file
	Line int    // 0 when unknown
	Path string // key path: targets[1].address; "" for the whole file
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads, decodes, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes, defaults and validates data; filename is used in errors
// only. A file with several problems returns them all, one per line.
func Parse(data []byte, filename string) (*Config, error) {
	c := &Config{file: filename, lines: map[string]int{}, raw: data}
	if err := c.decode(data); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// finish resolves secret files, fills defaults and validates a decoded
// Config; it returns every problem.
func (c *Config) finish() error {
	ferr := c.resolveSecretFiles()
	c.setDefaults()
	return errors.Join(ferr, c.Validate())
}

func (c *Config) decode(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file: Validate says what is missing
		}
		return c.yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return &Error{File: c.file, Line: extra.Line, Msg: "more than one YAML document (want exactly one)"}
	} else if !errors.Is(err, io.EOF) {
		return c.yamlError(err)
	}
	d := decoder{file: c.file, lines: c.lines}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.value(root, c, "", 0)
	return errors.Join(d.errs...)
}

// yamlError turns the YAML library's "yaml: line 3: ..." into file:3: ...
func (c *Config) yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	return &Error{File: c.file, Line: line, Msg: "invalid YAML: " + msg}
}

// isSet reports whether the file gave a value for the key path.
func (c *Config) isSet(path string) bool {
	_, ok := c.lines[path]
	return ok
}

// setDefaults fills keys the file left out. Keys the file set, even to zero,
// are kept so that Validate can reject them (snmp.retries: 0 is valid,
// snmp.interval: 0s is not).
func (c *Config) setDefaults() {
	if c.Agent.ID == "" && !c.isSet("agent.id") {
		if h, err := os.Hostname(); err == nil {
			c.Agent.ID = h
		}
	}
	if c.Agent.DataDir == "" && !c.isSet("agent.data_dir") {
		c.Agent.DataDir = DefaultDataDir
	}
	if !c.isSet("agent.outbox_max_bytes") {
		c.Agent.OutboxMaxBytes = DefaultOutboxMaxBytes
	}
	s := &c.SNMP
	if !c.isSet("snmp.interval") {
		s.Interval = DefaultInterval
	}
	if !c.isSet("snmp.timeout") {
		s.Timeout = DefaultTimeout
	}
	if !c.isSet("snmp.retries") {
		s.Retries = DefaultRetries
	}
	if !c.isSet("snmp.max_repetitions") {
		s.MaxRepetitions = DefaultMaxRepetitions
	}
	if !c.isSet("snmp.unreachable_after") {
		s.UnreachableAfter = DefaultUnreachableAfter
	}
	if !c.isSet("snmp.max_concurrency") {
		s.MaxConcurrency = DefaultMaxConcurrency
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d].", i)
		if !c.isSet(p + "version") {
			t.Version = DefaultVersion
		}
		if !c.isSet(p+"community") && t.CommunityFile == "" && t.Version != "3" {
			t.Community = DefaultCommunity
		}
		if addr, err := normalizeAddress(t.Address); err == nil {
			t.Address = addr
		}
		t.inherit(s)
	}
	c.setRuleDefaults()
	c.setFlowDefaults()
}

// inherit replaces "not set" overrides by the SNMP section's values.
func (t *Target) inherit(s *SNMP) {
	if t.Interval == 0 {
		t.Interval = s.Interval
	}
	if t.Timeout == 0 {
		t.Timeout = s.Timeout
	}
	if t.Retries == nil {
		r := s.Retries
		t.Retries = &r
	}
}

// EffectiveRetries returns the target's retries, or the inherited value when
// the target has no override (a Config built in code rather than loaded).
func (t Target) EffectiveRetries(s SNMP) int {
	if t.Retries != nil {
		return *t.Retries
	}
	return s.Retries
}

// normalizeAddress turns "host" or "host:port" into "host:port" with port
// 161 by default, and checks the port.
func normalizeAddress(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("required")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		// No port: a plain host name, an IPv4 address, a bare or bracketed IPv6 address.
		h := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if net.ParseIP(h) == nil && strings.ContainsAny(h, ":[]") {
			return "", fmt.Errorf("bad address %q: want host or host:port", addr)
		}
		host, port = h, DefaultSNMPPort
	}
	if host == "" {
		return "", fmt.Errorf("bad address %q: empty host", addr)
	}
	if strings.ContainsAny(host, " \t/") {
		return "", fmt.Errorf("bad address %q: bad host %q", addr, host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("bad address %q: bad port %q (want 1-65535)", addr, port)
	}
	return net.JoinHostPort(host, port), nil
}

// Validate checks a defaulted Config and returns every problem found, one
// per line, section by section. Load and Parse call it; call it again after
// changing a Config in code.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &Error{File: c.file, Line: c.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
	}

	if c.Agent.ID == "" {
		bad("agent.id", "required (the host name could not be used as the default)")
	} else if strings.ContainsAny(c.Agent.ID, " \t\n/") {
		bad("agent.id", "bad id %q: must not contain whitespace or \"/\"", c.Agent.ID)
	} else if n := len(c.Agent.ID); n > limits.MaxAgentIDBytes {
		bad("agent.id", "%d bytes, at most %d (the controller's limit)", n, limits.MaxAgentIDBytes)
	}
	if c.Agent.DataDir == "" {
		bad("agent.data_dir", "required")
	}
	if n := c.Agent.OutboxMaxBytes; n < 0 || (n < MinOutboxMaxBytes && (n != 0 || c.isSet("agent.outbox_max_bytes"))) {
		bad("agent.outbox_max_bytes", "must be at least %d (64 KiB), got %d", MinOutboxMaxBytes, n)
	}
	if n := len(c.Agent.Labels); n > limits.MaxLabels {
		bad("agent.labels", "%d labels, at most %d (the controller's limit)", n, limits.MaxLabels)
	}
	for _, k := range sortedKeys(c.Agent.Labels) {
		switch v := c.Agent.Labels[k]; {
		case k == "":
			bad("agent.labels", "empty label name")
		case len(k) > limits.MaxLabelKeyBytes:
			bad("agent.labels", "label name %.32q...: %d bytes, at most %d (the controller's limit)", k, len(k), limits.MaxLabelKeyBytes)
		case len(v) > limits.MaxLabelValueBytes:
			bad("agent.labels", "label %q: value of %d bytes, at most %d (the controller's limit)", k, len(v), limits.MaxLabelValueBytes)
		}
	}

	if c.Controller.Address == "" {
		bad("controller.address", "required (host:port of the controller)")
	} else if host, port, err := net.SplitHostPort(c.Controller.Address); err != nil || host == "" {
		bad("controller.address", "bad address %q: want host:port", c.Controller.Address)
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		bad("controller.address", "bad address %q: bad port %q (want 1-65535)", c.Controller.Address, port)
	}
	if cc := c.Controller; cc.Insecure {
		for _, k := range []struct{ key, val string }{{"ca_file", cc.CAFile}, {"cert_file", cc.CertFile}, {"key_file", cc.KeyFile}, {"server_name", cc.ServerName}} {
			if k.val != "" {
				bad("controller."+k.key, "TLS setting with controller.insecure: true (plaintext); remove one of them")
			}
		}
	} else if (cc.CertFile == "") != (cc.KeyFile == "") {
		if cc.CertFile == "" {
			bad("controller.cert_file", "required with controller.key_file (the client certificate for mTLS)")
		} else {
			bad("controller.key_file", "required with controller.cert_file (the client certificate's key)")
		}
	}
	if c.Controller.Token != "" && c.Controller.TokenFile != "" {
		bad("controller.token_file", "set with controller.token; use one of them")
	}
	for i, p := range c.Controller.Pin {
		if !RemoteSections[p] {
			bad(fmt.Sprintf("controller.pin[%d]", i), "bad section %q (allowed: snmp, targets)", p)
		}
	}

	s := c.SNMP
	if s.Interval <= 0 {
		bad("snmp.interval", "must be positive, got %s", s.Interval)
	}
	if s.Timeout <= 0 {
		bad("snmp.timeout", "must be positive, got %s", s.Timeout)
	} else if s.Interval > 0 && s.Timeout >= s.Interval {
		bad("snmp.timeout", "must be shorter than snmp.interval (%s), got %s", s.Interval, s.Timeout)
	}
	if s.Retries < 0 {
		bad("snmp.retries", "must not be negative, got %d", s.Retries)
	}
	if s.MaxRepetitions < 1 {
		bad("snmp.max_repetitions", "must be at least 1, got %d", s.MaxRepetitions)
	}
	if s.UnreachableAfter < 1 {
		bad("snmp.unreachable_after", "must be at least 1, got %d", s.UnreachableAfter)
	}
	if s.MaxConcurrency < 1 {
		bad("snmp.max_concurrency", "must be at least 1, got %d", s.MaxConcurrency)
	}

	if n := len(c.Targets); n > limits.MaxTargets {
		bad("targets", "%d targets, at most %d (the controller's limit)", n, limits.MaxTargets)
	}
	first, targetBytes := map[string]int{}, 0
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		switch {
		case t.Name == "":
			bad(p+".name", "required")
		case strings.ContainsAny(t.Name, " \t\n/"):
			bad(p+".name", "bad name %q: must not contain whitespace or \"/\"", t.Name)
		case len(t.Name) > limits.MaxTargetNameBytes:
			bad(p+".name", "%d bytes, at most %d (the controller's limit)", len(t.Name), limits.MaxTargetNameBytes)
		default:
			if j, dup := first[t.Name]; dup {
				bad(p+".name", "duplicate target name %q (first at targets[%d])", t.Name, j)
			} else {
				first[t.Name] = i
			}
		}
		if a, err := normalizeAddress(t.Address); err != nil {
			bad(p+".address", "%s", err)
		} else if len(a) > limits.MaxTargetAddressBytes {
			bad(p+".address", "%d bytes, at most %d (the controller's limit)", len(a), limits.MaxTargetAddressBytes)
		} else {
			targetBytes += len(t.Name) + len(a) + len(t.Version)
		}
		switch t.Version {
		case "1", "2c":
			if t.Community == "" && t.CommunityFile == "" { // a file's problem is reported by resolveSecretFiles
				bad(p+".community", "must not be empty")
			}
			for _, k := range t.v3Keys() {
				bad(p+"."+k, "only for version 3 (this target has version %q)", t.Version)
			}
		case "3":
			c.validateV3(t, p, bad)
		default:
			bad(p+".version", "bad version %q (allowed: \"1\", \"2c\", \"3\")", t.Version)
		}
		if t.Interval < 0 {
			bad(p+".interval", "must not be negative, got %s (0 or absent: inherit snmp.interval)", t.Interval)
		}
		if t.Timeout < 0 {
			bad(p+".timeout", "must not be negative, got %s (0 or absent: inherit snmp.timeout)", t.Timeout)
		}
		if t.Retries != nil && *t.Retries < 0 && *t.Retries != s.Retries { // an inherited value was reported at snmp.retries
			bad(p+".retries", "must not be negative, got %d", *t.Retries)
		}
		interval, timeout := t.Interval, t.Timeout
		if interval == 0 {
			interval = s.Interval
		}
		if timeout == 0 {
			timeout = s.Timeout
		}
		ownInterval := t.Interval > 0 && t.Interval != s.Interval
		ownTimeout := t.Timeout > 0 && t.Timeout != s.Timeout
		if interval > 0 && timeout > 0 && timeout >= interval && (ownInterval || ownTimeout) {
			if ownTimeout {
				bad(p+".timeout", "must be shorter than the target's interval (%s), got %s", interval, timeout)
			} else {
				bad(p+".interval", "must be longer than the target's timeout (%s), got %s", timeout, interval)
			}
		}
	}
	if targetBytes > limits.MaxTargetListBytes {
		bad("targets", "%d bytes of names, addresses and versions, at most %d (the controller's limit)", targetBytes, limits.MaxTargetListBytes)
	}
	c.validateRules(bad)
	c.validateCollector(bad)
	c.validateFlows(bad)
	return errors.Join(errs...)
}

// v3Keys lists the SNMPv3 keys a target sets.
func (t Target) v3Keys() []string {
	var keys []string
	for _, kv := range []struct {
		key string
		set bool
	}{
		{"security_level", t.SecurityLevel != ""}, {"username", t.Username != ""},
		{"auth_protocol", t.AuthProtocol != ""}, {t.secretKey("auth_password"), t.AuthPassword != "" || t.AuthPasswordFile != ""},
		{"priv_protocol", t.PrivProtocol != ""}, {t.secretKey("priv_password"), t.PrivPassword != "" || t.PrivPasswordFile != ""},
		{"context", t.Context != ""},
	} {
		if kv.set {
			keys = append(keys, kv.key)
		}
	}
	return keys
}

// validateV3 checks an SNMPv3 target's USM settings.
func (c *Config) validateV3(t Target, p string, bad func(path, format string, args ...any)) {
	if t.Community != "" || t.CommunityFile != "" {
		bad(p+"."+t.secretKey("community"), "not used by version 3 (use username and the auth/priv keys)")
	}
	if t.Username == "" {
		bad(p+".username", "required for version 3")
	}
	auth, priv := false, false
	switch t.SecurityLevel {
	case "noAuthNoPriv":
	case "authNoPriv":
		auth = true
	case "authPriv":
		auth, priv = true, true
	case "":
		bad(p+".security_level", "required for version 3 (allowed: %s)", strings.Join(SecurityLevels, ", "))
		return
	default:
		bad(p+".security_level", "bad security level %q (allowed: %s)", t.SecurityLevel, strings.Join(SecurityLevels, ", "))
		return
	}
	secret := func(key, proto, protoKey string, pw Secret, protos []string, need bool) {
		fromFile := t.secretKey(key) != key
		key = t.secretKey(key)
		if !need {
			if proto != "" {
				bad(p+"."+protoKey, "not used with security_level %s", t.SecurityLevel)
			}
			if pw != "" || fromFile {
				bad(p+"."+key, "not used with security_level %s", t.SecurityLevel)
			}
			return
		}
		if proto == "" {
			bad(p+"."+protoKey, "required with security_level %s (allowed: %s)", t.SecurityLevel, strings.Join(protos, ", "))
		} else if !slices.Contains(protos, proto) {
			bad(p+"."+protoKey, "bad protocol %q (allowed: %s)", proto, strings.Join(protos, ", "))
		}
		if pw == "" {
			if !fromFile { // a file's problem is reported by resolveSecretFiles
				bad(p+"."+key, "required with security_level %s", t.SecurityLevel)
			}
		} else if len(pw) < minPasswordLen {
			bad(p+"."+key, "too short: USM passwords have at least %d characters", minPasswordLen)
		}
	}
	secret("auth_password", t.AuthProtocol, "auth_protocol", t.AuthPassword, AuthProtocols, auth)
	secret("priv_password", t.PrivProtocol, "priv_protocol", t.PrivPassword, PrivProtocols, priv)
}

// line returns the line of path in the file, or of its nearest enclosing
// key (targets[0] for a missing targets[0].address), or 0.
func (c *Config) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Redacted renders the effective configuration as YAML with every secret
// replaced by "<secret>": what --check-config prints and what status pages show.
func (c *Config) Redacted() string {
	r := *c
	r.Targets = withoutFileSecrets(c.Targets)
	out, err := yaml.Marshal(&r)
	if err != nil {
		// Config holds only strings, numbers, maps and slices; marshalling cannot fail.
		return fmt.Sprintf("# cannot render config: %v\n", err)
	}
	return string(out)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
