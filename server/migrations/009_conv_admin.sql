-- Conversation administration (issue 22): member roles (`_ConversationMemberInfo`: Manager, Member; the owner is
-- the creator `c` and has no row), muted members (shutups) and blocked clients (the blacklist), one row per
-- conversation, kind and client. `at` (ms) is when it was set.
CREATE TABLE IF NOT EXISTS conv_member_marks (
    cid       TEXT NOT NULL,
    kind      TEXT NOT NULL,  -- 'role' | 'shutup' | 'block'
    client_id TEXT NOT NULL,
    role      TEXT,           -- kind 'role' only
    at        INTEGER NOT NULL,
    PRIMARY KEY (cid, kind, client_id)
);

-- The permanent notifications (`joined`, `left`, `members_joined`, roles, shutups, blocks) kept for
-- `GET /1.1/rtm/notifications`: what a client missed while offline. `body` is the JSON entry the SDK reads.
CREATE TABLE IF NOT EXISTS rtm_notifications (
    client_id TEXT NOT NULL,
    at        INTEGER NOT NULL,  -- ms, the push's serverTs
    body      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rtm_notifications_client ON rtm_notifications (client_id, at);
CREATE INDEX IF NOT EXISTS rtm_notifications_at ON rtm_notifications (at);

PRAGMA user_version = 9;
