-- The push queue (server/src/store/push_queue): one job per device and notification, kept until delivered or
-- given up, so a restart loses none and several workers (instances) never take the same job at once: a worker
-- claims due jobs by setting `lease_until`; a claim whose lease ran out (its worker died) is taken again.
-- Schema version 13.
CREATE TABLE IF NOT EXISTS push_jobs (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,          -- 'rtm' (an IM offline push) or 'api' (POST /1.1/push)
    ref_id TEXT NOT NULL,          -- the message id, or the `_Notification` objectId
    installation_id TEXT NOT NULL, -- the `_Installation` objectId
    platform TEXT NOT NULL,        -- 'ios', 'android', or the device type / vendor as saved
    target TEXT NOT NULL,          -- the APNs token, the FCM registration token
    payload TEXT NOT NULL,         -- the LeanCloud push `data` (JSON)
    profile TEXT,                  -- 'dev': the APNs sandbox
    due_at INTEGER NOT NULL,       -- ms since epoch
    expires_at INTEGER,            -- ms since epoch: given up after it
    state TEXT NOT NULL,           -- 'pending', 'sent', 'failed', 'invalid', 'unsupported', 'expired'
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,           -- ms since epoch: claimed by a worker until then
    last_error TEXT,
    created_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (due_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS push_jobs_ref ON push_jobs (ref_id);

PRAGMA user_version = 13;
