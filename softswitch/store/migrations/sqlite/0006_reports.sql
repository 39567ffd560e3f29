-- 0006: CMS reports (issue 5, CMS-5) (sqlite): closed interval buckets per queue and per
-- agent (one column per additive figure of reporting/aggregate.py QUEUE_COUNTS / AGENT_COUNTS,
-- seconds for times; max_wait is a maximum), aux seconds by reason code, and daily rollups
-- keyed by the local day (the [web] timezone) of each interval's start. Written by
-- reporting/service.py (upsert: re-closing an interval replaces it), replaced by
-- `softswitch reports rebuild`.

CREATE TABLE report_queue_intervals (
    queue                TEXT NOT NULL,
    start_ts             REAL NOT NULL,  -- interval start, Unix epoch seconds
    interval_s           REAL NOT NULL,  -- its length
    day                  TEXT NOT NULL,  -- local day of start_ts, YYYY-MM-DD
    offered              REAL NOT NULL DEFAULT 0,
    queued               REAL NOT NULL DEFAULT 0,
    answered             REAL NOT NULL DEFAULT 0,
    answered_in_t        REAL NOT NULL DEFAULT 0,
    wait_sum             REAL NOT NULL DEFAULT 0,
    max_wait             REAL NOT NULL DEFAULT 0,
    abandoned            REAL NOT NULL DEFAULT 0,
    short_abandoned      REAL NOT NULL DEFAULT 0,
    abandoned_in_t       REAL NOT NULL DEFAULT 0,
    abandon_wait_sum     REAL NOT NULL DEFAULT 0,
    overflowed           REAL NOT NULL DEFAULT 0,
    dropped              REAL NOT NULL DEFAULT 0,
    handled              REAL NOT NULL DEFAULT 0,
    talk                 REAL NOT NULL DEFAULT 0,
    hold                 REAL NOT NULL DEFAULT 0,
    acw                  REAL NOT NULL DEFAULT 0,
    transfers            REAL NOT NULL DEFAULT 0,
    ring_no_answer       REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, start_ts)
);

CREATE INDEX report_queue_intervals_start ON report_queue_intervals (start_ts);
CREATE INDEX report_queue_intervals_day ON report_queue_intervals (day);

CREATE TABLE report_queue_days (
    queue                TEXT NOT NULL,
    day                  TEXT NOT NULL,  -- local day, YYYY-MM-DD
    offered              REAL NOT NULL DEFAULT 0,
    queued               REAL NOT NULL DEFAULT 0,
    answered             REAL NOT NULL DEFAULT 0,
    answered_in_t        REAL NOT NULL DEFAULT 0,
    wait_sum             REAL NOT NULL DEFAULT 0,
    max_wait             REAL NOT NULL DEFAULT 0,
    abandoned            REAL NOT NULL DEFAULT 0,
    short_abandoned      REAL NOT NULL DEFAULT 0,
    abandoned_in_t       REAL NOT NULL DEFAULT 0,
    abandon_wait_sum     REAL NOT NULL DEFAULT 0,
    overflowed           REAL NOT NULL DEFAULT 0,
    dropped              REAL NOT NULL DEFAULT 0,
    handled              REAL NOT NULL DEFAULT 0,
    talk                 REAL NOT NULL DEFAULT 0,
    hold                 REAL NOT NULL DEFAULT 0,
    acw                  REAL NOT NULL DEFAULT 0,
    transfers            REAL NOT NULL DEFAULT 0,
    ring_no_answer       REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, day)
);

CREATE INDEX report_queue_days_day ON report_queue_days (day);

CREATE TABLE report_agent_intervals (
    agent                TEXT NOT NULL,
    start_ts             REAL NOT NULL,  -- interval start, Unix epoch seconds
    interval_s           REAL NOT NULL,  -- its length
    day                  TEXT NOT NULL,  -- local day of start_ts, YYYY-MM-DD
    staffed              REAL NOT NULL DEFAULT 0,
    available            REAL NOT NULL DEFAULT 0,
    ringing              REAL NOT NULL DEFAULT 0,
    talk                 REAL NOT NULL DEFAULT 0,
    hold                 REAL NOT NULL DEFAULT 0,
    acw                  REAL NOT NULL DEFAULT 0,
    aux                  REAL NOT NULL DEFAULT 0,
    handled              REAL NOT NULL DEFAULT 0,
    offered              REAL NOT NULL DEFAULT 0,
    ring_no_answer       REAL NOT NULL DEFAULT 0,
    login                REAL,  -- first login in the interval
    logoff               REAL,  -- last logoff in the interval
    PRIMARY KEY (agent, start_ts)
);

CREATE INDEX report_agent_intervals_start ON report_agent_intervals (start_ts);
CREATE INDEX report_agent_intervals_day ON report_agent_intervals (day);

CREATE TABLE report_agent_days (
    agent                TEXT NOT NULL,
    day                  TEXT NOT NULL,  -- local day, YYYY-MM-DD
    staffed              REAL NOT NULL DEFAULT 0,
    available            REAL NOT NULL DEFAULT 0,
    ringing              REAL NOT NULL DEFAULT 0,
    talk                 REAL NOT NULL DEFAULT 0,
    hold                 REAL NOT NULL DEFAULT 0,
    acw                  REAL NOT NULL DEFAULT 0,
    aux                  REAL NOT NULL DEFAULT 0,
    handled              REAL NOT NULL DEFAULT 0,
    offered              REAL NOT NULL DEFAULT 0,
    ring_no_answer       REAL NOT NULL DEFAULT 0,
    login                REAL,  -- first login in the interval
    logoff               REAL,  -- last logoff in the interval
    PRIMARY KEY (agent, day)
);

CREATE INDEX report_agent_days_day ON report_agent_days (day);

CREATE TABLE report_agent_interval_aux (
    agent                TEXT NOT NULL,
    start_ts             REAL NOT NULL,
    day                  TEXT NOT NULL,  -- local day of start_ts
    reason               TEXT NOT NULL,  -- aux reason code ("" when none given)
    seconds              REAL NOT NULL,
    PRIMARY KEY (agent, start_ts, reason)
);

CREATE TABLE report_agent_day_aux (
    agent                TEXT NOT NULL,
    day                  TEXT NOT NULL,
    reason               TEXT NOT NULL,
    seconds              REAL NOT NULL,
    PRIMARY KEY (agent, day, reason)
);

CREATE INDEX report_agent_interval_aux_day ON report_agent_interval_aux (day);
