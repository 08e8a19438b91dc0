-- The comment an operator gives with an acknowledgement (netaiopsctl issues
-- ack ID --comment ...).
ALTER TABLE issues ADD COLUMN acknowledged_comment TEXT NOT NULL DEFAULT '';
