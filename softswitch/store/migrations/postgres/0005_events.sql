-- 0005: the event log (issue 5): every reporting event in publish order, msgpack payload (postgres).
CREATE TABLE events (
    seq      bigserial        PRIMARY KEY,  -- publish order
    ts       double precision NOT NULL,     -- Unix epoch seconds (event time)
    type     text             NOT NULL,     -- ReportEvent.type_name
    payload  bytea            NOT NULL      -- msgpack of ReportEvent.to_dict()
);

CREATE INDEX events_ts ON events (ts);
