-- PostgreSQL schema version 1: what SQLite's versions 1-3 hold, plus the tables several instances share
-- (per-conversation clocks, rate-limit buckets). Times are ms since the epoch (BIGINT), as on SQLite.
CREATE TABLE classes (
    name TEXT PRIMARY KEY
);
INSERT INTO classes (name) VALUES ('_Conversation');

CREATE TABLE objects (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    class TEXT NOT NULL,
    id TEXT NOT NULL,
    data JSONB NOT NULL,           -- the user fields (no objectId/createdAt/updatedAt/ACL)
    acl JSONB,                     -- NULL = public read and write
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    unique_key TEXT,               -- sorted member set of a `unique: true` conversation
    UNIQUE (class, id)
);
CREATE INDEX objects_unique_key ON objects (class, unique_key) WHERE unique_key IS NOT NULL;
-- Equality on any field (`where` prefilter): data @> {"field": value}.
CREATE INDEX objects_data ON objects USING GIN (data jsonb_path_ops);
-- A client's conversations: data->'m' @> ["client"].
CREATE INDEX objects_members ON objects USING GIN ((data -> 'm') jsonb_path_ops) WHERE class = '_Conversation';

CREATE TABLE messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    msg_id TEXT NOT NULL UNIQUE,
    conv_id TEXT NOT NULL,
    from_peer TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp BIGINT NOT NULL,     -- non-decreasing in seq order within a conversation
    kind TEXT NOT NULL,            -- 'normal' | 'to_clients' | 'broadcast'
    transient BOOLEAN NOT NULL,
    is_room BOOLEAN NOT NULL,
    recipients JSONB,              -- JSON array (to_clients)
    push JSONB,
    push_field TEXT,
    valid_till BIGINT,
    from_ip TEXT,
    bin BOOLEAN NOT NULL DEFAULT FALSE,
    mentions JSONB                 -- {"pids":[…],"all":bool}
);
CREATE INDEX messages_conv ON messages (conv_id, timestamp, seq);
CREATE INDEX messages_from ON messages (from_peer, timestamp);
CREATE INDEX messages_ts ON messages (timestamp);
CREATE INDEX messages_broadcast ON messages (seq) WHERE kind = 'broadcast';

CREATE TABLE message_recipients (
    user_conv TEXT NOT NULL,
    msg_seq BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (user_conv, msg_seq)
);
CREATE INDEX message_recipients_client ON message_recipients (client_id);

CREATE TABLE client_positions (
    client_id TEXT NOT NULL,
    conv_id TEXT NOT NULL,
    read_ts BIGINT NOT NULL DEFAULT 0,
    ack_ts BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, conv_id)
);

CREATE TABLE client_broadcasts (
    client_id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
);

CREATE TABLE message_meta (
    msg_id TEXT PRIMARY KEY,
    bin BOOLEAN NOT NULL DEFAULT FALSE,
    ack_at BIGINT
);

CREATE TABLE service_subscribers (
    conv_id TEXT NOT NULL,
    client_id TEXT COLLATE "C" NOT NULL,   -- pages go by client id in byte order, as on SQLite
    timestamp BIGINT NOT NULL,
    PRIMARY KEY (conv_id, client_id)
);

-- The last message time handed out per conversation: sends lock their conversation's row, so timestamps
-- follow commit order across instances.
CREATE TABLE conversation_clocks (
    conv_id TEXT PRIMARY KEY,
    last_ts BIGINT NOT NULL
);

-- Rate-limit windows shared by every instance (a limit holds for the app).
CREATE TABLE rate_buckets (
    name TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL
);

-- Realtime bus payloads over NOTIFY's 8,000-byte limit: the notification names the row (kept 5 minutes).
CREATE TABLE bus_payloads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
