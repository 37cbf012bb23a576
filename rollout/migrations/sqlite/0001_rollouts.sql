-- Rollouts and what the engine knows about them. Times are Unix
-- microseconds, UTC; 0 means "not yet".
CREATE TABLE rollouts (
    id          TEXT    PRIMARY KEY,           -- [a-z0-9]{1,16}, part of every hub job id
    hub         TEXT    NOT NULL,
    spec        TEXT    NOT NULL,              -- JSON: what the author asked for
    author      TEXT    NOT NULL,              -- JSON audit.Actor
    state       TEXT    NOT NULL,
    wave        INTEGER NOT NULL DEFAULT 0,
    approved    INTEGER NOT NULL DEFAULT 0,
    halt        TEXT    NOT NULL DEFAULT '',
    note        TEXT    NOT NULL DEFAULT '',
    since_us    INTEGER NOT NULL,
    halted_by   TEXT    NOT NULL DEFAULT '',   -- JSON audit.Actor of the halt
    devices     INTEGER NOT NULL DEFAULT 0,
    sizes       TEXT    NOT NULL DEFAULT '',   -- JSON []int: each wave's size, once planned
    gated       TEXT    NOT NULL DEFAULT '',   -- JSON []bool: each wave's approval gate
    waiting     TEXT    NOT NULL DEFAULT '',   -- why nothing moves, as the engine last saw it
    created_us  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1     -- optimistic concurrency
);
CREATE INDEX rollouts_hub_state ON rollouts (hub, state, created_us);
CREATE INDEX rollouts_state ON rollouts (state);
-- The frozen device list: one row per rollout, device ids in plan order
-- separated by newlines, gzipped (100,000 GUIDs are about 2 MB).
CREATE TABLE rollout_devices (
    rollout TEXT PRIMARY KEY REFERENCES rollouts (id),
    ids     BLOB NOT NULL
);
CREATE TABLE rollout_jobs (
    job_id       TEXT    PRIMARY KEY,          -- hj-{rid}-w{wave}-{part}
    rollout      TEXT    NOT NULL REFERENCES rollouts (id),
    wave         INTEGER NOT NULL,
    part         INTEGER NOT NULL,
    devices      INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'creating', 'created', 'refused', 'cancelling', 'cancelled', 'finished')),
    start_us     INTEGER NOT NULL DEFAULT 0,   -- startTime sent; 0 = now
    status       TEXT    NOT NULL DEFAULT '',  -- the hub's job status last read
    stats        TEXT    NOT NULL DEFAULT '',  -- JSON hub.DeviceJobStatistics last read
    stops_us     INTEGER NOT NULL DEFAULT 0,   -- startTime + maxExecutionTime as the hub said
    created_us   INTEGER NOT NULL DEFAULT 0,   -- when the hub took it
    finished_us  INTEGER NOT NULL DEFAULT 0,   -- when the engine saw it over
    updated_us   INTEGER NOT NULL
);
CREATE INDEX rollout_jobs_rollout ON rollout_jobs (rollout, wave, part);
CREATE TABLE rollout_approvals (
    rollout TEXT    NOT NULL REFERENCES rollouts (id),
    wave    INTEGER NOT NULL,
    actor   TEXT    NOT NULL,                  -- JSON audit.Actor
    at_us   INTEGER NOT NULL,
    PRIMARY KEY (rollout, wave)
);
-- Rule evaluations that decided something, in the order they were made.
CREATE TABLE rollout_verdicts (
    rollout TEXT    NOT NULL REFERENCES rollouts (id),
    seq     INTEGER NOT NULL,
    wave    INTEGER NOT NULL,
    rule    TEXT    NOT NULL,
    fired   INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    at_us   INTEGER NOT NULL,
    PRIMARY KEY (rollout, seq)
);
-- Who drives rollouts: one row, taken and renewed by one UPDATE.
CREATE TABLE rollout_lease (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_us INTEGER NOT NULL
);
INSERT INTO rollout_lease (name, owner, expires_us) VALUES ('engine', '', 0);
