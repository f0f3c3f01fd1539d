-- Temporary conversations (issue 22): `conv/start` with `tempConv`. Kept apart from `_Conversation` (no storage
-- API, no query but by id), each with its expiry; `members` is the sorted JSON array as text, so a unique start
-- finds the live one of the same members by equality. Expired rows are purged when conversations are started.
CREATE TABLE IF NOT EXISTS temp_conversations (
    id         TEXT PRIMARY KEY,
    members    TEXT NOT NULL,
    creator    TEXT NOT NULL,
    created_at BIGINT NOT NULL,  -- ms
    expires_at BIGINT NOT NULL   -- ms
);
CREATE INDEX IF NOT EXISTS temp_conversations_members ON temp_conversations (members, expires_at);
CREATE INDEX IF NOT EXISTS temp_conversations_expiry ON temp_conversations (expires_at);
