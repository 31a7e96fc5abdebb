-- The message embedding of each analysis pass, kept for the conversation summaries so a
-- summary never runs the encoder again over messages just encoded for their analysis.
-- A cache, not a record: UNLOGGED (no WAL on the hot write path; emptied by a crash, after
-- which summaries encode the few messages they miss) and pruned once no window needs it.
-- ``encoder`` names the encoder + adapter that made the vector (an embedding from another
-- model version is never mixed into a window). ``embedding``: float16 little-endian,
-- L2-normalised, dim = octet_length / 2.
CREATE UNLOGGED TABLE IF NOT EXISTS message_embeddings (
    message_id UUID PRIMARY KEY,
    encoder TEXT NOT NULL,
    embedding BYTEA NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_message_embeddings_created ON message_embeddings(created_at);
