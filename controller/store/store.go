// Package store is the controller's database: agents, per-log watermarks,
// issue events and current issue state in one embedded SQLite file. It owns
// idempotent ingest (a replayed event changes nothing, an older event never
// overwrites newer state), issue listing with keyset paging, acknowledgement
// and the fleet's records. It speaks domain types only; the gRPC layer
// converts.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Store is an open controller database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	path   string
	logger *slog.Logger
	now    func() time.Time

	keyFile string
	secrets *secrets // encrypts configuration documents, computes their hashes

	// commitMu serialises the transactions that write issues with the
	// publication of their changes (see write).
	commitMu sync.Mutex
	pub      Publisher

	// txStmts are the statements prepared in the transaction of write
	// (guarded by commitMu; see prepare).
	txStmts map[string]*sql.Stmt
	// stmts are the queries of write's transactions, prepared once on the
	// database (guarded by commitMu).
	stmts map[string]*sql.Stmt

	stopCheckpoints, checkpointsDone chan struct{} // see checkpoints
}

// Option changes how Open builds a Store.
type Option func(*Store)

// WithClock makes the store read time from now (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithKeyFile makes the store keep its secret key in path instead of
// KeyFileName next to the database.
func WithKeyFile(path string) Option { return func(s *Store) { s.keyFile = path } }

// Open opens (creating if needed) the database file at path, with its parent
// directory, and brings its schema up to date. The directory is made 0700
// and the file 0600 (tightened, with a log line, when looser). The secret
// key (see WithKeyFile) is read, or created when the database holds nothing
// encrypted yet; configurations still stored in plaintext are encrypted.
func Open(ctx context.Context, path string, logger *slog.Logger, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, fmt.Errorf("open store: empty path")
	}
	s := &Store{path: path, logger: logger, now: time.Now, keyFile: filepath.Join(filepath.Dir(path), KeyFileName)}
	for _, o := range opts {
		o(s)
	}
	if err := s.tightenModes(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL: a commit is on disk before the agent gets its ack and deletes
	// the events; NORMAL in WAL mode could lose the last commits to a
	// power loss.
	q.Add("_pragma", "synchronous(FULL)")
	// Group commits put each agent's batch under a savepoint: keep the
	// statement journals they need in memory, not in temporary files.
	q.Add("_pragma", "temp_store(MEMORY)")
	// 16 MiB of page cache per connection (the default is 2 MiB): ingest
	// reads the indexes of issues and events for every event.
	q.Add("_pragma", "cache_size(-16384)")
	// Checkpoints (copying the WAL into the database file) run on a
	// goroutine of their own (checkpoints), not inside the commit of
	// whichever writer crosses SQLite's 1000-page mark: that writer is the
	// group commit every agent's ack waits for.
	q.Add("_pragma", "wal_autocheckpoint(0)")
	// Write transactions take the write lock at BEGIN, so two writers never
	// deadlock upgrading read locks; busy_timeout makes them queue.
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Enough connections that readers (watch catch-ups, lists, the
	// desired config of a new stream) never wait for writers, which hold
	// a connection while they wait for SQLite's write lock.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(0)
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	applied, err := migrate(ctx, db, ms, s.now())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if applied > 0 {
		logger.Info("database schema migrated", "path", path, "applied", applied, "version", ms[len(ms)-1].version)
	}
	if err := s.setupSecrets(ctx, s.keyFile); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.stopCheckpoints, s.checkpointsDone = make(chan struct{}), make(chan struct{})
	go s.checkpoints()
	return s, nil
}

// checkpointEvery is how often the WAL is copied into the database file.
// At ingest's pace a second of WAL is a few thousand pages at most.
const checkpointEvery = time.Second

// checkpoints runs PASSIVE checkpoints until Close: they never wait for
// readers or writers, and what one cannot copy (pages a reader still
// needs) the next one does.
func (s *Store) checkpoints() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	var failed int
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		cancel()
		switch {
		case err == nil:
			failed = 0
		case failed == 0:
			s.logger.Warn("checkpoint the database's WAL", "path", s.path, "err", err)
			fallthrough
		default:
			failed++
		}
	}
}

// prepare returns query prepared for tx. SQLite's prepare costs as much as
// running a small statement, and a group commit runs the same few
// statements for every batch it carries: each query is prepared once per
// connection (database/sql keeps a statement's copy per connection) and
// bound to a transaction once. Only for the transaction of write
// (commitMu held); the statement closes with it, so callers must not close
// it.
func (s *Store) prepare(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	if s.txStmts == nil {
		s.txStmts = map[string]*sql.Stmt{}
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	if st, ok := s.txStmts[query]; ok {
		return st, nil
	}
	ps, ok := s.stmts[query]
	if !ok {
		var err error
		if ps, err = s.db.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		s.stmts[query] = ps
	}
	st := tx.StmtContext(ctx, ps)
	s.txStmts[query] = st
	return st, nil
}

// Close stops the checkpoints and closes the database (SQLite checkpoints
// the WAL as its last connection closes).
func (s *Store) Close() error {
	if s.stopCheckpoints != nil {
		close(s.stopCheckpoints)
		<-s.checkpointsDone
		s.stopCheckpoints = nil
	}
	s.commitMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.commitMu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// nanos stores a time as Unix nanoseconds; the zero time is NULL.
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}
