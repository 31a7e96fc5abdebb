"""A built-in sample conversation for ``make run``, ``enrichment-ai demo`` and tests.

Three servers, eight channels, eleven users (one a bot), ~70 messages over the last
two days: mostly English, plus Spanish, French, German, Japanese and Russian; friendly
chat, a hostile outburst (the toxicity alert), names of people, places and
organisations (entities), a channel with 30+ messages (a conversation summary), a
member timed out and a message deleted by a moderator (moderation actions).

Idempotent: every row has a fixed UUID (uuid5 of a readable key) and is inserted with
ON CONFLICT DO NOTHING / NOT EXISTS, so running it twice changes nothing.
Timestamps are relative to the first run's clock.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from uuid import UUID

import psycopg

_NS = uuid.UUID("6f1c2a52-7b0e-4c55-9a37-2f5b8e1d0c11")


def sample_id(key: str) -> UUID:
    """The fixed UUID of a sample row, e.g. ``sample_id("user:alice")``."""
    return uuid.uuid5(_NS, key)


# username, display name, bot
USERS = [
    ("alice", "Alice", False), ("bob", "Bob", False), ("carlos", "Carlos", False),
    ("marie", "Marie", False), ("jonas", "Jonas", False), ("yuki", "Yuki", False),
    ("dmitri", "Dmitri", False), ("grimlock", "grimlock", False), ("priya", "Priya", False),
    ("sam", "Sam (mod)", False), ("helperbot", "HelperBot", True),
]
# key, name, owner, members, toxicity threshold (None = default). Pixel Forge is a gaming
# server where trash talk is fine: 0.9, the model card's setting for communities that allow
# swearing (explicit insults still pass it; "this raid plan is garbage" does not)
SERVERS = [
    ("pixel", "Pixel Forge", "alice", ["alice", "bob", "grimlock", "priya", "sam", "helperbot", "jonas"], 0.9),
    ("polyglot", "Café Polyglotte", "marie", ["marie", "carlos", "jonas", "yuki", "dmitri", "alice", "sam", "grimlock"], None),
    ("oss", "Open Source Guild", "priya", ["priya", "bob", "alice", "dmitri"], None),
]
# key, server, name
CHANNELS = [
    ("pixel/general", "pixel", "general"), ("pixel/off-topic", "pixel", "off-topic"),
    ("polyglot/espanol", "polyglot", "español"), ("polyglot/francais", "polyglot", "français"),
    ("polyglot/deutsch", "polyglot", "deutsch"), ("polyglot/nihongo", "polyglot", "日本語"),
    ("polyglot/russkiy", "polyglot", "русский"), ("oss/dev", "oss", "dev"),
]

#: (channel, author, text) in order; spread evenly over the last two days.
LINES: list[tuple[str, str, str]] = [
    ("pixel/general", "alice", "Morning everyone! Who's up for the raid tonight?"),
    ("pixel/general", "bob", "Count me in. I finally fixed my headset, so you'll actually hear me this time."),
    ("pixel/general", "helperbot", "Reminder: be kind to each other. Server rules are pinned in #general."),
    ("pixel/general", "priya", "I can join after 8pm. I'm flying back from Berlin today."),
    ("oss/dev", "priya", "The CI pipeline on GitHub has been flaky since Tuesday, anyone else seeing timeouts?"),
    ("polyglot/espanol", "carlos", "¡Hola a todos! ¿Alguien quiere practicar español esta semana?"),
    ("pixel/general", "jonas", "Berlin! How was the conference? Did Microsoft announce anything cool?"),
    ("pixel/general", "priya", "Mostly cloud stuff. The best talk was from a researcher at Oxford about game AI."),
    ("polyglot/francais", "marie", "Bonjour ! Je viens de rentrer de Lyon, il faisait un temps magnifique."),
    ("pixel/general", "alice", "Nice! I'd love to visit Oxford someday. Tolkien's old pub is there, right?"),
    ("pixel/general", "bob", "The Eagle and Child, yes. I went with my sister last summer, lovely place."),
    ("polyglot/deutsch", "jonas", "Guten Morgen! Hat jemand Lust, am Wochenende in München Fußball zu schauen?"),
    ("pixel/general", "grimlock", "lol this raid plan is garbage, who even made it"),
    ("pixel/general", "alice", "I made it :) Happy to take suggestions if you have a better route."),
    ("polyglot/nihongo", "yuki", "こんにちは！今日は東京でとても暑いです。"),
    ("pixel/general", "grimlock", "You are a pathetic idiot, Alice. Nobody wants you here, shut up you stupid worthless loser."),
    ("pixel/general", "bob", "Whoa, not cool. Alice spends hours organising these for us."),
    ("pixel/general", "grimlock", "Shut up Bob, you're a disgusting moron and your mother should be ashamed of you."),
    ("pixel/general", "sam", "grimlock, that's enough. Personal attacks aren't allowed here. Take a break."),
    ("polyglot/russkiy", "dmitri", "Привет всем! Кто-нибудь был в Санкт-Петербурге летом? Очень красиво."),
    ("pixel/general", "grimlock", "I hope you all die in a fire, you filthy idiots."),
    ("pixel/general", "priya", "Thanks Sam. Alice, the route is great, ignore him."),
    ("pixel/general", "alice", "Thank you all, really appreciate it. Let's have a good evening anyway!"),
    ("oss/dev", "dmitri", "I think the flaky tests come from the Redis container starting too slowly."),
    ("oss/dev", "bob", "Good catch. I'll add a health check and a retry with backoff."),
    ("pixel/general", "jonas", "Quick question: is the raid on the EU server or the US one?"),
    ("pixel/general", "alice", "EU server, 20:00 CET. Meet at the north gate."),
    ("polyglot/espanol", "marie", "¡Yo sí! Estoy aprendiendo, pero me encanta hablar con gente de Madrid y Buenos Aires."),
    ("pixel/general", "bob", "I'll bring the healing potions. Priya, can you tank?"),
    ("pixel/general", "priya", "Sure, I'll tank. Jonas, you're on damage with Alice."),
    ("polyglot/francais", "alice", "Salut Marie ! Lyon est ma ville préférée en France."),
    ("pixel/off-topic", "bob", "Anyone watched the new Nolan film? I saw it at the cinema in London."),
    ("pixel/off-topic", "jonas", "Not yet, is it worth it? My friends at Netflix said it's amazing."),
    ("pixel/general", "helperbot", "Raid sign-ups are open: react with ⚔️ to join tonight's run."),
    ("pixel/general", "jonas", "Signed up. This is going to be fun!"),
    ("polyglot/deutsch", "marie", "Ich komme gern mit! Bayern gegen Dortmund wird spannend."),
    ("polyglot/nihongo", "alice", "ゆきさん、こんにちは！来月京都に行く予定です。"),
    ("polyglot/nihongo", "yuki", "いいですね！京都の紅葉はとてもきれいですよ。"),
    ("pixel/general", "alice", "Great run everyone, we cleared the dungeon in record time!"),
    ("pixel/general", "bob", "That was awesome. Priya, your tanking was perfect."),
    ("pixel/general", "priya", "Thanks! Jonas carried the damage though. GG all."),
    ("oss/dev", "priya", "Merged Bob's fix, the pipeline has been green for a day now. Thanks both!"),
    ("polyglot/russkiy", "carlos", "Привет, Дмитрий! Я был в Москве два года назад, мне очень понравилось."),
    ("pixel/general", "jonas", "Same time next week? I can lead if Alice needs a break."),
    ("pixel/general", "alice", "Yes please, Jonas! I'll be travelling to Toronto with my team from Shopify."),
    ("pixel/general", "bob", "Safe travels Alice. Say hi to Canada for us."),
    ("pixel/off-topic", "priya", "Recommendation: the Studio Ghibli exhibition in Paris is wonderful."),
    ("pixel/general", "priya", "I'll post the loot spreadsheet tomorrow morning."),
    ("pixel/general", "bob", "Legend. I still need the dragon scale for my armour."),
    ("pixel/general", "jonas", "I have a spare one, I'll trade it to you tomorrow."),
    ("polyglot/espanol", "carlos", "Perfecto, Marie. Mañana hablamos a las seis. ¡Buenas noches!"),
    ("polyglot/francais", "marie", "Merci beaucoup, à bientôt tout le monde !"),
    ("pixel/general", "alice", "You're all wonderful, thanks for making this server such a friendly place."),
    ("pixel/general", "bob", "Thanks to you for running it! Good night all."),
    ("pixel/general", "priya", "Night! Don't forget to update the client before next week's patch."),
    ("pixel/general", "jonas", "Will do. See you all Thursday."),
    ("pixel/general", "sam", "Reminder: grimlock is timed out for a day. Please report any other abuse to the mods."),
    ("pixel/general", "alice", "Thanks Sam, really appreciate the quick response."),
    ("pixel/general", "jonas", "ok lol"),
    ("pixel/general", "bob", "😂😂😂"),
    # abuse is not only English: these must raise alerts like grimlock's English insults
    ("polyglot/deutsch", "grimlock", "Halt die Klappe, du dummer Idiot. Niemand will dich hier, du erbärmlicher Versager."),
    ("polyglot/espanol", "grimlock", "Cállate, imbécil. Eres un idiota asqueroso y nadie te quiere aquí."),
]
#: Index into LINES of the message a moderator deletes (grimlock's "die in a fire").
DELETED_LINE = 20
#: Reactions (line index, user, emoji).
REACTIONS = [(13, "bob", "👍"), (13, "priya", "❤️"), (38, "bob", "🎉"), (38, "jonas", "🎉"), (33, "jonas", "⚔️")]
SPAN = timedelta(hours=46)


def insert_sample_conversation(conn: psycopg.Connection) -> list[UUID]:
    """Insert the sample (idempotently) in one transaction; returns its message ids in
    chronological order (including the deleted one, which the pipeline must skip)."""
    uid = {name: sample_id(f"user:{name}") for name, _, _ in USERS}
    sid = {key: sample_id(f"server:{key}") for key, *_ in SERVERS}
    cid = {key: sample_id(f"channel:{key}") for key, _, _ in CHANNELS}
    mids = [sample_id(f"message:{i}") for i in range(len(LINES))]
    now = datetime.now(timezone.utc).replace(microsecond=0)
    start = now - SPAN
    step = (SPAN - timedelta(minutes=2)) / (len(LINES) - 1)
    times = [start + i * step for i in range(len(LINES))]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO users (id, username, email, password_hash, display_name, bot, created_at)"
            " VALUES (%s, %s, %s, '!sample', %s, %s, %s) ON CONFLICT DO NOTHING",
            [(uid[n], f"sample_{n}", f"{n}@sample.invalid", d, bot, start - timedelta(days=30)) for n, d, bot in USERS],
        )
        cur.executemany(
            "INSERT INTO servers (id, name, owner_id, created_at) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(sid[k], name, uid[owner], start - timedelta(days=30)) for k, name, owner, _, _ in SERVERS],
        )
        cur.executemany(
            "INSERT INTO server_members (id, server_id, user_id, joined_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(sample_id(f"member:{k}:{u}"), sid[k], uid[u], start - timedelta(days=20))
             for k, _, _, members, _ in SERVERS for u in members],
        )
        cur.executemany(
            "INSERT INTO server_enrichment_settings (server_id, toxicity_threshold) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            [(sid[k], th) for k, _, _, _, th in SERVERS if th is not None],
        )
        cur.execute(
            "INSERT INTO roles (id, server_id, name, permissions, position) VALUES (%s, %s, 'Moderator', 8, 1)"
            " ON CONFLICT DO NOTHING", (sample_id("role:pixel:mod"), sid["pixel"]),
        )
        cur.execute(
            "INSERT INTO member_roles (member_id, role_id, assigned_by) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (sample_id("member:pixel:sam"), sample_id("role:pixel:mod"), uid["alice"]),
        )
        cur.executemany(
            "INSERT INTO channels (id, server_id, type, name, position) VALUES (%s, %s, 0, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [(cid[k], sid[s], name, i) for i, (k, s, name) in enumerate(CHANNELS)],
        )
        # messages: PK is (id, created_at) and times move between runs, so test the id
        cur.execute(
            """INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, updated_at)
               SELECT u.id, u.channel_id, u.author_id, u.content, u.created_at, u.created_at, u.created_at
               FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[], %s::timestamptz[])
                    AS u(id, channel_id, author_id, content, created_at)
               WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = u.id)""",
            (mids, [cid[c] for c, _, _ in LINES], [uid[a] for _, a, _ in LINES], [t for _, _, t in LINES], times),
        )
        cur.execute(
            """INSERT INTO message_reactions (id, message_id, message_created_at, user_id, emoji_name)
               SELECT r.id, m.id, m.created_at, r.user_id, r.emoji
               FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[]) AS r(id, message_id, user_id, emoji)
               JOIN messages m ON m.id = r.message_id
               ON CONFLICT DO NOTHING""",
            ([sample_id(f"reaction:{i}:{u}:{e}") for i, u, e in REACTIONS], [mids[i] for i, _, _ in REACTIONS],
             [uid[u] for _, u, _ in REACTIONS], [e for _, _, e in REACTIONS]),
        )
        _moderate(cur, uid, sid, mids[DELETED_LINE], times[DELETED_LINE])
    return mids


def _moderate(cur: psycopg.Cursor, uid: dict, sid: dict, deleted_id: UUID, said_at: datetime) -> None:
    """The moderator deletes grimlock's threat and times him out (each applied once)."""
    acted_at = said_at + timedelta(minutes=3)
    cur.execute(
        "UPDATE messages SET deleted_at = %s, deleted_by = %s, updated_at = %s"
        " WHERE id = %s AND deleted_at IS NULL",
        (acted_at, uid["sam"], acted_at, deleted_id),
    )
    cur.execute(
        "UPDATE server_members SET communication_disabled_until = %s, updated_at = %s"
        " WHERE server_id = %s AND user_id = %s AND communication_disabled_until IS NULL",
        (acted_at + timedelta(days=1), acted_at, sid["pixel"], uid["grimlock"]),
    )
