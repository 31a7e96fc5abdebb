-- Confirmed moderation actions, as a history the platform tables do not keep.
-- docs/metrics.md "Where moderation actions come from":
--   timeout        server_members.communication_disabled_until set to a new future value
--   message_delete messages.deleted_at set and messages.deleted_by names someone other
--                  than the author (self-deletions and unattributed deletions are not
--                  moderation)
-- Written by triggers so the platform needs no code change beyond filling deleted_by.

ALTER TABLE messages ADD COLUMN IF NOT EXISTS deleted_by UUID;

CREATE TABLE IF NOT EXISTS moderation_events (
    id BIGSERIAL PRIMARY KEY,
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    user_id UUID NOT NULL,              -- the member the action was taken against
    kind TEXT NOT NULL CHECK (kind IN ('timeout', 'message_delete')),
    message_id UUID,                    -- message_delete: the deleted message
    moderator_id UUID,                  -- message_delete: messages.deleted_by
    until TIMESTAMP WITH TIME ZONE,     -- timeout: communication_disabled_until
    created_at TIMESTAMP WITH TIME ZONE NOT NULL  -- when the action was taken
);
CREATE INDEX IF NOT EXISTS idx_moderation_events_server_time ON moderation_events(server_id, created_at);
CREATE INDEX IF NOT EXISTS idx_moderation_events_time ON moderation_events(created_at);

CREATE OR REPLACE FUNCTION enrichment_log_timeout() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    at timestamptz;
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.communication_disabled_until IS NOT DISTINCT FROM NEW.communication_disabled_until THEN
        RETURN NULL;
    END IF;
    -- the platform bumps updated_at on the update that applies the timeout
    IF TG_OP = 'UPDATE' AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        at := now();
    ELSE
        at := COALESCE(NEW.updated_at, now());
    END IF;
    IF NEW.communication_disabled_until > at THEN
        INSERT INTO moderation_events (server_id, user_id, kind, until, created_at)
        VALUES (NEW.server_id, NEW.user_id, 'timeout', NEW.communication_disabled_until, at);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrichment_timeout_log ON server_members;
CREATE TRIGGER enrichment_timeout_log
    AFTER INSERT OR UPDATE OF communication_disabled_until ON server_members
    FOR EACH ROW WHEN (NEW.communication_disabled_until IS NOT NULL)
    EXECUTE FUNCTION enrichment_log_timeout();

CREATE OR REPLACE FUNCTION enrichment_log_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO moderation_events (server_id, user_id, kind, message_id, moderator_id, created_at)
    SELECT c.server_id, NEW.author_id, 'message_delete', NEW.id, NEW.deleted_by, NEW.deleted_at
    FROM channels c WHERE c.id = NEW.channel_id AND c.server_id IS NOT NULL;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS enrichment_deletion_log ON messages;
CREATE TRIGGER enrichment_deletion_log
    AFTER UPDATE OF deleted_at, deleted_by ON messages
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
                       AND NEW.deleted_by IS NOT NULL AND NEW.deleted_by <> NEW.author_id)
    EXECUTE FUNCTION enrichment_log_deletion();
