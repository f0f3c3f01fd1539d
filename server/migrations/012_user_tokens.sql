-- One-time tokens of the mail flows (server/src/store/user_tokens): a password reset or an e-mail verification
-- link. Only the SHA-256 of a token is kept; each user has at most one live token of each kind (a new request
-- replaces the old link), and `created_at` is when the last mail was sent, which spaces requests out. `email` is
-- the address the link was sent to: a link for an address the user has since changed is refused.
-- Schema version 12.
CREATE TABLE IF NOT EXISTS user_tokens (
    kind TEXT NOT NULL,            -- 'reset' or 'verify'
    user_id TEXT NOT NULL,         -- the `_User` objectId
    token_hash TEXT NOT NULL,      -- hex SHA-256 of the token
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,   -- ms since epoch
    expires_at INTEGER NOT NULL,   -- ms since epoch
    PRIMARY KEY (kind, user_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS user_tokens_hash ON user_tokens (token_hash);

PRAGMA user_version = 12;
