-- The pipeline's triggers on the platform's tables run with the pipeline's rights.
--
-- 0050 (moderation_events) and 0052 (rollup_dirty) put triggers on messages,
-- message_reactions, server_members, users and channels whose functions write the
-- pipeline's tables. They ran with the rights of whoever wrote the platform table; since
-- 0060 those tables belong to enrichment_migrator and nobody else may write them, so the
-- platform's own application role (any non-owner that may INSERT/UPDATE/DELETE its
-- tables) got "permission denied for table rollup_dirty" / "moderation_events" and could
-- no longer post a message, react, delete or time out a member.
--
-- Each of these functions now runs as enrichment_migrator (SECURITY DEFINER, the pattern
-- of ensure_message_partitions in 0060), with a fixed search_path so a writer's own
-- search_path cannot redirect its table names, and no EXECUTE for PUBLIC (trigger
-- functions cannot be called directly anyway; firing a trigger needs no EXECUTE). The
-- migrator owns what they write and holds SELECT on the platform tables they read
-- (enrichment_apply_grants). rollup_mark_message_rows also serves ai_analysis's triggers.
--
-- Where enrichment_migrator does not exist (or the migrating user may not give it
-- objects), the functions stay with the migrating user, who then still owns the tables
-- they write (0060 could not give those away either), and a NOTICE says so.
--
-- A later migration that CREATE OR REPLACEs one of these functions must repeat
-- SECURITY DEFINER and SET search_path (CREATE OR REPLACE resets both);
-- tests/integration/test_roles.py checks every trigger on the platform tables.

DO $$
DECLARE
    f text;
    has_migrator boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enrichment_migrator');
BEGIN
    FOREACH f IN ARRAY ARRAY[
        'enrichment_log_timeout()',     -- server_members  -> moderation_events
        'enrichment_log_deletion()',    -- messages        -> moderation_events
        'rollup_mark_messages()',       -- messages        -> rollup_dirty
        'rollup_mark_message_rows()',   -- message_reactions, ai_analysis -> rollup_dirty
        'rollup_mark_user()',           -- users           -> rollup_dirty
        'rollup_mark_channel()'         -- channels        -> rollup_dirty
    ] LOOP
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
        IF has_migrator THEN
            BEGIN
                EXECUTE format('ALTER FUNCTION %s OWNER TO enrichment_migrator', f);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot give function % to enrichment_migrator (run migrations as its owner); '
                             'it runs as %', f, current_user;
            END;
        END IF;
    END LOOP;
END $$;
