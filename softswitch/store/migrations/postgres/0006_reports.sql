-- 0006: CMS reports (issue 5, CMS-5) (postgres): closed interval buckets per queue and per
-- agent (one column per additive figure of reporting/aggregate.py QUEUE_COUNTS / AGENT_COUNTS,
-- seconds for times; max_wait is a maximum), aux seconds by reason code, and daily rollups
-- keyed by the local day (the [web] timezone) of each interval's start. Written by
-- reporting/service.py (upsert: re-closing an interval replaces it), replaced by
-- `softswitch reports rebuild`.

CREATE TABLE report_queue_intervals (
    queue                text NOT NULL,
    start_ts             double precision NOT NULL,  -- interval start, Unix epoch seconds
    interval_s           double precision NOT NULL,  -- its length
    day                  text NOT NULL,  -- local day of start_ts, YYYY-MM-DD
    offered              double precision NOT NULL DEFAULT 0,
    queued               double precision NOT NULL DEFAULT 0,
    answered             double precision NOT NULL DEFAULT 0,
    answered_in_t        double precision NOT NULL DEFAULT 0,
    wait_sum             double precision NOT NULL DEFAULT 0,
    max_wait             double precision NOT NULL DEFAULT 0,
    abandoned            double precision NOT NULL DEFAULT 0,
    short_abandoned      double precision NOT NULL DEFAULT 0,
    abandoned_in_t       double precision NOT NULL DEFAULT 0,
    abandon_wait_sum     double precision NOT NULL DEFAULT 0,
    overflowed           double precision NOT NULL DEFAULT 0,
    dropped              double precision NOT NULL DEFAULT 0,
    handled              double precision NOT NULL DEFAULT 0,
    talk                 double precision NOT NULL DEFAULT 0,
    hold                 double precision NOT NULL DEFAULT 0,
    acw                  double precision NOT NULL DEFAULT 0,
    transfers            double precision NOT NULL DEFAULT 0,
    ring_no_answer       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, start_ts)
);

CREATE INDEX report_queue_intervals_start ON report_queue_intervals (start_ts);
CREATE INDEX report_queue_intervals_day ON report_queue_intervals (day);

CREATE TABLE report_queue_days (
    queue                text NOT NULL,
    day                  text NOT NULL,  -- local day, YYYY-MM-DD
    offered              double precision NOT NULL DEFAULT 0,
    queued               double precision NOT NULL DEFAULT 0,
    answered             double precision NOT NULL DEFAULT 0,
    answered_in_t        double precision NOT NULL DEFAULT 0,
    wait_sum             double precision NOT NULL DEFAULT 0,
    max_wait             double precision NOT NULL DEFAULT 0,
    abandoned            double precision NOT NULL DEFAULT 0,
    short_abandoned      double precision NOT NULL DEFAULT 0,
    abandoned_in_t       double precision NOT NULL DEFAULT 0,
    abandon_wait_sum     double precision NOT NULL DEFAULT 0,
    overflowed           double precision NOT NULL DEFAULT 0,
    dropped              double precision NOT NULL DEFAULT 0,
    handled              double precision NOT NULL DEFAULT 0,
    talk                 double precision NOT NULL DEFAULT 0,
    hold                 double precision NOT NULL DEFAULT 0,
    acw                  double precision NOT NULL DEFAULT 0,
    transfers            double precision NOT NULL DEFAULT 0,
    ring_no_answer       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, day)
);

CREATE INDEX report_queue_days_day ON report_queue_days (day);

CREATE TABLE report_agent_intervals (
    agent                text NOT NULL,
    start_ts             double precision NOT NULL,  -- interval start, Unix epoch seconds
    interval_s           double precision NOT NULL,  -- its length
    day                  text NOT NULL,  -- local day of start_ts, YYYY-MM-DD
    staffed              double precision NOT NULL DEFAULT 0,
    available            double precision NOT NULL DEFAULT 0,
    ringing              double precision NOT NULL DEFAULT 0,
    talk                 double precision NOT NULL DEFAULT 0,
    hold                 double precision NOT NULL DEFAULT 0,
    acw                  double precision NOT NULL DEFAULT 0,
    aux                  double precision NOT NULL DEFAULT 0,
    handled              double precision NOT NULL DEFAULT 0,
    offered              double precision NOT NULL DEFAULT 0,
    ring_no_answer       double precision NOT NULL DEFAULT 0,
    login                double precision,  -- first login in the interval
    logoff               double precision,  -- last logoff in the interval
    PRIMARY KEY (agent, start_ts)
);

CREATE INDEX report_agent_intervals_start ON report_agent_intervals (start_ts);
CREATE INDEX report_agent_intervals_day ON report_agent_intervals (day);

CREATE TABLE report_agent_days (
    agent                text NOT NULL,
    day                  text NOT NULL,  -- local day, YYYY-MM-DD
    staffed              double precision NOT NULL DEFAULT 0,
    available            double precision NOT NULL DEFAULT 0,
    ringing              double precision NOT NULL DEFAULT 0,
    talk                 double precision NOT NULL DEFAULT 0,
    hold                 double precision NOT NULL DEFAULT 0,
    acw                  double precision NOT NULL DEFAULT 0,
    aux                  double precision NOT NULL DEFAULT 0,
    handled              double precision NOT NULL DEFAULT 0,
    offered              double precision NOT NULL DEFAULT 0,
    ring_no_answer       double precision NOT NULL DEFAULT 0,
    login                double precision,  -- first login in the interval
    logoff               double precision,  -- last logoff in the interval
    PRIMARY KEY (agent, day)
);

CREATE INDEX report_agent_days_day ON report_agent_days (day);

CREATE TABLE report_agent_interval_aux (
    agent                text NOT NULL,
    start_ts             double precision NOT NULL,
    day                  text NOT NULL,  -- local day of start_ts
    reason               text NOT NULL,  -- aux reason code ("" when none given)
    seconds              double precision NOT NULL,
    PRIMARY KEY (agent, start_ts, reason)
);

CREATE TABLE report_agent_day_aux (
    agent                text NOT NULL,
    day                  text NOT NULL,
    reason               text NOT NULL,
    seconds              double precision NOT NULL,
    PRIMARY KEY (agent, day, reason)
);

CREATE INDEX report_agent_interval_aux_day ON report_agent_interval_aux (day);
