-- Per-(server, person) totals of activity_daily (docs/metrics.md "How the nightly run
-- stays incremental"): what reputation sums over the window, kept current by the
-- triggers below, so the nightly run reads one row per person instead of aggregating
-- every (server, day, person) row of the 90-day window.
--
-- activity_totals  one row per (server, person) with at least one activity_daily row:
--                  sums over ALL their activity_daily rows (whatever the day); equal to
--                  the window's numbers when activity_daily holds only days of the
--                  window, which the run checks before reading it.
--
-- UNLOGGED like the rest of the rollup state (0052): a crash empties it together with
-- activity_daily, and the triggers rebuild it as activity_daily is rebuilt. It is
-- derived only from activity_daily: never write it directly.

CREATE UNLOGGED TABLE IF NOT EXISTS activity_totals (
    server_id UUID NOT NULL,
    user_id UUID NOT NULL,
    helpful BIGINT NOT NULL,           -- Σ helpful
    quality BIGINT NOT NULL,           -- Σ quality
    active_days INTEGER NOT NULL,      -- number of activity_daily rows (> 0)
    points BIGINT NOT NULL,            -- Σ min(200, 10·helpful + 2·quality + 5)
    PRIMARY KEY (server_id, user_id)
) WITH (fillfactor = 50);              -- a night updates the day's active people: HOT

-- A person's reputation points for one day of activity_daily (docs/metrics.md: the
-- daily cap of 200), the one definition the triggers below and the rollup's SQL use.
CREATE OR REPLACE FUNCTION rollup_daily_points(helpful integer, quality integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN LEAST(200, 10 * helpful + 2 * quality + 5);

-- Statement-level, with transition tables (one trigger per event, as in 0052): each
-- statement on activity_daily folds its net change into the totals with one MERGE
-- (+ the new rows' contributions, − the old rows'); a person left with no row loses
-- the totals row. INSERT … ON CONFLICT DO UPDATE fires the INSERT trigger with the
-- inserted rows and the UPDATE trigger with the updated ones.
CREATE OR REPLACE FUNCTION activity_totals_apply() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        MERGE INTO activity_totals t
        USING (SELECT server_id, user_id, sum(helpful) AS helpful, sum(quality) AS quality, count(*) AS active_days,
                      sum(rollup_daily_points(helpful, quality)) AS points
               FROM new_rows GROUP BY server_id, user_id) d
        ON t.server_id = d.server_id AND t.user_id = d.user_id
        WHEN MATCHED THEN UPDATE SET helpful = t.helpful + d.helpful, quality = t.quality + d.quality,
                                     active_days = t.active_days + d.active_days, points = t.points + d.points
        WHEN NOT MATCHED THEN INSERT (server_id, user_id, helpful, quality, active_days, points)
                              VALUES (d.server_id, d.user_id, d.helpful, d.quality, d.active_days, d.points);
    ELSIF TG_OP = 'DELETE' THEN
        MERGE INTO activity_totals t
        USING (SELECT server_id, user_id, sum(helpful) AS helpful, sum(quality) AS quality, count(*) AS active_days,
                      sum(rollup_daily_points(helpful, quality)) AS points
               FROM old_rows GROUP BY server_id, user_id) d
        ON t.server_id = d.server_id AND t.user_id = d.user_id
        WHEN MATCHED AND t.active_days <= d.active_days THEN DELETE
        WHEN MATCHED THEN UPDATE SET helpful = t.helpful - d.helpful, quality = t.quality - d.quality,
                                     active_days = t.active_days - d.active_days, points = t.points - d.points;
    ELSE
        MERGE INTO activity_totals t
        USING (SELECT server_id, user_id, sum(helpful) AS helpful, sum(quality) AS quality,
                      sum(rows) AS active_days, sum(points) AS points
               FROM (SELECT server_id, user_id, helpful, quality, 1 AS rows,
                            rollup_daily_points(helpful, quality) AS points FROM new_rows
                     UNION ALL
                     SELECT server_id, user_id, -helpful, -quality, -1,
                            -rollup_daily_points(helpful, quality) FROM old_rows) c
               GROUP BY server_id, user_id) d
        ON t.server_id = d.server_id AND t.user_id = d.user_id
        WHEN MATCHED AND t.active_days + d.active_days <= 0 THEN DELETE
        WHEN MATCHED THEN UPDATE SET helpful = t.helpful + d.helpful, quality = t.quality + d.quality,
                                     active_days = t.active_days + d.active_days, points = t.points + d.points
        WHEN NOT MATCHED AND d.active_days > 0 THEN
            INSERT (server_id, user_id, helpful, quality, active_days, points)
            VALUES (d.server_id, d.user_id, d.helpful, d.quality, d.active_days, d.points);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION activity_totals_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE activity_totals;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS activity_totals_insert ON activity_daily;
CREATE TRIGGER activity_totals_insert AFTER INSERT ON activity_daily
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_totals_apply();
DROP TRIGGER IF EXISTS activity_totals_update ON activity_daily;
CREATE TRIGGER activity_totals_update AFTER UPDATE ON activity_daily
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_totals_apply();
DROP TRIGGER IF EXISTS activity_totals_delete ON activity_daily;
CREATE TRIGGER activity_totals_delete AFTER DELETE ON activity_daily
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION activity_totals_apply();
DROP TRIGGER IF EXISTS activity_totals_truncate ON activity_daily;
CREATE TRIGGER activity_totals_truncate AFTER TRUNCATE ON activity_daily
    FOR EACH STATEMENT EXECUTE FUNCTION activity_totals_truncate();

-- Existing state: the totals of what activity_daily holds now.
TRUNCATE activity_totals;
INSERT INTO activity_totals (server_id, user_id, helpful, quality, active_days, points)
SELECT server_id, user_id, sum(helpful), sum(quality), count(*), sum(rollup_daily_points(helpful, quality))
FROM activity_daily GROUP BY server_id, user_id;
