-- Class permissions (server/src/store/class_permissions): who may get, find, create, update, delete and add
-- fields to the objects of a class. A class without a row has the defaults. Schema version 8.
CREATE TABLE class_permissions (
    class TEXT PRIMARY KEY,
    permissions JSONB NOT NULL,
    updated_at BIGINT NOT NULL
);
