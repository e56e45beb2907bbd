-- Audit trail: one row per decided request, written in batches by the audit Postgres sink.
-- The primary key leads with occurred_at so the table can be range-partitioned by time later
-- (a partitioned table's unique keys must include the partition key); it also serves
-- time-range scans. Replays insert with ON CONFLICT DO NOTHING on this key.
CREATE TABLE IF NOT EXISTS audit_events (
    occurred_at         timestamptz NOT NULL,
    event_id            uuid        NOT NULL,
    request_id          text        NOT NULL,
    instance_id         text        NOT NULL,
    api                 text,
    method              text        NOT NULL,
    path                text        NOT NULL,
    route_id            text,
    principal_id        text,
    principal_kind      text        NOT NULL,
    principal_issuer    text,
    groups              text[]      NOT NULL DEFAULT '{}',
    node_keys           uuid[]      NOT NULL DEFAULT '{}',
    verbs               text[]      NOT NULL DEFAULT '{}',
    decision            text        NOT NULL CHECK (decision IN ('allow', 'deny')),
    reason              text,
    reason_detail       text,
    granted_via         text[]      NOT NULL DEFAULT '{}',
    client_addr         inet,
    user_agent          text,
    upstream_status     integer,
    upstream_latency_us bigint,
    PRIMARY KEY (occurred_at, event_id)
);

-- "What did this principal do lately?"
CREATE INDEX IF NOT EXISTS audit_events_principal_time
    ON audit_events (principal_id, occurred_at DESC);
-- "Who touched this node?" (node_keys @> ARRAY[key])
CREATE INDEX IF NOT EXISTS audit_events_node_keys
    ON audit_events USING GIN (node_keys);
-- "What happened in this window?" BRIN is tiny for an append-mostly, time-ordered table; the
-- primary key also serves exact time ranges.
CREATE INDEX IF NOT EXISTS audit_events_time_brin
    ON audit_events USING BRIN (occurred_at);
-- "Recent denies" without scanning allows.
CREATE INDEX IF NOT EXISTS audit_events_denies_time
    ON audit_events (occurred_at DESC) WHERE decision = 'deny';
