-- Schema version 2: what the realtime gateway needs. Messages remember a binary payload and mentions; clients
-- have per-conversation read and delivery positions, and a broadcast cursor.
ALTER TABLE messages ADD COLUMN bin INTEGER NOT NULL DEFAULT 0;   -- data is base64 of the bytes
ALTER TABLE messages ADD COLUMN mentions TEXT;                    -- {"pids":[…],"all":bool}
CREATE INDEX IF NOT EXISTS messages_kind ON messages (kind, seq) WHERE kind = 'broadcast';

-- Per client and conversation: the time up to which it has read (`read`) and up to which its messages were
-- delivered (`ack`); unread counts and offline delivery start after them.
CREATE TABLE IF NOT EXISTS client_positions (
    client_id TEXT NOT NULL,
    conv_id TEXT NOT NULL,
    read_ts INTEGER NOT NULL DEFAULT 0,
    ack_ts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, conv_id)
) WITHOUT ROWID;

-- Per client: the last broadcast (messages.seq) it was given, so one that logs in later gets only newer ones.
CREATE TABLE IF NOT EXISTS client_broadcasts (
    client_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
) WITHOUT ROWID;

PRAGMA user_version = 2;
