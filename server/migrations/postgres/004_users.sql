-- Users and sessions (server/src/store/users): the lookups a login and every request with a session token make,
-- on the fields of `_User` rows.
CREATE INDEX IF NOT EXISTS objects_user_token ON objects ((data ->> 'sessionToken')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_username ON objects ((data ->> 'username')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_email ON objects ((data ->> 'email')) WHERE class = '_User';
CREATE INDEX IF NOT EXISTS objects_user_phone ON objects ((data ->> 'mobilePhoneNumber')) WHERE class = '_User';
