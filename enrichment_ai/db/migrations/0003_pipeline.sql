-- Tables the pipeline owns: the seed's four, plus analysis_skips and
-- server_enrichment_settings. Deviations from the seed: docs/schema.md.

CREATE TABLE IF NOT EXISTS ai_analysis (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id UUID NOT NULL,
    message_created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    sentiment_score DECIMAL(3,2) CHECK (sentiment_score BETWEEN -1 AND 1), -- -1.0 to 1.0
    toxicity_score DECIMAL(3,2) CHECK (toxicity_score BETWEEN 0 AND 1),    -- 0.0 to 1.0
    language_code VARCHAR(10),
    topics TEXT[],
    entities JSONB,
    summary TEXT,
    confidence_score DECIMAL(3,2),
    model_version TEXT NOT NULL,
    sentiment_label TEXT,
    language_confidence REAL,
    scores JSONB,
    details JSONB,
    skip_reason TEXT,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    FOREIGN KEY (message_id, message_created_at)
        REFERENCES messages(id, created_at) ON DELETE CASCADE,
    CONSTRAINT ai_analysis_message_version_key UNIQUE (message_id, model_version)
);
-- The unique key's index serves lookups by message_id (seed: idx_ai_analysis_message_id).
CREATE INDEX IF NOT EXISTS idx_ai_analysis_sentiment ON ai_analysis(sentiment_score);
CREATE INDEX IF NOT EXISTS idx_ai_analysis_toxicity ON ai_analysis(toxicity_score);
-- Rollups by day, joining back to messages on (id, created_at).
CREATE INDEX IF NOT EXISTS idx_ai_analysis_message_created ON ai_analysis(message_created_at);

CREATE TABLE IF NOT EXISTS conversation_summaries (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id UUID NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    start_message_id UUID NOT NULL,  -- seed: REFERENCES messages(id); see docs/schema.md
    end_message_id UUID NOT NULL,    -- seed: REFERENCES messages(id); see docs/schema.md
    summary TEXT NOT NULL,
    key_points TEXT[],
    participants UUID[],
    message_count INTEGER,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_conversation_summaries_channel
    ON conversation_summaries(channel_id, created_at);

CREATE TABLE IF NOT EXISTS reputation_scores (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    server_id UUID REFERENCES servers(id) ON DELETE CASCADE,
    score INTEGER DEFAULT 0,
    helpful_messages INTEGER DEFAULT 0,
    quality_contributions INTEGER DEFAULT 0,
    community_engagement INTEGER DEFAULT 0,
    moderation_actions INTEGER DEFAULT 0,
    last_calculated TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE NULLS NOT DISTINCT (user_id, server_id)
);
CREATE INDEX IF NOT EXISTS idx_reputation_scores_server ON reputation_scores(server_id, score);

CREATE TABLE IF NOT EXISTS community_health (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    server_id UUID NOT NULL REFERENCES servers(id) ON DELETE CASCADE,
    date DATE NOT NULL,
    active_users INTEGER DEFAULT 0,
    message_count INTEGER DEFAULT 0,
    positive_sentiment_ratio DECIMAL(3,2),
    toxicity_incidents INTEGER DEFAULT 0,
    moderation_actions INTEGER DEFAULT 0,
    engagement_score DECIMAL(5,2),
    health_score DECIMAL(3,2), -- 0.0 to 1.0
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    UNIQUE (server_id, date)
);

-- Events the worker could not analyse: unknown ids (no FK on purpose), deleted messages.
CREATE TABLE IF NOT EXISTS analysis_skips (
    message_id UUID NOT NULL,
    model_version TEXT NOT NULL,
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 1,
    first_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    last_seen TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    PRIMARY KEY (message_id, model_version)
);

-- Per-server knobs; NULL means "use the deployment default from Settings".
CREATE TABLE IF NOT EXISTS server_enrichment_settings (
    server_id UUID PRIMARY KEY REFERENCES servers(id) ON DELETE CASCADE,
    toxicity_threshold REAL CHECK (toxicity_threshold BETWEEN 0 AND 1),
    alerts_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    summaries_enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
