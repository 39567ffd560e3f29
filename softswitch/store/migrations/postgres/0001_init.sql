-- 0001: location service and key/value meta (PostgreSQL).
-- schema_migrations is created by the migration runner itself.

-- Registrar bindings (RFC 3261 §10.3), written behind in batches from the in-memory registrar.
CREATE TABLE location_bindings (
    aor          text             NOT NULL,
    contact      text             NOT NULL,
    expires_at   double precision NOT NULL,  -- Unix epoch seconds
    q            double precision,           -- RFC 3261 §10.2.1.2 q-value, NULL when absent
    call_id      text             NOT NULL,
    cseq         bigint           NOT NULL,
    received     text,                       -- "transport:host:port" the REGISTER came from
    user_agent   text             NOT NULL DEFAULT '',
    instance_id  text,                       -- RFC 5626 +sip.instance
    reg_id       integer,                    -- RFC 5626 reg-id
    PRIMARY KEY (aor, contact)
);

-- purge_expired scans by expiry.
CREATE INDEX location_bindings_expires_at ON location_bindings (expires_at);

CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
