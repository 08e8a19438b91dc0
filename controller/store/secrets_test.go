package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	secretCommunity = "s3cret-community-7f3a"
	secretAuthPass  = "v3-auth-pass-91c2e"
	secretDoc       = "targets:\n  - name: a\n    address: 10.0.0.1\n    community: " + secretCommunity + "\n" +
		"  - name: b\n    address: 10.0.0.2\n    version: \"3\"\n    security_level: authNoPriv\n    username: ops\n" +
		"    auth_protocol: SHA\n    auth_password: " + secretAuthPass + "\n"
)

// dbBytes is the content of the database file and its WAL and shm files.
func dbBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func assertNoSecrets(t *testing.T, path string) {
	t.Helper()
	b := dbBytes(t, path)
	if len(b) == 0 {
		t.Fatalf("%s: no bytes read", path)
	}
	for _, s := range []string{secretCommunity, secretAuthPass} {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds the secret %q in clear", path, s)
		}
	}
}

func TestConfigsEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db", "controller.db")
	s, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	set, _, err := s.SetConfig(ctx, Config{Source: "agent/a1", AgentID: "a1", YAML: secretDoc})
	if err != nil {
		t.Fatal(err)
	}
	// Before and after close: neither the database, nor its WAL, nor the
	// shared memory holds the secrets.
	assertNoSecrets(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, path)

	s2, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatalf("reopen with the same key: %v", err)
	}
	got, err := s2.GetConfig(ctx, "agent/a1")
	if err != nil || got.YAML != secretDoc || got.Hash != set.Hash {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if again, changed, err := s2.SetConfig(ctx, Config{Source: "agent/a1", AgentID: "a1", YAML: secretDoc}); err != nil || changed || again.Version != set.Version {
		t.Errorf("same document after restart: changed %v version %d err %v", changed, again.Version, err)
	}
	s2.Close()
}

func TestConfigHashRevealsNothing(t *testing.T) {
	s := openTest(t, "")
	h := s.ConfigHash(secretDoc)
	plain := sha256.Sum256([]byte(secretDoc))
	if len(h) != 64 || h == hex.EncodeToString(plain[:]) {
		t.Fatalf("hash %q is the plain SHA-256 of the document", h)
	}
	// Another controller (another key) gives another hash for the same document.
	other := openTest(t, "")
	if other.ConfigHash(secretDoc) == h {
		t.Error("two keys give the same hash")
	}
	if s.ConfigHash(secretDoc) != h {
		t.Error("hash is not deterministic")
	}
}

func TestKeyFileErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "controller.db")
	s, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SetConfig(ctx, Config{Source: "agent/a1", AgentID: "a1", YAML: secretDoc}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	keyFile := filepath.Join(dir, KeyFileName)

	// A wrong key: refused at open, naming the key file.
	good, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Repeat([]byte{7}, KeySize)
	if err := os.WriteFile(keyFile, wrong, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, testLogger())
	if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "decrypt configuration agent/a1 with key file "+keyFile+": secret key: wrong key") {
		t.Errorf("wrong key: %v", err)
	}
	// A missing key: not silently replaced by a new one.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, testLogger())
	if !errors.Is(err, ErrKey) || !strings.Contains(err.Error(), "key file "+keyFile+": secret key: it does not exist, but the database holds encrypted configurations") {
		t.Errorf("missing key: %v", err)
	}
	if _, serr := os.Stat(keyFile); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("a missing key file was recreated: %v", serr)
	}
	// A key file of the wrong size.
	if err := os.WriteFile(keyFile, good[:16], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, path, testLogger())
	if err == nil || !strings.Contains(err.Error(), "key file "+keyFile+": secret key: 16 bytes, want 32") {
		t.Errorf("short key: %v", err)
	}
	// The right key, kept elsewhere (--secret-key-file), opens it.
	elsewhere := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(elsewhere, good, 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(ctx, path, testLogger(), WithKeyFile(elsewhere))
	if err != nil {
		t.Fatalf("right key in another file: %v", err)
	}
	if c, err := s3.GetConfig(ctx, "agent/a1"); err != nil || c.YAML != secretDoc {
		t.Errorf("read back: %v %v", c.YAML, err)
	}
	s3.Close()
}

// A database written before encryption existed (plaintext document, plain
// SHA-256 hash) is encrypted and re-hashed at open, and its plaintext
// leaves the file.
func TestPlaintextConfigsMigrated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "controller.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrate(ctx, db, ms, t0); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secretDoc))
	oldHash := hex.EncodeToString(sum[:])
	if _, err := db.ExecContext(ctx, `INSERT INTO configs (source, agent_id, labels, yaml, hash, version, update_time, updated_by)
		VALUES ('agent/a1', 'a1', '{}', ?, ?, 1, 0, 'root')`, secretDoc, oldHash); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dbBytes(t, path), []byte(secretCommunity)) {
		t.Fatal("fixture: the old database does not hold the community in clear")
	}

	s, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, path)
	c, err := s.GetConfig(ctx, "agent/a1")
	if err != nil || c.YAML != secretDoc || c.Version != 1 || c.UpdatedBy != "root" {
		t.Fatalf("migrated config: %+v %v", c, err)
	}
	if c.Hash == oldHash || c.Hash != s.ConfigHash(secretDoc) {
		t.Errorf("hash %q not recomputed (old %q)", c.Hash, oldHash)
	}
	s.Close()
	assertNoSecrets(t, path)
	if fi, err := os.Stat(filepath.Join(dir, KeyFileName)); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Errorf("key file: %v %v", fi, err)
	}
}

func TestDatabaseModes(t *testing.T) {
	ctx := context.Background()
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	// Created so.
	dir := filepath.Join(t.TempDir(), "new")
	path := filepath.Join(dir, "controller.db")
	s, err := Open(ctx, path, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SetConfig(ctx, Config{Source: "agent/a1", AgentID: "a1", YAML: secretDoc}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, filepath.Join(dir, KeyFileName): 0o600} {
		if got := mode(p); got != want {
			t.Errorf("new %s: mode %#o, want %#o", p, got, want)
		}
	}
	s.Close()

	// Tightened on start when looser.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(dir, KeyFileName)} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncLog
	s, err = Open(ctx, path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, filepath.Join(dir, KeyFileName): 0o600} {
		if got := mode(p); got != want {
			t.Errorf("existing %s: mode %#o, want %#o", p, got, want)
		}
	}
	for _, want := range []string{"database directory was open to others: mode tightened", "database file was readable by others: mode tightened", "key file was readable by others: mode tightened"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line %q in:\n%s", want, logs.String())
		}
	}

	// A directory that holds other files (a working directory) is not
	// changed; the files are.
	shared := filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs2 syncLog
	s2, err := Open(ctx, filepath.Join(shared, "controller.db"), logs2.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := mode(shared); got != 0o755 {
		t.Errorf("a shared directory was changed to %#o", got)
	}
	if got := mode(filepath.Join(shared, "controller.db")); got != 0o600 {
		t.Errorf("database in a shared directory: mode %#o, want 0600", got)
	}
	if !strings.Contains(logs2.String(), "database directory is open to others and not the database's own: left as it is") {
		t.Errorf("no warning about the shared directory:\n%s", logs2.String())
	}
}

// syncLog collects log output for assertions.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *syncLog) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }
