-- Schema version 1. Objects of every storage class live in one table as JSON documents; messages have their own.
CREATE TABLE IF NOT EXISTS classes (
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT OR IGNORE INTO classes (name) VALUES ('_Conversation');

CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY,
    class TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,            -- JSON object of the user fields (no objectId/createdAt/updatedAt/ACL)
    acl TEXT,                      -- JSON ACL, NULL = public read and write
    created_at INTEGER NOT NULL,   -- ms since epoch
    updated_at INTEGER NOT NULL,
    unique_key TEXT,               -- sorted member set of a `unique: true` conversation
    UNIQUE (class, id)
);
CREATE INDEX IF NOT EXISTS objects_unique_key ON objects (class, unique_key) WHERE unique_key IS NOT NULL;

CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE,
    conv_id TEXT NOT NULL,
    from_peer TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp INTEGER NOT NULL,    -- ms since epoch, non-decreasing in seq order
    kind TEXT NOT NULL,            -- 'normal' | 'to_clients' | 'broadcast'
    transient INTEGER NOT NULL,
    is_room INTEGER NOT NULL,
    recipients TEXT,               -- JSON array (to_clients)
    push TEXT,                     -- JSON offline push payload
    push_field TEXT,               -- 'push' or 'push_data': which request key carried it
    valid_till INTEGER,            -- broadcasts
    from_ip TEXT
);
CREATE INDEX IF NOT EXISTS messages_conv ON messages (conv_id, timestamp);
CREATE INDEX IF NOT EXISTS messages_from ON messages (from_peer, timestamp);

-- Per-user history keys of messages sent to chosen clients of a system conversation: md5(convId + ":" + clientId).
CREATE TABLE IF NOT EXISTS message_recipients (
    user_conv TEXT NOT NULL,
    msg_seq INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (user_conv, msg_seq)
) WITHOUT ROWID;

PRAGMA user_version = 1;
