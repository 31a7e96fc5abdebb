"""The end-to-end benchmark's workload: a realistic message mix and the platform rows
(servers, channels, members with locales) the messages live in.

Mix (reproducible from a seed): ~80 % English — tweets (TweetEval train split, when
``../shared/datasets`` is present), short chat lines with emoji, links and mentions,
some long posts (several paragraphs) and ~4 % hostile messages (explicit insults at a
fixed spacing, so moderation alerts fire in any sample, and offensive tweets) — and ~20 % sentences in other languages (the lingua test sentences / UMSAB Hindi
tweets when present, plus built-in sentences), 15 languages in all. Without the
datasets the built-in lists below are used alone, so the benchmark runs anywhere.

Rows are inserted the way the platform writes them (``users``, ``servers``,
``server_members``, ``channels``, ``messages``; the same columns as
``tests/factories.py`` and ``enrichment_ai/sample.py``): 3 servers, 10 channels,
30 users, each message in a channel of one server by one of its members.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from uuid import UUID

import psycopg

#: ``../shared/datasets`` from the project root (read only if present).
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

SHARE_OTHER_LANGUAGES = 0.20
SHARE_TOXIC = 0.02  # offensive tweets, drawn at random (borderline: some alert, some not)
#: every EXPLICIT_EVERY-th message (from the 3rd) is an explicit insult: alerts fire in any sample of 3+
EXPLICIT_EVERY = 50
SHARE_LONG = 0.03
SHARE_CHAT = 0.25  # of the English messages: short chat lines, emoji, links, mentions

CHAT: tuple[str, ...] = (
    "lol that was amazing 😂", "ok", "gg wp", "brb", "😂😂😂", "🔥🔥", "same tbh",
    "hey everyone, raid starts at 9pm tonight, bring potions",
    "@maya can you check the build? https://ci.example.com/job/1234",
    "can someone review my PR? https://github.com/example/repo/pull/42",
    "thanks so much for the help yesterday, it finally works!",
    "honestly the best patch in years, the new map is gorgeous ❤️",
    "anyone up for a game? @sam @lee",
    "Does anyone know if the Berlin meetup is still happening on Saturday?",
    "new video is up → https://youtu.be/dQw4w9WgXcQ 🎉",
    "I think Alice from the design team said the release moved to next week",
    "nah", "wait what", "good morning ☀️", "who's streaming tonight?", "+1", "👀",
    "this update is trash and the devs clearly don't care about players",
    "pushed a fix, should be live in 10 min",
)

#: explicit insults placed at a fixed spacing, so alerts fire in any sample. The English
#: toxicity, calibrated on the offensive sets since 2026-12-07 (docs/models.md, "Toxicity: one
#: definition"), scores them 0.96, 1.00, 0.98 (bf16): all over the default 0.8 threshold
#: (0.80, 0.55, 0.68 under the offensive + hate calibration before it)
EXPLICIT: tuple[str, ...] = (
    "Shut up, you're a disgusting moron and your mother should be ashamed of you.",
    "fuck you, you stupid worthless piece of shit",
    "You are a pathetic idiot. Nobody wants you here, shut up you stupid worthless loser.",
)
#: hostile lines drawn at random when the offensive tweets are absent (some alert, some not)
TOXIC: tuple[str, ...] = EXPLICIT + (
    "shut up idiot nobody asked",
    "I hope you all die in a fire, you filthy idiots.",
    "you are honestly the worst teammate I have ever had, uninstall you braindead moron",
    "go kill yourself, nobody would miss a useless piece of trash like you",
)

LONG_PARTS: tuple[str, ...] = (
    "Quick reminder: the community call is on Thursday at 6pm UTC.",
    "Agenda: roadmap, moderation tools, and the new events channel.",
    "Please add your questions to the shared doc before Wednesday so we can group them.",
    "I moved from Paris to London last year to work at Google and I still miss the food.",
    "The migration to the new servers went mostly fine, but the EU shard was down for twenty minutes.",
    "If you saw errors while uploading between 14:00 and 14:20, retry now and tell us if it still fails.",
    "We also changed how roles are synced, so moderators may need to log out and in again.",
    "Thanks to everyone who reported bugs in #help, it made the rollback much faster.",
)

#: language -> built-in sentences (fallback, and languages the datasets lack)
OTHER: dict[str, tuple[str, ...]] = {
    "es": ("¿Alguien quiere jugar esta noche?", "Mañana hablamos a las seis. ¡Buenas noches!"),
    "fr": ("Je ne comprends pas pourquoi le serveur est si lent aujourd'hui.", "Merci beaucoup, à bientôt tout le monde !"),
    "de": ("Guten Morgen! Wer ist heute online?", "Hat jemand Lust, am Wochenende Fußball zu schauen?"),
    "pt": ("Alguém sabe quando sai a próxima atualização?", "Valeu pessoal, até amanhã!"),
    "it": ("Qualcuno ha voglia di giocare stasera?", "Grazie mille per l'aiuto di ieri."),
    "ru": ("Привет всем, кто играет сегодня вечером?", "Спасибо, всё заработало после перезагрузки."),
    "ja": ("今日の配信、すごく楽しかったです！ありがとう", "来月京都に行く予定です。"),
    "zh": ("今天晚上有人一起玩吗？", "谢谢大家的帮助，问题已经解决了。"),
    "ar": ("مرحبا بالجميع، هل يلعب أحد الليلة؟", "شكرا جزيلا على المساعدة"),
    "hi": ("क्या आज रात कोई खेलना चाहता है?", "मदद के लिए बहुत धन्यवाद"),
    "nl": ("Heeft iemand zin om vanavond te spelen?", "Bedankt voor de hulp gisteren!"),
    "pl": ("Czy ktoś chce dziś wieczorem zagrać?", "Dzięki za pomoc, wszystko działa."),
    "tr": ("Bu akşam oynamak isteyen var mı?", "Yardımın için çok teşekkürler."),
    "ko": ("오늘 밤에 같이 게임할 사람 있어요?", "도와줘서 정말 고마워요."),
}

#: (server name, channel names, member locales)
SERVERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("Pixel Forge", ("general", "raids", "off-topic", "help"), ("en-US", "en-GB", "de", "fr")),
    ("Café Polyglotte", ("general", "español", "日本語"), ("es-ES", "ja", "pt-BR", "it", "ru")),
    ("Open Source Guild", ("dev", "ci", "random"), ("en-US", "zh-CN", "hi", "nl", "pl")),
)
USERS_PER_SERVER = 10


def _lines(path: Path, limit: int | None = 5000) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            out = [ln.strip() for _, ln in zip(range(limit) if limit is not None else itertools.count(), fh)]
    except OSError:
        return []
    return [ln for ln in out if ln]


def _toxic_tweets(datasets: Path, limit: int | None = 5000) -> list[str]:
    texts = _lines(datasets / "tweeteval" / "offensive" / "train_text.txt", limit)
    labels = _lines(datasets / "tweeteval" / "offensive" / "train_labels.txt", limit)
    return [t for t, lab in zip(texts, labels, strict=False) if lab == "1"]


#: UMSAB's folders by language code (the distinct stream's extra non-English tweets)
_UMSAB = {"ar": "arabic", "de": "german", "es": "spanish", "fr": "french", "hi": "hindi", "it": "italian",
          "pt": "portuguese"}


def _other_pool(datasets: Path, limit: int | None = 300) -> dict[str, list[str]]:
    pool = {lang: list(texts) for lang, texts in OTHER.items()}
    for lang in ("es", "fr", "de", "pt", "it", "ru", "ja", "zh", "ar"):
        pool[lang] += _lines(datasets / "langid" / "sentences" / f"{lang}.txt", limit)
    if limit is None:  # the distinct stream: every tweet of UMSAB's train split too
        for lang, folder in _UMSAB.items():
            pool[lang] += _lines(datasets / "multilingual" / "umsab" / folder / "train_text.txt", None)
    else:
        pool["hi"] += _lines(datasets / "multilingual" / "umsab" / "hindi" / "train_text.txt", limit)
    return pool


def _english_tweets(datasets: Path, distinct: bool) -> list[str]:
    if not distinct:
        return _lines(datasets / "tweeteval" / "sentiment" / "train_text.txt")
    seen: dict[str, None] = {}
    for task in ("sentiment", "emotion", "irony", "hate", "offensive"):
        for t in _lines(datasets / "tweeteval" / task / "train_text.txt", None):
            seen.setdefault(t)
    return list(seen)


class _Draw:
    """Picks from a list: at random with replacement (the mix), or, for the distinct
    stream, in a shuffled order without repeating until the list is used up (then a new
    shuffle)."""

    def __init__(self, items: Sequence[str], rng: random.Random, distinct: bool):
        self.items, self.rng, self.distinct, self.order = list(items), rng, distinct, []

    def __call__(self) -> str:
        if not self.distinct:
            return self.rng.choice(self.items)
        if not self.order:
            self.order = self.items[:]
            self.rng.shuffle(self.order)
        return self.order.pop()


def message_mix(n: int, seed: int = 9, datasets: Path = DATASETS, *, distinct: bool = False) -> list[str]:
    """``n`` texts in the proportions of the module docstring (deterministic for ``seed``).
    ``distinct``: the tweets and sentences come from every train text of the datasets
    (TweetEval's five tasks, ~70k English tweets; UMSAB's train split and the lingua
    sentences, ~22k in other languages), none repeated until its pool is used up, so a
    long run keeps meeting words no process has seen, as a live stream does (the default
    mix draws from a few thousand, so after a minute no word is new)."""
    rng = random.Random(seed)
    limit = None if distinct else 5000
    tweets = _Draw(_english_tweets(datasets, distinct) or list(CHAT), rng, distinct)
    toxic = _Draw((_toxic_tweets(datasets, limit) if distinct else _toxic_tweets(datasets)[:300]) or list(TOXIC),
                  rng, distinct)
    other = {lang: _Draw(texts, rng, distinct) for lang, texts in _other_pool(datasets, None if distinct else 300).items()}
    languages = sorted(other)
    out = []
    for i in range(n):
        r = rng.random()
        if i % EXPLICIT_EVERY == 2:
            out.append(EXPLICIT[(i // EXPLICIT_EVERY) % len(EXPLICIT)])
        elif r < SHARE_OTHER_LANGUAGES:
            out.append(other[rng.choice(languages)]())
        elif r < SHARE_OTHER_LANGUAGES + SHARE_TOXIC:
            out.append(toxic())
        elif r < SHARE_OTHER_LANGUAGES + SHARE_TOXIC + SHARE_LONG:
            k = rng.randint(6, 16)
            out.append(" ".join(rng.choice(LONG_PARTS) for _ in range(k)))
        elif rng.random() < SHARE_CHAT:
            out.append(rng.choice(CHAT))
        else:
            out.append(tweets())
    return out


@dataclass
class Platform:
    """The bench's servers/channels/users; :meth:`insert_messages` places messages."""

    server_ids: list[UUID] = field(default_factory=list)
    #: (channel id, server index)
    channels: list[tuple[UUID, int]] = field(default_factory=list)
    #: server index -> member user ids
    members: dict[int, list[UUID]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(17))

    @classmethod
    def create(cls, conn: psycopg.Connection) -> Platform:
        """Insert 3 servers, 10 channels and 30 users (fresh UUIDs) in one transaction."""
        p = cls()
        tag = uuid.uuid4().hex[:6]
        with conn.transaction(), conn.cursor() as cur:
            for s, (name, channel_names, locales) in enumerate(SERVERS):
                users = [uuid.uuid4() for _ in range(USERS_PER_SERVER)]
                cur.executemany(
                    "INSERT INTO users (id, username, email, password_hash, display_name, locale)"
                    " VALUES (%s, %s, %s, 'x', %s, %s)",
                    [(u, f"bench_{tag}_{s}_{i}", f"{u.hex}@bench.invalid", f"Bench {s}.{i}", locales[i % len(locales)])
                     for i, u in enumerate(users)])
                sid = uuid.uuid4()
                cur.execute("INSERT INTO servers (id, name, owner_id, preferred_locale) VALUES (%s, %s, %s, %s)",
                            (sid, name, users[0], locales[0]))
                cur.executemany("INSERT INTO server_members (server_id, user_id) VALUES (%s, %s)",
                                [(sid, u) for u in users])
                for pos, cname in enumerate(channel_names):
                    cid = uuid.uuid4()
                    cur.execute("INSERT INTO channels (id, server_id, type, name, position) VALUES (%s, %s, 0, %s, %s)",
                                (cid, sid, cname, pos))
                    p.channels.append((cid, s))
                p.server_ids.append(sid)
                p.members[s] = users
        return p

    def _place(self) -> tuple[UUID, UUID]:
        # busy channels are busier: a skewed pick, like real communities
        cid, s = self.channels[min(int(len(self.channels) * self.rng.random() ** 1.5), len(self.channels) - 1)]
        return cid, self.rng.choice(self.members[s])

    def insert_messages(self, conn: psycopg.Connection, texts: Sequence[str],
                        created_at: datetime | None = None) -> list[UUID]:
        """Insert one message per text (created_at = now unless given), one transaction;
        returns the ids in order."""
        now = created_at or datetime.now(timezone.utc)
        rows = []
        for text in texts:
            cid, author = self._place()
            rows.append((uuid.uuid4(), cid, author, text, now, now, now))
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO messages (id, channel_id, author_id, content, timestamp, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        return [r[0] for r in rows]
