-- reputation_scores: index the server alone, not (server_id, score).
--
-- Every nightly run rewrites every reputation row (last_calculated moves; 0052 gave the
-- table fillfactor 50 so the new version fits on the same page). An UPDATE is HOT (no
-- index entry written) only if no indexed column changes: with score in an index, every
-- row whose score moved wrote a new entry in that index and in the unique key, about
-- half the rows each night. The readers (enrichment_ai/db/report_sql.py TOP,
-- enrichment_ai/db/views.py reputation_for) take one server's rows by server_id and sort
-- them for the top N (their ORDER BY also has columns of other tables, so the old index
-- never gave them the order either).
CREATE INDEX IF NOT EXISTS idx_reputation_scores_server_id ON reputation_scores(server_id);
DROP INDEX IF EXISTS idx_reputation_scores_server;
