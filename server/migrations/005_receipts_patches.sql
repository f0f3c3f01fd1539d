-- Schema version 5: receipts and patches (issue 22). A message sent with `r: true` asks for receipts: its
-- sender is told (`rcp`) when a recipient acks or reads it. An edit or a recall rewrites the message in place
-- (`data`, `bin`, `mentions`) and records when.
ALTER TABLE messages ADD COLUMN receipt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN patched_at INTEGER;   -- ms since epoch of the last edit or recall, NULL if none
-- The patches a client missed while offline (`lastPatchTime` at login) are found through this.
CREATE INDEX IF NOT EXISTS messages_patched ON messages (patched_at) WHERE patched_at IS NOT NULL;

PRAGMA user_version = 5;
