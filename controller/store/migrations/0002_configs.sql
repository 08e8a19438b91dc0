-- Desired configurations, one per selector. source is "agent/<id>" or
-- "labels/<k>=<v>,..." (sorted); yaml is the document pushed to agents.
CREATE TABLE configs (
	source      TEXT    PRIMARY KEY,
	agent_id    TEXT    NOT NULL DEFAULT '',
	labels      TEXT    NOT NULL DEFAULT '{}',
	yaml        TEXT    NOT NULL,
	hash        TEXT    NOT NULL,
	version     INTEGER NOT NULL,
	update_time INTEGER NOT NULL,
	updated_by  TEXT    NOT NULL DEFAULT ''
) STRICT;

-- What each agent runs (its last ACK, or its hello) and its last NACK.
ALTER TABLE agents ADD COLUMN applied_config_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN applied_config_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN config_error TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN config_error_hash TEXT NOT NULL DEFAULT '';
