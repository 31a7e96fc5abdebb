-- Messages, partitioned by month of created_at (UTC), with a DEFAULT partition as a
-- safety net, plus reactions and attachments. Deviations: docs/schema.md.

CREATE TABLE IF NOT EXISTS messages (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    channel_id UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    author_id UUID NOT NULL REFERENCES users(id),
    content TEXT,
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    edited_timestamp TIMESTAMP WITH TIME ZONE,
    tts BOOLEAN DEFAULT FALSE,
    mention_everyone BOOLEAN DEFAULT FALSE,
    mentions UUID[] DEFAULT '{}',
    mention_roles UUID[] DEFAULT '{}',
    mention_channels UUID[] DEFAULT '{}',
    attachments JSONB DEFAULT '[]',
    embeds JSONB DEFAULT '[]',
    reactions JSONB DEFAULT '[]',
    nonce VARCHAR(255),
    pinned BOOLEAN DEFAULT FALSE,
    webhook_id UUID,
    type INTEGER DEFAULT 0,
    activity JSONB,
    application JSONB,
    application_id UUID,
    message_reference JSONB,
    flags INTEGER DEFAULT 0,
    referenced_message_id UUID,  -- seed: REFERENCES messages(id); see docs/schema.md
    thread_id UUID,
    components JSONB DEFAULT '[]',
    sticker_items JSONB DEFAULT '[]',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    deleted_at TIMESTAMP WITH TIME ZONE,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE TABLE IF NOT EXISTS messages_default PARTITION OF messages DEFAULT;

-- Indexes on the parent are created on every partition, present and future.
CREATE INDEX IF NOT EXISTS idx_messages_channel_created ON messages(channel_id, created_at);
CREATE INDEX IF NOT EXISTS idx_messages_author_id ON messages(author_id);
CREATE INDEX IF NOT EXISTS idx_messages_timestamp ON messages(timestamp);
CREATE INDEX IF NOT EXISTS idx_messages_content_gin ON messages USING gin(to_tsvector('english', content));
CREATE INDEX IF NOT EXISTS idx_messages_referenced ON messages(referenced_message_id)
    WHERE referenced_message_id IS NOT NULL;
-- Sweeper: live messages by age.
CREATE INDEX IF NOT EXISTS idx_messages_live_created ON messages(created_at) WHERE deleted_at IS NULL;
-- Moderation rollups: deletions by day.
CREATE INDEX IF NOT EXISTS idx_messages_deleted_at ON messages(deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS message_reactions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id UUID NOT NULL,
    message_created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    emoji_id UUID,
    emoji_name VARCHAR(100),
    emoji_animated BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    FOREIGN KEY (message_id, message_created_at)
        REFERENCES messages(id, created_at) ON DELETE CASCADE,
    UNIQUE NULLS NOT DISTINCT (message_id, user_id, emoji_id, emoji_name)
);

CREATE TABLE IF NOT EXISTS message_attachments (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id UUID NOT NULL,
    message_created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    filename VARCHAR(255) NOT NULL,
    description TEXT,
    content_type VARCHAR(100),
    size INTEGER NOT NULL,
    url VARCHAR(500) NOT NULL,
    proxy_url VARCHAR(500),
    height INTEGER,
    width INTEGER,
    ephemeral BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    FOREIGN KEY (message_id, message_created_at)
        REFERENCES messages(id, created_at) ON DELETE CASCADE
);

CREATE INDEX IF NOT EXISTS idx_message_reactions_message_id ON message_reactions(message_id);
CREATE INDEX IF NOT EXISTS idx_message_reactions_user_id ON message_reactions(user_id);
CREATE INDEX IF NOT EXISTS idx_message_attachments_message_id ON message_attachments(message_id);

-- Monthly partitions messages_YYYY_MM (UTC month bounds) from months_back months before
-- the current month to months_ahead after it. A month whose rows already sit in
-- messages_default is left there (creating the partition would have to move rows, and
-- moving them would cascade-delete their analyses): it is reported by a NOTICE and
-- skipped. Returns the names of the partitions it created. Serialised by an advisory
-- transaction lock so migrate and the beat task never race.
CREATE OR REPLACE FUNCTION ensure_message_partitions(months_back integer, months_ahead integer)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    m timestamp;
    lo timestamptz;
    hi timestamptz;
    part text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('enrichment.ensure_message_partitions'));
    FOR i IN -months_back .. months_ahead LOOP
        m := this_month + make_interval(months => i);
        lo := m AT TIME ZONE 'UTC';
        hi := (m + interval '1 month') AT TIME ZONE 'UTC';
        part := format('messages_%s', to_char(m, 'YYYY_MM'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM messages_default WHERE created_at >= lo AND created_at < hi) THEN
            RAISE NOTICE 'messages_default holds rows for %, partition % not created', to_char(m, 'YYYY-MM'), part;
            CONTINUE;
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF messages FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        RETURN NEXT part;
    END LOOP;
END
$$;
