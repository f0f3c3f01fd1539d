-- Users and sessions (server/src/store/users): the lookups a login and every request with a session token make,
-- on the fields of `_User` rows. Schema version 6.
CREATE INDEX IF NOT EXISTS objects_user_token ON objects (json_extract(data, '$.sessionToken')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_username ON objects (json_extract(data, '$.username')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_email ON objects (json_extract(data, '$.email')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_phone ON objects (json_extract(data, '$.mobilePhoneNumber')) WHERE class = '_User';

PRAGMA user_version = 6;
