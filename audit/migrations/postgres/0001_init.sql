-- The audit trail. seq is assigned by Append (never a sequence): the hash
-- chain, not the database, is the source of truth for order.
CREATE TABLE audit_entries (
    seq             BIGINT  PRIMARY KEY CHECK (seq > 0),
    time_us         BIGINT  NOT NULL, -- Unix microseconds, UTC
    action          TEXT    NOT NULL,
    result          TEXT    NOT NULL,
    actor_iss       TEXT    NOT NULL,
    actor_sub       TEXT    NOT NULL,
    actor_name      TEXT    NOT NULL,
    actor_email     TEXT    NOT NULL,
    actor_roles     TEXT    NOT NULL, -- JSON array of strings, kept byte for byte
    client_ip       TEXT    NOT NULL,
    user_agent      TEXT    NOT NULL,
    request_id      TEXT    NOT NULL,
    hub             TEXT    NOT NULL,
    job_id          TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    hub_status      INTEGER NOT NULL,
    hub_error_code  TEXT    NOT NULL,
    hub_tracking_id TEXT    NOT NULL,
    prev_hash       TEXT    NOT NULL,
    hash            TEXT    NOT NULL
);
CREATE INDEX audit_entries_request_id ON audit_entries (request_id);
CREATE INDEX audit_entries_job ON audit_entries (hub, job_id, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_time ON audit_entries (time_us);

-- Append-only, enforced by the database and not only by the code.
CREATE FUNCTION audit_entries_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_refuse_change();
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_refuse_change();

-- The last answer the hub gave for each job, for pages of purged jobs.
CREATE TABLE job_snapshots (
    hub          TEXT   NOT NULL,
    job_id       TEXT   NOT NULL,
    body         BYTEA  NOT NULL,
    last_seen_us BIGINT NOT NULL,
    PRIMARY KEY (hub, job_id)
);

-- Revoked sessions, by SHA-256 of the session id; rows expire.
CREATE TABLE revoked_sessions (
    session_hash TEXT   PRIMARY KEY,
    until_us     BIGINT NOT NULL
);
CREATE INDEX revoked_sessions_until ON revoked_sessions (until_us);

-- One row rewritten by Ping to prove the store accepts writes.
CREATE TABLE heartbeat (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at_us BIGINT  NOT NULL
);
