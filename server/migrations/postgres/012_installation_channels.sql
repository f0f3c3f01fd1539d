-- The bindings index: which `_Installation` rows hold a channel (an IM client id bound at login, or a channel the
-- app subscribed the device to). IM offline pushes look devices up here by client id instead of scanning every
-- device. A trigger keeps it in step with every write of an `_Installation` row (the API, batches, imports, the
-- copy from SQLite), and the rows there before this migration are indexed once below.
CREATE TABLE IF NOT EXISTS installation_channels (
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (channel, id)
);
CREATE INDEX IF NOT EXISTS installation_channels_id ON installation_channels (id);

CREATE OR REPLACE FUNCTION installation_channels_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.class = '_Installation' THEN
        DELETE FROM installation_channels WHERE id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.class = '_Installation'
       AND jsonb_typeof(NEW.data -> 'channels') = 'array' THEN
        INSERT INTO installation_channels (channel, id)
            SELECT e.v #>> '{}', NEW.id
            FROM jsonb_array_elements(NEW.data -> 'channels') AS e(v)
            WHERE jsonb_typeof(e.v) = 'string'
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS installation_channels_sync ON objects;
CREATE TRIGGER installation_channels_sync AFTER INSERT OR UPDATE OF data OR DELETE ON objects
    FOR EACH ROW EXECUTE FUNCTION installation_channels_sync();

INSERT INTO installation_channels (channel, id)
    SELECT e.v #>> '{}', o.id
    FROM objects o, jsonb_array_elements(o.data -> 'channels') AS e(v)
    WHERE o.class = '_Installation' AND jsonb_typeof(o.data -> 'channels') = 'array' AND jsonb_typeof(e.v) = 'string'
ON CONFLICT DO NOTHING;
