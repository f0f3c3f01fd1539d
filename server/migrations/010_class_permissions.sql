-- Class permissions (server/src/store/class_permissions): who may get, find, create, update, delete and add
-- fields to the objects of a class, as LeanCloud's console sets them. A class without a row has the defaults.
-- Schema version 10.
CREATE TABLE IF NOT EXISTS class_permissions (
    class TEXT PRIMARY KEY,
    permissions TEXT NOT NULL,     -- JSON: {"get": {...}, "find": ..., "create", "update", "delete", "add_fields"}
    updated_at INTEGER NOT NULL    -- ms since epoch
) WITHOUT ROWID;

PRAGMA user_version = 10;
