package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secrets need not be written into the file. Any Secret value may be a
// reference to an environment variable, "${env:NAME}", and a target's
// community and SNMPv3 passwords may come from files (community_file,
// auth_password_file, priv_password_file), read at every load so that they
// can be rotated. A file's content is the secret, without one trailing
// newline. A pushed controller configuration may use both: the secret then
// never reaches the controller.

// envRef is the whole value of a Secret that names an environment variable.
var envRef = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)

// MaxSecretFileBytes bounds a secret file: a community or a password, not
// a document.
const MaxSecretFileBytes = 4096

// decodeSecret decodes a Secret scalar, resolving "${env:NAME}".
func (d *decoder) decodeSecret(n *yaml.Node, path string) (Secret, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", kindName(n))
		return "", false
	}
	m := envRef.FindStringSubmatch(n.Value)
	if m == nil {
		return Secret(n.Value), true
	}
	v, ok := os.LookupEnv(m[1])
	switch {
	case !ok:
		d.errorf(n, path, "environment variable %s is not set", m[1])
		return "", false
	case v == "":
		d.errorf(n, path, "environment variable %s is empty", m[1])
		return "", false
	}
	return Secret(v), true
}

// readSecretFile reads a secret from a file.
func readSecretFile(name string) (Secret, error) {
	// Stat first: opening a FIFO or a terminal would block the load.
	fi, err := os.Stat(name)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", name, err)
	}
	if len(b) > MaxSecretFileBytes {
		return "", fmt.Errorf("%s: more than %d bytes; a secret file holds only the secret", name, MaxSecretFileBytes)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return Secret(s), nil
}

// secretRef pairs an inline secret key of a target with its file key.
type secretRef struct {
	key, fileKey string
	value        *Secret
	file         string
}

func (t *Target) secretRefs() []secretRef {
	return []secretRef{
		{"community", "community_file", &t.Community, t.CommunityFile},
		{"auth_password", "auth_password_file", &t.AuthPassword, t.AuthPasswordFile},
		{"priv_password", "priv_password_file", &t.PrivPassword, t.PrivPasswordFile},
	}
}

// resolveSecretFiles reads the targets' secret files into their secrets.
// It runs after decoding and before defaults; errors name the file key.
func (c *Config) resolveSecretFiles() error {
	var errs []error
	for i := range c.Targets {
		t := &c.Targets[i]
		p := fmt.Sprintf("targets[%d].", i)
		for _, r := range t.secretRefs() {
			if r.file == "" {
				continue
			}
			if c.isSet(p + r.key) {
				errs = append(errs, &Error{File: c.file, Line: c.line(p + r.fileKey), Path: p + r.fileKey,
					Msg: fmt.Sprintf("set with %s%s; use one of them", p, r.key)})
				continue
			}
			s, err := readSecretFile(r.file)
			if err != nil {
				errs = append(errs, &Error{File: c.file, Line: c.line(p + r.fileKey), Path: p + r.fileKey, Msg: err.Error()})
				continue
			}
			*r.value = s
		}
	}
	return errors.Join(errs...)
}

// secretKey names the key a target's secret came from: the file key when
// the file gave it, so messages point at what the file says.
func (t Target) secretKey(key string) string {
	for _, r := range t.secretRefs() {
		if r.key == key && r.file != "" {
			return r.fileKey
		}
	}
	return key
}

// withoutFileSecrets returns the targets with the secrets that came from
// files cleared, so that a rendering shows the file key alone and parses
// again.
func withoutFileSecrets(ts []Target) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		for _, r := range t.secretRefs() {
			if r.file != "" {
				*r.value = ""
			}
		}
		out[i] = t
	}
	return out
}
