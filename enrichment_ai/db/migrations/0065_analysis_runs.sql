-- ai_analysis.analyses: how many times this (message, model_version) row was computed.
--
-- 1 on insert, +1 each time an upsert recomputes it (a redelivered event, a sweeper copy,
-- an explicit re-score). Delivery is at-least-once, so recomputation is harmless to the
-- data but costs a full analysis; this counter makes that cost visible per message
-- (bench/chaos.py reads it: "extra analyses" = sum(analyses - 1)).
ALTER TABLE ai_analysis ADD COLUMN IF NOT EXISTS analyses INTEGER NOT NULL DEFAULT 1;
