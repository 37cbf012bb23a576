-- The audit trail. seq is assigned by Append (never AUTOINCREMENT): the hash
-- chain, not the database, is the source of truth for order.
CREATE TABLE audit_entries (
    seq             INTEGER PRIMARY KEY CHECK (seq > 0),
    time_us         INTEGER NOT NULL, -- Unix microseconds, UTC
    action          TEXT    NOT NULL,
    result          TEXT    NOT NULL,
    actor_iss       TEXT    NOT NULL,
    actor_sub       TEXT    NOT NULL,
    actor_name      TEXT    NOT NULL,
    actor_email     TEXT    NOT NULL,
    actor_roles     TEXT    NOT NULL, -- JSON array of strings
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
CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit_entries is append-only: DELETE refused');
END;

-- The last answer the hub gave for each job, for pages of purged jobs.
CREATE TABLE job_snapshots (
    hub          TEXT    NOT NULL,
    job_id       TEXT    NOT NULL,
    body         BLOB    NOT NULL,
    last_seen_us INTEGER NOT NULL,
    PRIMARY KEY (hub, job_id)
);

-- Revoked sessions, by SHA-256 of the session id; rows expire.
CREATE TABLE revoked_sessions (
    session_hash TEXT    PRIMARY KEY,
    until_us     INTEGER NOT NULL
);
CREATE INDEX revoked_sessions_until ON revoked_sessions (until_us);

-- One row rewritten by Ping to prove the store accepts writes.
CREATE TABLE heartbeat (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    at_us INTEGER NOT NULL
);
