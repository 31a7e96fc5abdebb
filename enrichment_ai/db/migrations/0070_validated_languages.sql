-- server_enrichment_settings.validated_languages_only: a server that wants scores only
-- where they were validated on labelled data in the message's language (the heads
-- artifact's coverage block; enrichment_ai/analysis/coverage.py). Transferred head
-- groups then stay NULL on its messages' ai_analysis rows, with a reason.
ALTER TABLE server_enrichment_settings
    ADD COLUMN IF NOT EXISTS validated_languages_only BOOLEAN NOT NULL DEFAULT FALSE;
