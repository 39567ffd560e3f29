-- 0002: call detail records, one per call, written when the call ends (sqlite).
CREATE TABLE cdr (
    call_id       TEXT    NOT NULL,   -- Call-ID of the caller's leg
    caller        TEXT    NOT NULL,
    callee        TEXT    NOT NULL,
    started_at    REAL    NOT NULL,   -- Unix epoch seconds
    answered_at   REAL,               -- NULL when never answered
    ended_at      REAL    NOT NULL,
    duration      REAL    NOT NULL,   -- seconds, start to end
    billable      REAL    NOT NULL,   -- seconds, answer to end
    disposition   TEXT    NOT NULL,
    hangup_cause  TEXT    NOT NULL,
    hangup_side   TEXT    NOT NULL
);

CREATE INDEX cdr_started_at ON cdr (started_at);
CREATE INDEX cdr_call_id ON cdr (call_id);
