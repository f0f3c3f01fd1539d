-- Schema additions for data imported from LeanCloud (leancloud-migrate) and the 1.2 endpoints the export uses.
-- Schema version 3.

-- Per-message facts the 1.1 send path never produces: `bin` (data is base64) and `ack-at` (first delivery).
CREATE TABLE IF NOT EXISTS message_meta (
    msg_id TEXT PRIMARY KEY,
    bin INTEGER NOT NULL DEFAULT 0,
    ack_at INTEGER
) WITHOUT ROWID;

-- Subscribers of service (system) conversations: LeanCloud keeps them outside `_Conversation`.
CREATE TABLE IF NOT EXISTS service_subscribers (
    conv_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,    -- ms since epoch, when the client subscribed
    PRIMARY KEY (conv_id, client_id)
) WITHOUT ROWID;

PRAGMA user_version = 3;
