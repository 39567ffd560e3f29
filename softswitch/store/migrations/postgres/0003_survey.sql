-- 0003: customer-satisfaction survey answers (ACC-8), one per surveyed call (postgres).
CREATE TABLE survey_results (
    call_id   text     NOT NULL,   -- Call-ID of the caller's leg
    queue     text     NOT NULL,
    agent     text     NOT NULL,   -- the agent who served the call
    score     integer  NOT NULL,   -- 1..5 keyed by the caller
    at        double precision NOT NULL   -- Unix epoch seconds
);

CREATE INDEX survey_results_at ON survey_results (at);
CREATE INDEX survey_results_call_id ON survey_results (call_id);
