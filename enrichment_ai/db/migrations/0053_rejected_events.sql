-- Events that could not even name a message (a malformed or missing id): a producer bug.
-- They cannot go into analysis_skips (keyed by a UUID message id), so they are kept here,
-- one row per distinct (task, raw value), for the platform team to find and fix.
CREATE TABLE IF NOT EXISTS rejected_events (
    task TEXT NOT NULL,
    raw TEXT NOT NULL,            -- repr() of the offending argument, at most 200 characters
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    last_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (task, raw)
);
