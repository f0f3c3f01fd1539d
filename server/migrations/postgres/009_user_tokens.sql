-- One-time tokens of the mail flows (server/src/store/user_tokens): a password reset or an e-mail verification
-- link, as their SHA-256; at most one live token per user and kind; `created_at` spaces requests out; `email` is
-- the address the link went to. Schema version 9.
CREATE TABLE user_tokens (
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, user_id)
);
