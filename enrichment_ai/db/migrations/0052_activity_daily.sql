-- Incremental nightly rollups (docs/metrics.md "How the nightly run stays incremental").
--
-- activity_messages  one row per human server message of a day the rollup state covers:
--                    the inputs the formulas read, none of which depends on θ(s)
-- activity_daily     one row per (server, UTC day, human author): the per-day counts the
--                    formulas sum (θ(s)-dependent ones computed with rollup_thresholds)
-- rollup_days        UTC days whose activity_* rows were computed from the raw tables and
--                    have been kept current since (through rollup_dirty)
-- rollup_thresholds  θ(s) the activity_daily counts of each server were computed with
-- rollup_dirty       append-only change log: (message_id, created_at) of every message
--                    whose inputs may have changed; written by the triggers below in the
--                    writer's own transaction, consumed by the nightly run
--
-- The four state tables are UNLOGGED: they are derived data, rebuilt from the raw tables
-- whenever missing, so they skip the write-ahead log. A crash (or a failover to a
-- standby) empties all four together, and the next run simply finds no day stored and
-- recomputes the window from raw, as a first run does. rollup_dirty is logged: a change's
-- mark must survive with the change.
--
-- Why the log is safe under concurrency: the run deletes the marks of days <= D
-- (DELETE ... RETURNING) and recomputes those messages from the raw tables in later
-- statements of the same READ COMMITTED transaction. A mark commits together with its
-- change, so every change whose mark the DELETE saw (and removed) is visible to those
-- later statements. Marks of transactions that commit after the DELETE's snapshot are
-- not deleted and stay for the next run (recomputing a message whose change was already
-- seen is harmless: its inputs are replaced, not added). The log has no unique key,
-- writers only append, so a writer never waits for the run nor conflicts with another.

CREATE UNLOGGED TABLE IF NOT EXISTS activity_messages (
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    message_id UUID NOT NULL,
    server_id UUID NOT NULL,
    user_id UUID NOT NULL,
    day DATE NOT NULL,                 -- UTC day of created_at
    live BOOLEAN NOT NULL,             -- not deleted
    substantive BOOLEAN NOT NULL,      -- content of at least 40 characters
    responded BOOLEAN NOT NULL,        -- another person reacted or replied
    sentiment NUMERIC(3,2),            -- of the latest analysis (NULL: none / not scored)
    toxicity NUMERIC(3,2),
    PRIMARY KEY (created_at, message_id)
);

CREATE UNLOGGED TABLE IF NOT EXISTS activity_daily (
    server_id UUID NOT NULL,
    day DATE NOT NULL,
    user_id UUID NOT NULL,
    messages INTEGER NOT NULL,         -- all their messages that day (deleted ones included)
    responded INTEGER NOT NULL,        -- ... that another person reacted or replied to
    helpful INTEGER NOT NULL,          -- ... live and responded
    quality INTEGER NOT NULL,          -- ... live, substantive, toxicity scored and < θ(s)
    scored INTEGER NOT NULL,           -- ... with a sentiment score
    positive INTEGER NOT NULL,         -- ... sentiment >= 0.25
    toxic INTEGER NOT NULL,            -- ... toxicity >= θ(s)
    PRIMARY KEY (server_id, day, user_id)
);

CREATE UNLOGGED TABLE IF NOT EXISTS rollup_days (
    day DATE PRIMARY KEY,
    computed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);

CREATE UNLOGGED TABLE IF NOT EXISTS rollup_thresholds (
    server_id UUID PRIMARY KEY,
    threshold NUMERIC NOT NULL
);

CREATE TABLE IF NOT EXISTS rollup_dirty (
    message_id UUID NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL
);

-- The nightly run reads one day of reactions by their message's day (as it reads
-- ai_analysis by idx_ai_analysis_message_created), not the whole table.
CREATE INDEX IF NOT EXISTS idx_message_reactions_message_created ON message_reactions(message_created_at);

-- Every nightly run rewrites every reputation row (last_calculated moves forward): room
-- on each page lets the new version sit beside the old one (a HOT update, no index
-- writes, where the score itself did not change). Applies to pages written from now on.
ALTER TABLE reputation_scores SET (fillfactor = 50);

-- Triggers: statement-level, with transition tables, on the partitioned parents (rows
-- of every partition appear in them). PostgreSQL allows one event and no column list
-- per trigger with transition tables, hence one trigger per event and the column
-- comparison inside the function. Each statement costs one INSERT ... SELECT.

-- messages: the message itself, and the message it replies to (its "responded").
CREATE OR REPLACE FUNCTION rollup_mark_messages() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT n.id, n.created_at FROM new_rows n
        UNION
        SELECT t.id, t.created_at FROM new_rows n JOIN messages t ON t.id = n.referenced_message_id
        WHERE n.referenced_message_id IS NOT NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT o.id, o.created_at FROM old_rows o
        UNION
        SELECT t.id, t.created_at FROM old_rows o JOIN messages t ON t.id = o.referenced_message_id
        WHERE o.referenced_message_id IS NOT NULL;
    ELSE
        -- only what the formulas read: deletion, length class of the content, author,
        -- channel, the replied-to message, the day
        WITH changed AS (
            SELECT o.id AS old_id, o.created_at AS old_created_at, o.referenced_message_id AS old_target,
                   n.id AS new_id, n.created_at AS new_created_at, n.referenced_message_id AS new_target
            FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
            WHERE o.id IS NULL OR n.id IS NULL
               OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)
               OR (COALESCE(char_length(o.content), 0) >= 40) <> (COALESCE(char_length(n.content), 0) >= 40)
               OR o.author_id <> n.author_id OR o.channel_id <> n.channel_id
               OR o.created_at <> n.created_at
               OR o.referenced_message_id IS DISTINCT FROM n.referenced_message_id
        ), keys AS (
            SELECT old_id AS id, old_created_at AS created_at FROM changed WHERE old_id IS NOT NULL
            UNION ALL
            SELECT new_id, new_created_at FROM changed WHERE new_id IS NOT NULL
        ), targets AS (
            SELECT old_target AS target FROM changed WHERE old_target IS NOT NULL
            UNION
            SELECT new_target FROM changed WHERE new_target IS NOT NULL
        )
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT id, created_at FROM keys
        UNION
        SELECT t.id, t.created_at FROM targets x JOIN messages t ON t.id = x.target;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rollup_mark_messages_insert ON messages;
CREATE TRIGGER rollup_mark_messages_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_messages();
DROP TRIGGER IF EXISTS rollup_mark_messages_update ON messages;
CREATE TRIGGER rollup_mark_messages_update AFTER UPDATE ON messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_messages();
DROP TRIGGER IF EXISTS rollup_mark_messages_delete ON messages;
CREATE TRIGGER rollup_mark_messages_delete AFTER DELETE ON messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_messages();

-- message_reactions and ai_analysis carry the (message_id, message_created_at) they
-- belong to: no lookup needed.
CREATE OR REPLACE FUNCTION rollup_mark_message_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT DISTINCT message_id, message_created_at FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT DISTINCT message_id, message_created_at FROM old_rows;
    ELSE
        INSERT INTO rollup_dirty (message_id, created_at)
        SELECT message_id, message_created_at FROM old_rows
        UNION
        SELECT message_id, message_created_at FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rollup_mark_reactions_insert ON message_reactions;
CREATE TRIGGER rollup_mark_reactions_insert AFTER INSERT ON message_reactions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();
DROP TRIGGER IF EXISTS rollup_mark_reactions_update ON message_reactions;
CREATE TRIGGER rollup_mark_reactions_update AFTER UPDATE ON message_reactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();
DROP TRIGGER IF EXISTS rollup_mark_reactions_delete ON message_reactions;
CREATE TRIGGER rollup_mark_reactions_delete AFTER DELETE ON message_reactions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();
DROP TRIGGER IF EXISTS rollup_mark_analysis_insert ON ai_analysis;
CREATE TRIGGER rollup_mark_analysis_insert AFTER INSERT ON ai_analysis
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();
DROP TRIGGER IF EXISTS rollup_mark_analysis_update ON ai_analysis;
CREATE TRIGGER rollup_mark_analysis_update AFTER UPDATE ON ai_analysis
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();
DROP TRIGGER IF EXISTS rollup_mark_analysis_delete ON ai_analysis;
CREATE TRIGGER rollup_mark_analysis_delete AFTER DELETE ON ai_analysis
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_mark_message_rows();

-- Rare changes that move many messages at once (row-level, fire only on a real change):
-- a person becomes (or stops being) a bot or system account -> their messages, the
-- messages they reacted to and the messages they replied to; a channel moves to another
-- server -> its messages.
CREATE OR REPLACE FUNCTION rollup_mark_user() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (message_id, created_at)
    SELECT m.id, m.created_at FROM messages m WHERE m.author_id = NEW.id
    UNION
    SELECT r.message_id, r.message_created_at FROM message_reactions r WHERE r.user_id = NEW.id
    UNION
    SELECT t.id, t.created_at FROM messages rep JOIN messages t ON t.id = rep.referenced_message_id
    WHERE rep.author_id = NEW.id AND rep.referenced_message_id IS NOT NULL;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rollup_mark_user ON users;
CREATE TRIGGER rollup_mark_user AFTER UPDATE OF bot, system ON users
    FOR EACH ROW WHEN ((OLD.bot IS TRUE OR OLD.system IS TRUE) IS DISTINCT FROM (NEW.bot IS TRUE OR NEW.system IS TRUE))
    EXECUTE FUNCTION rollup_mark_user();

CREATE OR REPLACE FUNCTION rollup_mark_channel() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rollup_dirty (message_id, created_at)
    SELECT m.id, m.created_at FROM messages m WHERE m.channel_id = NEW.id;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS rollup_mark_channel ON channels;
CREATE TRIGGER rollup_mark_channel AFTER UPDATE OF server_id ON channels
    FOR EACH ROW WHEN (OLD.server_id IS DISTINCT FROM NEW.server_id)
    EXECUTE FUNCTION rollup_mark_channel();
