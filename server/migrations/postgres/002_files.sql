-- The file API's upload tokens (server/src/store/uploads).
CREATE TABLE IF NOT EXISTS file_uploads (
    token_hash TEXT PRIMARY KEY,
    object_id TEXT NOT NULL,
    key TEXT NOT NULL,
    mime_type TEXT NOT NULL,
    max_size BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    uploaded BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS file_uploads_expiry ON file_uploads (expires_at);
CREATE INDEX IF NOT EXISTS file_uploads_object ON file_uploads (object_id);
