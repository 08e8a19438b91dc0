package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secrets by reference: community_file, auth_password_file,
// priv_password_file and ${env:NAME} give the secret; it redacts like an
// inline one, and the redacted rendering names the files and loads again.
func TestSecretRefs(t *testing.T) {
	t.Setenv("NETAIOPS_TEST_COMMUNITY", "env-s3cret-community")
	t.Setenv("NETAIOPS_TEST_AUTH_PASSWORD", "env-auth-password")
	c, err := Load("testdata/valid-secret-refs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type secrets struct{ community, auth, priv string }
	want := []secrets{
		{"file-s3cret-community", "", ""},
		{"env-s3cret-community", "", ""},
		{"", "auth-from-file-1", "priv-from-file-2"}, // one trailing newline (LF or CRLF) is not part of the secret
		{"", "env-auth-password", ""},
	}
	for i, w := range want {
		tg := c.Targets[i]
		if got := (secrets{string(tg.Community), string(tg.AuthPassword), string(tg.PrivPassword)}); got != w {
			t.Errorf("targets[%d] (%s) = %+v, want %+v", i, tg.Name, got, w)
		}
	}
	out := c.Redacted() + fmt.Sprintf("%+v %v", c.Targets, c)
	for _, s := range []string{"file-s3cret-community", "env-s3cret-community", "auth-from-file-1", "priv-from-file-2", "env-auth-password"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q leaks: %s", s, out)
		}
	}
	if !strings.Contains(c.Redacted(), "community_file: testdata/secrets/community") {
		t.Errorf("Redacted() does not name the community file:\n%s", c.Redacted())
	}
	again, err := Parse([]byte(c.Redacted()), "redacted.yaml")
	if err != nil {
		t.Fatalf("Redacted() does not load: %v", err)
	}
	if string(again.Targets[0].Community) != "file-s3cret-community" || string(again.Targets[2].PrivPassword) != "priv-from-file-2" {
		t.Errorf("reloaded redacted config lost the file secrets: %+v", again.Targets)
	}

	// Set but empty is refused like unset.
	t.Setenv("NETAIOPS_TEST_COMMUNITY", "")
	_, err = Load("testdata/valid-secret-refs.yaml")
	if want := "testdata/valid-secret-refs.yaml:11: targets[1].community: environment variable NETAIOPS_TEST_COMMUNITY is empty"; err == nil || err.Error() != want {
		t.Errorf("empty variable: got %v, want %s", err, want)
	}
}

// A secret file is read at every load, so a rotated community is picked
// up by the next reload; a controller configuration may reference files on
// the agent's host, so the secret never reaches the controller.
func TestSecretFileRotationAndRemote(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "community")
	if err := os.WriteFile(secret, []byte("first-community\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "controller: {address: \"c:1\", insecure: true}\ntargets:\n  - name: a\n    address: 10.0.0.1\n    community_file: " + secret + "\n"
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || string(c.Targets[0].Community) != "first-community" {
		t.Fatalf("first load: %v %v", err, c)
	}
	if err := os.WriteFile(secret, []byte("second-community"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil || string(c.Targets[0].Community) != "second-community" {
		t.Fatalf("after rotation: %v %v", err, c)
	}

	local, err := Parse([]byte(remoteLocal), "agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := local.WithRemote([]byte("targets:\n  - name: r\n    address: 10.0.0.5\n    community_file: "+secret+"\n"), "controller config v2")
	if err != nil || string(m.Targets[0].Community) != "second-community" {
		t.Fatalf("remote with community_file: %v %+v", err, m)
	}
	_, _, err = local.WithRemote([]byte("targets:\n  - name: r\n    address: 10.0.0.5\n    community_file: "+filepath.Join(dir, "nope")+"\n"), "controller config v3")
	if want := "controller config v3:4: targets[0].community_file: cannot read: stat " + filepath.Join(dir, "nope") + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("remote with a missing file: got %v, want %s", err, want)
	}
	// A directory (or a FIFO, a device) is not read: it could block the load.
	_, _, err = local.WithRemote([]byte("targets:\n  - name: r\n    address: 10.0.0.5\n    community_file: "+dir+"\n"), "controller config v4")
	if want := "controller config v4:4: targets[0].community_file: " + dir + ": not a regular file"; err == nil || err.Error() != want {
		t.Errorf("remote with a directory: got %v, want %s", err, want)
	}
}
