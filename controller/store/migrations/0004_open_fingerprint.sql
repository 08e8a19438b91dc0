-- While open, an issue's identity is (agent, fingerprint): an agent has at
-- most one open issue per condition. Duplicates left by agents that
-- restarted before this rule existed are resolved first, keeping the newest.
UPDATE issues
SET state = 2,
	resolved_at = COALESCE(last_seen, first_seen),
	update_time = CAST(strftime('%s', 'now') AS INTEGER) * 1000000000,
	attributes = json_set(attributes, '$.resolution', 'superseded by a newer open issue of the same condition')
WHERE state = 1 AND EXISTS (
	SELECT 1 FROM issues n
	WHERE n.agent_id = issues.agent_id AND n.fingerprint = issues.fingerprint AND n.state = 1
		AND (n.first_seen > issues.first_seen OR (n.first_seen = issues.first_seen AND n.id > issues.id)));

CREATE UNIQUE INDEX issues_open_fingerprint ON issues (agent_id, fingerprint) WHERE state = 1;
