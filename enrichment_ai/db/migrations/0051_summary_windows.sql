-- Conversation summary windows (docs/metrics.md "Conversation summaries").
-- key_point_message_ids[i] is the message key_points[i] quotes; start_at/end_at are the
-- created_at of the window's first/last message (the next window starts after
-- (end_at, end_message_id)); one row per window.
ALTER TABLE conversation_summaries
    ADD COLUMN IF NOT EXISTS key_point_message_ids UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS start_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN IF NOT EXISTS end_at TIMESTAMP WITH TIME ZONE,
    ADD COLUMN IF NOT EXISTS summarizer TEXT;

CREATE UNIQUE INDEX IF NOT EXISTS uq_conversation_summaries_window
    ON conversation_summaries(channel_id, end_message_id);
CREATE INDEX IF NOT EXISTS idx_conversation_summaries_channel_end
    ON conversation_summaries(channel_id, end_at DESC, end_message_id DESC);
