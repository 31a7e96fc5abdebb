-- Summaries written before 0051 have no start_at/end_at. The window of a channel whose
-- only summaries are such rows began at the channel's first message (end_at NULL sorts
-- last), so the first summary after an upgrade repeated everything already summarised.
-- Their bounds are their first and last messages' created_at; a row whose message is
-- gone for good keeps NULL (another row of the channel then bounds its window).
UPDATE conversation_summaries cs SET end_at = m.created_at
FROM messages m
WHERE cs.end_at IS NULL AND m.id = cs.end_message_id;

UPDATE conversation_summaries cs SET start_at = m.created_at
FROM messages m
WHERE cs.start_at IS NULL AND m.id = cs.start_message_id;
