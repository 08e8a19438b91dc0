-- Agents: one row per agent that ever said hello. Labels and targets are JSON.
CREATE TABLE agents (
	id             TEXT    PRIMARY KEY,
	version        TEXT    NOT NULL DEFAULT '',
	hostname       TEXT    NOT NULL DEFAULT '',
	labels         TEXT    NOT NULL DEFAULT '{}',
	targets        TEXT    NOT NULL DEFAULT '[]',
	log_id         TEXT    NOT NULL DEFAULT '',
	connected      INTEGER NOT NULL DEFAULT 0,
	first_seen     INTEGER NOT NULL,
	last_seen      INTEGER NOT NULL,
	pending_events INTEGER NOT NULL DEFAULT 0,
	dropped_events INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Highest seq stored per (agent, event log): events at or below it are replays.
CREATE TABLE log_watermarks (
	agent_id    TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	log_id      TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	update_time INTEGER NOT NULL,
	PRIMARY KEY (agent_id, log_id)
) STRICT;

-- Every issue event ever stored; payload is the JSON of the event.
CREATE TABLE issue_events (
	agent_id    TEXT    NOT NULL,
	log_id      TEXT    NOT NULL,
	seq         INTEGER NOT NULL,
	issue_id    TEXT    NOT NULL,
	type        INTEGER NOT NULL,
	time        INTEGER NOT NULL,
	payload     TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	PRIMARY KEY (agent_id, log_id, seq),
	FOREIGN KEY (agent_id, log_id) REFERENCES log_watermarks (agent_id, log_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX issue_events_issue ON issue_events (issue_id);

-- Current state of each issue; (last_log_id, last_seq) is the event that last wrote it.
-- Times are Unix nanoseconds; NULL means unset.
CREATE TABLE issues (
	id              TEXT    PRIMARY KEY,
	agent_id        TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	device          TEXT    NOT NULL,
	kind            TEXT    NOT NULL,
	severity        INTEGER NOT NULL,
	state           INTEGER NOT NULL,
	summary         TEXT    NOT NULL,
	first_seen      INTEGER NOT NULL,
	last_seen       INTEGER,
	resolved_at     INTEGER,
	attributes      TEXT    NOT NULL,
	object          TEXT    NOT NULL,
	fingerprint     TEXT    NOT NULL,
	caused_by       TEXT    NOT NULL,
	acknowledged    INTEGER NOT NULL DEFAULT 0,
	acknowledged_by TEXT    NOT NULL DEFAULT '',
	acknowledged_at INTEGER,
	update_time     INTEGER NOT NULL,
	last_log_id     TEXT    NOT NULL,
	last_seq        INTEGER NOT NULL
) STRICT;

CREATE INDEX issues_order ON issues (first_seen DESC, id DESC);
CREATE INDEX issues_state_order ON issues (state, first_seen DESC, id DESC);
CREATE INDEX issues_agent_order ON issues (agent_id, first_seen DESC, id DESC);
CREATE INDEX issues_device_order ON issues (device, first_seen DESC, id DESC);
CREATE INDEX issues_kind_order ON issues (kind, first_seen DESC, id DESC);
