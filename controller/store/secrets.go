package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFileName is the key file Open uses, next to the database, unless
// WithKeyFile names another.
const KeyFileName = "controller.key"

// KeySize is the length of a key file: 32 random bytes.
const KeySize = 32

// ErrKey is returned by Open when the key file is missing while the
// database holds encrypted configurations, or does not decrypt them.
var ErrKey = errors.New("secret key")

// sealedPrefix starts a configuration document encrypted at rest:
// "enc:v1:" then base64 of nonce||AES-256-GCM ciphertext. A plaintext
// document cannot start so: the controller accepts only YAML mappings.
const sealedPrefix = "enc:v1:"

// secrets holds the keys derived from the controller's key file: one
// encrypts configuration documents at rest, the other computes their
// content hashes (HMAC), so a hash shown to a viewer reveals nothing about
// the secrets in the document.
type secrets struct {
	file    string
	aead    cipher.AEAD
	hashKey []byte
}

func newSecrets(file string, key []byte) (*secrets, error) {
	encKey, err := hkdf.Key(sha256.New, key, nil, "netaiops controller config encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key from %s: %w", file, err)
	}
	hashKey, err := hkdf.Key(sha256.New, key, nil, "netaiops controller config hash v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive hash key from %s: %w", file, err)
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	return &secrets{file: file, aead: aead, hashKey: hashKey}, nil
}

// hash is the lowercase hex HMAC-SHA256 of a document under the hash key.
func (k *secrets) hash(doc string) string {
	if doc == "" {
		return ""
	}
	m := hmac.New(sha256.New, k.hashKey)
	m.Write([]byte(doc))
	return hex.EncodeToString(m.Sum(nil))
}

// seal encrypts a document of source; the source is authenticated with it,
// so a row copied under another source does not decrypt.
func (k *secrets) seal(source, doc string) string {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(doc)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // crypto/rand.Read does not fail on Linux
	}
	out := k.aead.Seal(nonce, nonce, []byte(doc), []byte("config "+source))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

func isSealed(stored string) bool { return strings.HasPrefix(stored, sealedPrefix) }

// open decrypts a stored document of source.
func (k *secrets) open(source, stored string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(stored, sealedPrefix))
	if err != nil || len(raw) < k.aead.NonceSize() {
		return "", fmt.Errorf("decrypt configuration %s: malformed ciphertext", source)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte("config "+source))
	if err != nil {
		return "", fmt.Errorf("decrypt configuration %s with key file %s: %w: wrong key or altered row (authentication failed)", source, k.file, ErrKey)
	}
	return string(plain), nil
}

// loadKey reads the key file, or creates it (mode 0600, KeySize random
// bytes) when it does not exist and create is true. A key file readable by
// others is tightened to 0600.
func (s *Store) loadKey(path string, create bool) ([]byte, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		return createKey(path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("key file %s: %w: it does not exist, but the database holds encrypted configurations; "+
			"restore the key file (or pass the one in use with --secret-key-file)", path, ErrKey)
	case err != nil:
		return nil, fmt.Errorf("key file %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("key file %s: tighten mode %#o to 0600: %w", path, perm, err)
		}
		s.logger.Warn("key file was readable by others: mode tightened", "path", path, "was", fmt.Sprintf("%#o", perm), "now", "0600")
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("key file %s: %w: %d bytes, want %d", path, ErrKey, len(key), KeySize)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	// Write under a temporary name and link it in place, so a crash never
	// leaves a short key file that a later start would refuse.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".controller-key-*")
	if err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file %s: write: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("create key file %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	// Link fails if another process created the key meanwhile: never
	// replace a key that may already have encrypted something.
	if err := os.Link(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// setupSecrets loads (or, for a database without encrypted rows, creates)
// the key file, then encrypts every configuration still stored in
// plaintext (rows written before encryption existed) and re-hashes it;
// every encrypted row is decrypted once, so a wrong key fails here rather
// than at the first push. The rewrite runs with secure_delete and ends with
// a WAL checkpoint, so the plaintext does not linger in free pages or in
// the WAL.
func (s *Store) setupSecrets(ctx context.Context, keyFile string) error {
	var sealed int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM configs WHERE yaml LIKE 'enc:v1:%'`).Scan(&sealed); err != nil {
		return fmt.Errorf("count encrypted configurations: %w", err)
	}
	key, err := s.loadKey(keyFile, sealed == 0)
	if err != nil {
		return err
	}
	if s.secrets, err = newSecrets(keyFile, key); err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("encrypt configurations: %w", err)
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `SELECT source, yaml FROM configs`)
	if err != nil {
		return fmt.Errorf("encrypt configurations: %w", err)
	}
	plain := map[string]string{}
	for rows.Next() {
		var src, doc string
		if err := rows.Scan(&src, &doc); err != nil {
			rows.Close()
			return fmt.Errorf("encrypt configurations: %w", err)
		}
		if !isSealed(doc) {
			plain[src] = doc
			continue
		}
		if _, err := s.secrets.open(src, doc); err != nil {
			rows.Close()
			return err
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("encrypt configurations: %w", err)
	}
	rows.Close()
	if len(plain) == 0 {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("encrypt configurations: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("encrypt configurations: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	for src, doc := range plain {
		if _, err := tx.ExecContext(ctx, `UPDATE configs SET yaml = ?, hash = ? WHERE source = ?`,
			s.secrets.seal(src, doc), s.secrets.hash(doc), src); err != nil {
			return fmt.Errorf("encrypt configuration %s: %w", src, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("encrypt configurations: commit: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("encrypt configurations: checkpoint: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA secure_delete = OFF`); err != nil {
		return fmt.Errorf("encrypt configurations: %w", err)
	}
	s.logger.Info("configurations encrypted at rest; their hashes change, so each agent gets one push of the same content",
		"configs", len(plain), "key_file", keyFile)
	return nil
}

// tightenModes makes the database's directory 0700 and the database file
// and its WAL and shared-memory files 0600, creating the directory and the
// file so when absent. A directory that is not the database's own (sticky,
// such as /tmp; owned by someone else; holding other files, such as the
// working directory) is left alone, with a warning.
func (s *Store) tightenModes(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if fi.Mode()&fs.ModeSticky != 0 || !ownedByMe(fi) || !ownDir(dir, filepath.Base(path)) {
			s.logger.Warn("database directory is open to others and not the database's own: left as it is; keep the database in a directory of its own",
				"dir", dir, "mode", fmt.Sprintf("%#o", perm))
		} else {
			if err := os.Chmod(dir, 0o700); err != nil {
				return fmt.Errorf("tighten directory %s: %w", dir, err)
			}
			s.logger.Warn("database directory was open to others: mode tightened", "dir", dir, "was", fmt.Sprintf("%#o", perm), "now", "0700")
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return fmt.Errorf("tighten %s: %w", p, err)
			}
			s.logger.Warn("database file was readable by others: mode tightened", "path", p, "was", fmt.Sprintf("%#o", perm), "now", "0600")
		}
	}
	return nil
}

// ownDir reports whether dir holds only the database named base and the
// files that go with it (WAL, shared memory, journal, key file).
func ownDir(dir, base string) bool {
	d, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer d.Close()
	names, err := d.Readdirnames(64)
	if err != nil && len(names) == 0 {
		return err == io.EOF
	}
	if len(names) == 64 {
		return false
	}
	for _, n := range names {
		switch {
		case n == base, n == base+"-wal", n == base+"-shm", n == base+"-journal", n == KeyFileName, strings.HasPrefix(n, ".controller-key-"):
		default:
			return false
		}
	}
	return true
}

// sealConfig encrypts a document for the configs table.
func (s *Store) sealConfig(source, doc string) string { return s.secrets.seal(source, doc) }

// openConfig decrypts a document read from the configs table; a plaintext
// row (none remain after Open) is returned as is.
func (s *Store) openConfig(source, stored string) (string, error) {
	if !isSealed(stored) {
		return stored, nil
	}
	return s.secrets.open(source, stored)
}
