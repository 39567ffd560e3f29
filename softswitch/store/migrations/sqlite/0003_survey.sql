-- 0003: customer-satisfaction survey answers (ACC-8), one per surveyed call (sqlite).
CREATE TABLE survey_results (
    call_id   TEXT    NOT NULL,   -- Call-ID of the caller's leg
    queue     TEXT    NOT NULL,
    agent     TEXT    NOT NULL,   -- the agent who served the call
    score     INTEGER NOT NULL,   -- 1..5 keyed by the caller
    at        REAL    NOT NULL    -- Unix epoch seconds
);

CREATE INDEX survey_results_at ON survey_results (at);
CREATE INDEX survey_results_call_id ON survey_results (call_id);
