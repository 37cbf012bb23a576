-- The webhook outbox: one row per (event, webhook). Times are Unix
-- microseconds, UTC; 0 means "not yet" (delivered_us, lease_until_us).
CREATE TABLE notify_outbox (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- order within an ordering key
    delivery_id     TEXT    NOT NULL UNIQUE,           -- X-Hubjobs-Delivery, same on every retry
    event_id        TEXT    NOT NULL,
    webhook         TEXT    NOT NULL,                  -- the webhook's name, never its URL or secret
    event           TEXT    NOT NULL,
    ordering_key    TEXT    NOT NULL,
    body            BYTEA   NOT NULL,                  -- rendered at enqueue, signed at send
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_us BIGINT  NOT NULL,
    last_status     INTEGER NOT NULL DEFAULT 0,        -- the receiver's HTTP status, 0 if none
    last_error      TEXT    NOT NULL DEFAULT '',
    last_answer     TEXT    NOT NULL DEFAULT '',       -- the first bytes of the receiver's answer
    created_us      BIGINT  NOT NULL,
    delivered_us    BIGINT  NOT NULL DEFAULT 0,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until_us  BIGINT  NOT NULL DEFAULT 0
);
-- An event is enqueued once per webhook, however often it is observed.
CREATE UNIQUE INDEX notify_outbox_event ON notify_outbox (event_id, webhook);
CREATE INDEX notify_outbox_due ON notify_outbox (status, next_attempt_us);
CREATE INDEX notify_outbox_key ON notify_outbox (status, webhook, ordering_key, seq);
