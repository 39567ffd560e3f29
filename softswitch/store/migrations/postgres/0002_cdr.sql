-- 0002: call detail records, one per call, written when the call ends (postgres).
CREATE TABLE cdr (
    call_id       text    NOT NULL,   -- Call-ID of the caller's leg
    caller        text    NOT NULL,
    callee        text    NOT NULL,
    started_at    double precision    NOT NULL,   -- Unix epoch seconds
    answered_at   double precision,               -- NULL when never answered
    ended_at      double precision    NOT NULL,
    duration      double precision    NOT NULL,   -- seconds, start to end
    billable      double precision    NOT NULL,   -- seconds, answer to end
    disposition   text    NOT NULL,
    hangup_cause  text    NOT NULL,
    hangup_side   text    NOT NULL
);

CREATE INDEX cdr_started_at ON cdr (started_at);
CREATE INDEX cdr_call_id ON cdr (call_id);
