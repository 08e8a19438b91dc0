-- Every write of an issue row takes the next position of one global,
-- gapless counter (in commit order, since SQLite has one writer at a time),
-- so a watcher can resume "after position N": the issues whose change_pos
-- is above N are exactly those changed since. Triggers assign it, so every
-- code path that writes an issue gets a position, including ones that do
-- not know about watches. change_type is the event type of the last change
-- (netaiops.v1.IssueEventType numbers), set by the writer.
CREATE TABLE change_position (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	pos INTEGER NOT NULL
) STRICT;
INSERT INTO change_position (id, pos) VALUES (1, 0);

ALTER TABLE issues ADD COLUMN change_pos INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN change_type INTEGER NOT NULL DEFAULT 0;

-- Issues written before this migration get positions in first_seen order.
UPDATE change_position SET pos = (SELECT COUNT(*) FROM issues) WHERE id = 1;
UPDATE issues SET change_pos = r.n, change_type = CASE issues.state WHEN 2 THEN 3 ELSE 1 END
	FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY first_seen, id) AS n FROM issues) AS r
	WHERE issues.id = r.id;

CREATE UNIQUE INDEX issues_change_pos ON issues (change_pos) WHERE change_pos > 0;

-- A writer may take the position itself (UPDATE change_position ...
-- RETURNING pos) and write it with the row: then the triggers do nothing.
CREATE TRIGGER issues_change_pos_insert AFTER INSERT ON issues
WHEN NEW.change_pos = 0
BEGIN
	UPDATE change_position SET pos = pos + 1 WHERE id = 1;
	UPDATE issues SET change_pos = (SELECT pos FROM change_position WHERE id = 1) WHERE id = NEW.id;
END;

-- The WHEN clause keeps the trigger's own write of change_pos from firing it
-- again (should recursive triggers ever be turned on), and leaves a writer
-- that set change_pos itself alone.
CREATE TRIGGER issues_change_pos_update AFTER UPDATE ON issues
WHEN NEW.change_pos = OLD.change_pos
BEGIN
	UPDATE change_position SET pos = pos + 1 WHERE id = 1;
	UPDATE issues SET change_pos = (SELECT pos FROM change_position WHERE id = 1) WHERE id = NEW.id;
END;
