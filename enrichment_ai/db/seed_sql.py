"""SQL of the synthetic data generator (``enrichment-ai seed``): set-based,
``generate_series`` on the server, so a million messages take seconds, not hours.

Shape (all pseudo-random, reproducible from ``tag``): ``users`` people (+ one bot per
server), ``servers`` servers with 5 channels, each person a member of one or two servers;
messages arrive in conversation bursts of 20 in one channel, authors drawn from the
server's members with a heavy skew (few very active people), a weekly rhythm in volume,
~15 % replies to a recent message of the burst, ~30 % with 1–3 reactions from others,
2 % by the server's bot, 95 % analysed. Server 0 turns "troubled": its toxic share ramps
from 1.5 % to ~9 % over the period. A sample of toxic messages is deleted by the server's
owner (moderation) and some toxic authors are timed out; ~0.5 % are self-deleted.
"""

from __future__ import annotations

# parameters: tag, servers, users, messages, days, start (timestamptz), texts, text_sentiment,
# toxic_texts, names

_H = "(abs(hashtext(%(tag)s || ':' || {0})) / 2147483647.0)"  # deterministic [0,1] from a key

USERS = """
INSERT INTO users (id, username, email, password_hash, display_name, bot, created_at)
SELECT md5('u' || %(tag)s || i)::uuid,
       left((%(names)s::text[])[1 + i %% array_length(%(names)s::text[], 1)] || '_' || i || '_' || %(tag)s, 32),
       'u' || i || '.' || %(tag)s || '@seed.example',
       'x',
       (%(names)s::text[])[1 + i %% array_length(%(names)s::text[], 1)] || ' ' || chr(65 + (i / array_length(%(names)s::text[], 1)) %% 26),
       false, %(start)s::timestamptz - interval '400 days'
FROM generate_series(0, %(users)s - 1) AS i
UNION ALL
SELECT md5('bot' || %(tag)s || s)::uuid, left('helperbot_' || s || '_' || %(tag)s, 32),
       'bot' || s || '.' || %(tag)s || '@seed.example', 'x', 'Helper Bot', true,
       %(start)s::timestamptz - interval '400 days'
FROM generate_series(0, %(servers)s - 1) AS s
"""

SERVERS = """
INSERT INTO servers (id, name, owner_id, created_at)
SELECT md5('s' || %(tag)s || s)::uuid,
       (ARRAY['Rustaceans Lounge','Indie Game Devs','Plant Parents','Synth & Modular','Home Lab',
              'Sourdough Society','Climbing Crew','Data Nerds','Retro Computing','Language Exchange'])[1 + s %% 10]
         || CASE WHEN s >= 10 THEN ' ' || (s / 10 + 1) ELSE '' END,
       md5('u' || %(tag)s || s)::uuid, %(start)s::timestamptz - interval '365 days'
FROM generate_series(0, %(servers)s - 1) AS s
"""

CHANNELS = """
INSERT INTO channels (id, server_id, type, name, created_at)
SELECT md5('c' || %(tag)s || s || ':' || c)::uuid, md5('s' || %(tag)s || s)::uuid, 0,
       (ARRAY['general','help','showcase','off-topic','announcements'])[1 + c],
       %(start)s::timestamptz - interval '365 days'
FROM generate_series(0, %(servers)s - 1) AS s, generate_series(0, 4) AS c
"""

MEMBERS = """
INSERT INTO server_members (server_id, user_id, joined_at, updated_at)
SELECT md5('s' || %(tag)s || (i %% %(servers)s))::uuid, md5('u' || %(tag)s || i)::uuid,
       %(start)s::timestamptz - interval '200 days', %(start)s::timestamptz - interval '200 days'
FROM generate_series(0, %(users)s - 1) AS i
UNION ALL
SELECT md5('s' || %(tag)s || ((i * 7 + 3) %% %(servers)s))::uuid, md5('u' || %(tag)s || i)::uuid,
       %(start)s::timestamptz - interval '100 days', %(start)s::timestamptz - interval '100 days'
FROM generate_series(0, %(users)s - 1) AS i
WHERE i %% 4 = 0 AND (i * 7 + 3) %% %(servers)s <> i %% %(servers)s
UNION ALL
SELECT md5('s' || %(tag)s || s)::uuid, md5('bot' || %(tag)s || s)::uuid,
       %(start)s::timestamptz - interval '300 days', %(start)s::timestamptz - interval '300 days'
FROM generate_series(0, %(servers)s - 1) AS s
"""

# one row per message: g -> burst b -> server/channel; author = a member of that server
MESSAGES = f"""
CREATE TEMP TABLE seed_msg ON COMMIT DROP AS
WITH g AS (
    SELECT g, g / 20 AS b, g::float8 / %(messages)s AS x FROM generate_series(0, %(messages)s - 1) AS g
), placed AS (
    SELECT g, b, x,
           floor(%(servers)s * power({_H.format("'s' || b")}, 1.6))::int AS srv,
           floor(5 * power({_H.format("'c' || b")}, 1.4))::int AS chan,
           random() AS r_author, random() AS r_text, random() AS r_tox, random() AS r_noise, random() AS r_bot
    FROM g
), per_server AS (
    SELECT p.*, ceil(%(users)s::float8 / %(servers)s)::int AS members_of_srv FROM placed p
)
SELECT md5('m' || %(tag)s || g)::uuid AS id,
       md5('c' || %(tag)s || srv || ':' || chan)::uuid AS channel_id,
       srv, g, b,
       CASE WHEN r_bot < 0.02 THEN md5('bot' || %(tag)s || srv)::uuid
            ELSE md5('u' || %(tag)s || LEAST(%(users)s - 1 - ((%(users)s - 1 - srv) %% %(servers)s),
                     srv + %(servers)s * floor(members_of_srv * power(r_author, 3))::int))::uuid END AS author_id,
       r_bot < 0.02 AS bot,
       -- toxic share: 1.5 %%, ramping to ~9 %% on the troubled server 0
       r_tox < 0.015 + CASE WHEN srv = 0 THEN 0.075 * x ELSE 0 END AS toxic,
       r_text, r_noise,
       %(start)s::timestamptz + make_interval(secs => 86400.0 * %(days)s
           * (x + 0.25 * sin(2 * pi() * x * greatest(1, round(%(days)s / 7.0)))
                  / (2 * pi() * greatest(1, round(%(days)s / 7.0))))) AS created_at  -- weekly rhythm, ends at x = 1
FROM per_server
"""

INSERT_MESSAGES = """
INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, updated_at,
                      referenced_message_id, deleted_at, deleted_by)
SELECT m.id, m.channel_id, m.author_id,
       CASE WHEN m.bot THEN 'Reminder: read the pinned rules before posting in this channel.'
            WHEN m.toxic THEN (%(toxic_texts)s::text[])[1 + floor(m.r_text * array_length(%(toxic_texts)s::text[], 1))::int]
            ELSE (%(texts)s::text[])[1 + floor(m.r_text * array_length(%(texts)s::text[], 1))::int] END,
       m.created_at, m.created_at, m.created_at,
       CASE WHEN m.g %% 20 >= 3 AND m.r_noise < 0.15
            THEN md5('m' || %(tag)s || (m.g - 1 - floor(m.r_noise * 13)::int))::uuid END,
       CASE WHEN NOT m.toxic AND m.r_noise > 0.995 THEN m.created_at + interval '2 minutes' END,
       CASE WHEN NOT m.toxic AND m.r_noise > 0.995 THEN m.author_id END
FROM seed_msg m
"""

INSERT_ANALYSES = """
INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score,
                         language_code, model_version, sentiment_label, created_at)
SELECT m.id, m.created_at,
       round(greatest(-1, least(1,
           CASE WHEN m.toxic THEN -0.6 ELSE (%(text_sentiment)s::float8[])[1 + floor(m.r_text * array_length(%(text_sentiment)s::float8[], 1))::int] END
           + (m.r_noise - 0.5) * 0.3))::numeric, 2),
       round((CASE WHEN m.toxic THEN 0.8 + 0.19 * m.r_noise ELSE 0.3 * m.r_noise * m.r_noise END)::numeric, 2),
       'en', 'seed.v1', NULL, m.created_at + interval '3 seconds'
FROM seed_msg m
WHERE m.r_noise < 0.95 OR m.toxic
"""

INSERT_REACTIONS = """
INSERT INTO message_reactions (message_id, message_created_at, user_id, emoji_name, created_at)
SELECT m.id, m.created_at,
       md5('u' || %(tag)s || (m.srv + %(servers)s * floor(ceil(%(users)s::float8 / %(servers)s) * random())::int) %% %(users)s)::uuid,
       (ARRAY['👍','❤️','😂','🎉','👀'])[1 + k],
       m.created_at + interval '5 minutes'
FROM seed_msg m, generate_series(0, 2) AS k
WHERE NOT m.toxic AND NOT m.bot AND m.r_text * 10 - floor(m.r_text * 10) < 0.3 / (k + 1)
ON CONFLICT DO NOTHING
"""

# moderation: the owner deletes ~30 % of toxic messages; toxic authors sometimes get timed out
MODERATE = """
UPDATE messages msg SET deleted_at = m.created_at + interval '7 minutes',
       deleted_by = md5('u' || %(tag)s || m.srv)::uuid
FROM seed_msg m
WHERE msg.id = m.id AND msg.created_at = m.created_at AND m.toxic AND m.r_noise < 0.3
  AND m.author_id <> md5('u' || %(tag)s || m.srv)::uuid
"""

TIMEOUTS = """
UPDATE server_members sm SET communication_disabled_until = t.at + interval '1 day', updated_at = t.at
FROM (
    SELECT DISTINCT ON (m.author_id, m.srv) m.author_id, md5('s' || %(tag)s || m.srv)::uuid AS server_id,
           m.created_at + interval '10 minutes' AS at
    FROM seed_msg m WHERE m.toxic AND m.r_noise < 0.1
    ORDER BY m.author_id, m.srv, m.created_at DESC
) t
WHERE sm.user_id = t.author_id AND sm.server_id = t.server_id
"""

COUNTS = """
SELECT (SELECT count(*) FROM seed_msg), (SELECT count(*) FROM seed_msg WHERE toxic),
       (SELECT min(created_at) FROM seed_msg), (SELECT max(created_at) FROM seed_msg)
"""
