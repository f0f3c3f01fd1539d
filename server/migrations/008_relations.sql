-- Relation fields (server/src/store/relations): which objects a Relation field of an object holds, e.g. the users
-- and child roles of a `_Role`. Schema version 8.
CREATE TABLE IF NOT EXISTS relations (
    owner_class TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    key TEXT NOT NULL,
    target_class TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (owner_class, owner_id, key, target_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS relations_target ON relations (owner_class, key, target_id);

PRAGMA user_version = 8;
