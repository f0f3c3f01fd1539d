-- The bindings index: which `_Installation` rows hold a channel (an IM client id bound at login, or a channel the
-- app subscribed the device to). IM offline pushes look devices up here by client id instead of scanning every
-- device. Triggers keep it in step with every write of an `_Installation` row (the API, batches, imports), and
-- the rows there before this migration are indexed once below. Schema version 15.
CREATE TABLE IF NOT EXISTS installation_channels (
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS installation_channels_id ON installation_channels (id);

CREATE TRIGGER IF NOT EXISTS installation_channels_insert AFTER INSERT ON objects
WHEN NEW.class = '_Installation' AND json_type(NEW.data, '$.channels') = 'array'
BEGIN
    INSERT OR IGNORE INTO installation_channels (channel, id)
        SELECT value, NEW.id FROM json_each(NEW.data, '$.channels') WHERE type = 'text';
END;

CREATE TRIGGER IF NOT EXISTS installation_channels_update AFTER UPDATE OF data ON objects
WHEN NEW.class = '_Installation'
BEGIN
    DELETE FROM installation_channels WHERE id = OLD.id;
    INSERT OR IGNORE INTO installation_channels (channel, id)
        SELECT value, NEW.id FROM json_each(NEW.data, '$.channels')
        WHERE type = 'text' AND json_type(NEW.data, '$.channels') = 'array';
END;

CREATE TRIGGER IF NOT EXISTS installation_channels_delete AFTER DELETE ON objects
WHEN OLD.class = '_Installation'
BEGIN
    DELETE FROM installation_channels WHERE id = OLD.id;
END;

INSERT OR IGNORE INTO installation_channels (channel, id)
    SELECT j.value, o.id FROM objects o, json_each(o.data, '$.channels') j
    WHERE o.class = '_Installation' AND json_type(o.data, '$.channels') = 'array' AND j.type = 'text';

PRAGMA user_version = 15;
