-- Least-privilege roles (docs/operations.md, "Database roles").
--
-- enrichment_migrator  owns the pipeline's tables and functions (everything this project
--                      creates except the platform tables of 0001/0002); runs migrations
-- enrichment_worker    what workers connect as: SELECT on the platform tables (and only
--                      the non-secret columns of users) the pipeline reads, SELECT/INSERT/
--                      UPDATE/DELETE on the pipeline's own tables, no DDL, nothing else;
--                      month partitions only through ensure_message_partitions()
-- enrichment_readonly  dashboards: SELECT on the analysis, summary, reputation and health
--                      tables, and the names (not the content) of servers/channels/users
--
-- The roles are cluster-wide and created NOLOGIN (group roles): a deployment grants them
-- to its login users (GRANT enrichment_worker TO app_worker), the embedded setup turns
-- LOGIN on (enrichment_ai.db.roles). Where the platform owns roles and the migrating user
-- may not create them, this migration creates none and says so (NOTICE); the grants are
-- then applied to whichever of the roles exist, and `enrichment-ai health --check roles`
-- reports the missing ones.
--
-- The grants live in enrichment_apply_grants(), which db.migrate() calls after every run:
-- tables added by later migrations get the same treatment without repeating the list.

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['enrichment_migrator', 'enrichment_worker', 'enrichment_readonly'] LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r);
        IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database of this cluster migrated at the same moment
            END;
        ELSE
            RAISE NOTICE 'role % is missing and % may not create roles: create it as the DBA '
                         '(docs/operations.md "Database roles")', r, current_user;
        END IF;
    END LOOP;
END $$;

-- Partitions of messages (DDL on a platform table) are created by this function only;
-- it runs with its owner's rights (the owner of messages), the worker may only call it.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ensure_message_partitions(integer, integer) SECURITY DEFINER '
                   'SET search_path = %I, pg_temp', current_schema());
    REVOKE EXECUTE ON FUNCTION ensure_message_partitions(integer, integer) FROM PUBLIC;
END $$;

CREATE OR REPLACE FUNCTION enrichment_apply_grants() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    -- the platform's tables: read-only for the worker, never owned by the migrator
    platform text[] := ARRAY['users', 'user_sessions', 'user_preferences', 'servers',
        'server_members', 'roles', 'member_roles', 'channels', 'channel_permissions',
        'messages', 'message_reactions', 'message_attachments'];
    -- the platform tables the pipeline reads (users: only the columns below)
    worker_reads text[] := ARRAY['messages', 'channels', 'servers', 'server_members',
        'message_reactions'];
    user_columns text := 'id, username, display_name, bot, system, locale, created_at, deleted_at';
    -- pipeline tables the worker reads but does not write
    worker_read_only text[] := ARRAY['schema_migrations', 'server_enrichment_settings',
        'moderation_events'];
    -- what dashboards read
    dashboards text[] := ARRAY['ai_analysis', 'analysis_skips', 'conversation_summaries',
        'reputation_scores', 'community_health', 'moderation_events', 'rejected_events',
        'server_enrichment_settings', 'schema_migrations'];
    has_migrator boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enrichment_migrator');
    has_worker boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enrichment_worker');
    has_readonly boolean := EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'enrichment_readonly');
    t record;
BEGIN
    FOR t IN
        SELECT c.oid::regclass AS rel, c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner,
               EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) AS owned_by_table
        FROM pg_class c
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind IN ('r', 'p', 'S', 'v', 'm') AND NOT c.relispartition
          -- sequences follow their table; an owned sequence of a platform table is platform's
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d JOIN pg_class o ON o.oid = d.refobjid
              WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND o.relname = ANY(platform)))
    LOOP
        IF t.relname = ANY(platform) THEN
            IF has_worker AND t.relname = ANY(worker_reads) THEN
                EXECUTE format('GRANT SELECT ON %s TO enrichment_worker', t.rel);
            ELSIF has_worker AND t.relname = 'users' THEN
                EXECUTE format('GRANT SELECT (%s) ON %s TO enrichment_worker', user_columns, t.rel);
            END IF;
            IF has_readonly AND t.relname IN ('servers', 'channels') THEN
                EXECUTE format('GRANT SELECT (id, name) ON %s TO enrichment_readonly', t.rel);
            ELSIF has_readonly AND t.relname = 'users' THEN
                EXECUTE format('GRANT SELECT (id, username, display_name) ON %s TO enrichment_readonly', t.rel);
            END IF;
            IF has_migrator THEN  -- its tables reference and trigger on these
                EXECUTE format('GRANT SELECT, REFERENCES, TRIGGER ON %s TO enrichment_migrator', t.rel);
            END IF;
            CONTINUE;
        END IF;
        -- (a sequence owned by a table follows the table's owner)
        IF has_migrator AND t.owner <> 'enrichment_migrator' AND NOT (t.relkind = 'S' AND t.owned_by_table) THEN
            BEGIN
                EXECUTE format('ALTER %s %s OWNER TO enrichment_migrator',
                               CASE t.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, t.rel);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'cannot give % to enrichment_migrator (run migrations as its owner)', t.rel;
            END;
        END IF;
        IF has_worker THEN
            IF t.relkind = 'S' THEN
                EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO enrichment_worker', t.rel);
            ELSIF t.relname = ANY(worker_read_only) OR t.relkind IN ('v', 'm') THEN
                EXECUTE format('GRANT SELECT ON %s TO enrichment_worker', t.rel);
            ELSE
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO enrichment_worker', t.rel);
            END IF;
        END IF;
        IF has_readonly AND (t.relname = ANY(dashboards) OR t.relkind IN ('v', 'm')) THEN
            EXECUTE format('GRANT SELECT ON %s TO enrichment_readonly', t.rel);
        END IF;
    END LOOP;
    IF has_worker THEN
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO enrichment_worker', current_database());
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO enrichment_worker', current_schema());
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM enrichment_worker', current_schema());
        GRANT EXECUTE ON FUNCTION ensure_message_partitions(integer, integer) TO enrichment_worker;
    END IF;
    IF has_readonly THEN
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO enrichment_readonly', current_database());
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO enrichment_readonly', current_schema());
        EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM enrichment_readonly', current_schema());
    END IF;
    IF has_migrator THEN
        EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO enrichment_migrator', current_database());
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO enrichment_migrator', current_schema());
        GRANT EXECUTE ON FUNCTION ensure_message_partitions(integer, integer) TO enrichment_migrator;
    END IF;
END
$fn$;

SELECT enrichment_apply_grants();
