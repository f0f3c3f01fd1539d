-- Receipts and patches (issue 22), as SQLite's schema version 5: `receipt` (sent with `r: true`, the sender is
-- told when a recipient acks or reads it) and `patched_at` (ms of the last edit or recall, NULL if none).
ALTER TABLE messages
    ADD COLUMN receipt BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN patched_at BIGINT;
-- The patches a client missed while offline (`lastPatchTime` at login) are found through this.
CREATE INDEX messages_patched ON messages (patched_at) WHERE patched_at IS NOT NULL;
