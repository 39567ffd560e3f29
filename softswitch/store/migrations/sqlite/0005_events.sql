-- 0005: the event log (issue 5): every reporting event in publish order, msgpack payload (sqlite).
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,  -- publish order; never reused
    ts       REAL    NOT NULL,                   -- Unix epoch seconds (event time)
    type     TEXT    NOT NULL,                   -- ReportEvent.type_name
    payload  BLOB    NOT NULL                    -- msgpack of ReportEvent.to_dict()
);

CREATE INDEX events_ts ON events (ts);
