-- The push queue (server/src/store/push_queue): one job per device and notification, kept until delivered or
-- given up; workers on every instance claim due jobs with FOR UPDATE SKIP LOCKED and a lease, so none is taken
-- twice at once and a dead worker's claims are taken again when their lease runs out.
CREATE TABLE IF NOT EXISTS push_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    installation_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    target TEXT NOT NULL,
    payload JSONB NOT NULL,
    profile TEXT,
    due_at BIGINT NOT NULL,
    expires_at BIGINT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (due_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS push_jobs_ref ON push_jobs (ref_id);
