-- 0001: location service and key/value meta (SQLite).
-- schema_migrations is created by the migration runner itself.

-- Registrar bindings (RFC 3261 §10.3), written behind in batches from the in-memory registrar.
CREATE TABLE location_bindings (
    aor          TEXT    NOT NULL,
    contact      TEXT    NOT NULL,
    expires_at   REAL    NOT NULL,          -- Unix epoch seconds
    q            REAL,                      -- RFC 3261 §10.2.1.2 q-value, NULL when absent
    call_id      TEXT    NOT NULL,
    cseq         INTEGER NOT NULL,
    received     TEXT,                      -- "transport:host:port" the REGISTER came from
    user_agent   TEXT    NOT NULL DEFAULT '',
    instance_id  TEXT,                      -- RFC 5626 +sip.instance
    reg_id       INTEGER,                   -- RFC 5626 reg-id
    PRIMARY KEY (aor, contact)
) WITHOUT ROWID;

-- purge_expired scans by expiry.
CREATE INDEX location_bindings_expires_at ON location_bindings (expires_at);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
