-- Who is in which conversation, as an index: a login reads its own conversations and the SDK's member queries
-- (`m` equal to or `$all` of client ids) narrow in SQL, instead of decoding every `_Conversation` row (review
-- part 3, R3 and R5; PostgreSQL has the GIN index `objects_members` for the same). Kept by triggers from
-- `objects.data`'s `m`, so no write path can forget it; readers still check `m` itself.
-- Schema version 11.
CREATE TABLE IF NOT EXISTS conversation_members (
    client TEXT NOT NULL,
    conv_seq INTEGER NOT NULL,     -- objects.seq of the `_Conversation` row
    PRIMARY KEY (client, conv_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_members_conv ON conversation_members (conv_seq);

INSERT OR IGNORE INTO conversation_members (client, conv_seq)
    SELECT j.value, o.seq FROM objects o, json_each(o.data, '$.m') j
    WHERE o.class = '_Conversation' AND j.type = 'text';

CREATE TRIGGER IF NOT EXISTS conversation_members_insert AFTER INSERT ON objects
WHEN NEW.class = '_Conversation'
BEGIN
    INSERT OR IGNORE INTO conversation_members (client, conv_seq)
        SELECT j.value, NEW.seq FROM json_each(NEW.data, '$.m') j WHERE j.type = 'text';
END;

-- Only when `m` changed: a sent message rewrites `lm`, and must not rewrite the members.
CREATE TRIGGER IF NOT EXISTS conversation_members_update AFTER UPDATE OF data ON objects
WHEN NEW.class = '_Conversation'
    AND json_extract(OLD.data, '$.m') IS NOT json_extract(NEW.data, '$.m')
BEGIN
    DELETE FROM conversation_members WHERE conv_seq = OLD.seq;
    INSERT OR IGNORE INTO conversation_members (client, conv_seq)
        SELECT j.value, NEW.seq FROM json_each(NEW.data, '$.m') j WHERE j.type = 'text';
END;

CREATE TRIGGER IF NOT EXISTS conversation_members_delete AFTER DELETE ON objects
WHEN OLD.class = '_Conversation'
BEGIN
    DELETE FROM conversation_members WHERE conv_seq = OLD.seq;
END;

PRAGMA user_version = 11;
