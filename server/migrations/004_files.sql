-- The file API's upload tokens (server/src/store/uploads). Schema version 4.
CREATE TABLE IF NOT EXISTS file_uploads (
    token_hash TEXT PRIMARY KEY,   -- hex SHA-1 of the one-time token (the token itself is never stored)
    object_id TEXT NOT NULL,       -- the _File object
    key TEXT NOT NULL,             -- where its body goes
    mime_type TEXT NOT NULL,
    max_size INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,   -- ms since epoch
    uploaded INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_uploads_expiry ON file_uploads (expires_at);
CREATE INDEX IF NOT EXISTS file_uploads_object ON file_uploads (object_id);

PRAGMA user_version = 4;
