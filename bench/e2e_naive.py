"""The naive per-message pipeline the end-to-end benchmark compares against.

What a first implementation does, one message at a time, with nothing shared:

- language: ``langdetect.detect`` per message;
- four separate MiniLM-L6 models, one per task (sentiment, toxicity, emotion, topics):
  the same all-MiniLM-L6-v2 weights loaded four times, each run on the message at
  batch size 1 (four encoder passes per message), each feeding its own head — the
  shipped heads of ``models/tweeteval-heads`` applied to that encoder's mean-pooled
  embedding (the LoRA adapter is not applied: the point is the cost of four
  independent passes, not the accuracy of the baseline);
- the full spaCy pipeline (every component of the English pipeline in ``Settings.spacy_models``) per message;
- one ``INSERT`` + ``COMMIT`` per message into ``ai_analysis`` (its own
  ``model_version``, so it never collides with the pipeline's rows).

Model loading is not timed. Like the naive rollup in ``bench/rollup.py`` this baseline
keeps its SQL here: it is a reference implementation, not product code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from uuid import UUID

import psycopg

from enrichment_ai.config import Settings

MODEL_VERSION = "naive-baseline.v1"
TASKS = ("sentiment", "toxicity", "emotion", "topics")

_FETCH = "SELECT id, created_at, content FROM messages WHERE id = %s"
_INSERT = """
INSERT INTO ai_analysis (message_id, message_created_at, sentiment_score, toxicity_score,
                         language_code, topics, entities, model_version, sentiment_label, scores)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (message_id, model_version) DO NOTHING
"""


class NaivePipeline:
    """Loads everything in :meth:`load`; :meth:`process` handles one message id."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def load(self) -> NaivePipeline:
        import langdetect
        from transformers import AutoModel, AutoTokenizer

        from enrichment_ai.analysis.encoder import default_encoder_path
        from enrichment_ai.analysis.entities import load_spacy
        from enrichment_ai.analysis.heads import Heads

        from enrichment_ai.config import ENGLISH_HEADS

        # the baseline is defined on MiniLM-L6 and its English heads, whatever the default encoder
        path = default_encoder_path()
        langdetect.DetectorFactory.seed = 0
        self.detect = langdetect.detect
        self.tokenizers = {t: AutoTokenizer.from_pretrained(path) for t in TASKS}
        self.models = {t: AutoModel.from_pretrained(path).eval() for t in TASKS}
        self.heads = Heads.load(ENGLISH_HEADS)
        self.nlp = load_spacy(self.settings.spacy_models["en"])  # every component
        return self

    def _embed(self, task: str, text: str):
        import torch

        enc = self.tokenizers[task](text, truncation=True, max_length=256, return_tensors="pt")
        with torch.inference_mode():
            states = self.models[task](**enc).last_hidden_state[0]
        return torch.nn.functional.normalize(states.mean(dim=0, keepdim=True), dim=-1)

    def analyse(self, text: str) -> dict:
        """Every task for one text, each with its own encoder pass."""
        import langdetect

        try:
            language = self.detect(text)
        except langdetect.LangDetectException:
            language = "und"
        h = self.heads
        sent = h.heads["sentiment"].probs(self._embed("sentiment", text))[0].tolist()
        tox = float(h.toxicity(self._embed("toxicity", text))[0])
        emo = h.heads["emotion"].probs(self._embed("emotion", text))[0].tolist()
        top = h.topic_probs(self._embed("topics", text))[0].tolist()
        doc = self.nlp(text)
        labels = h.heads["sentiment"].labels
        return {
            "language": language[:10],
            "sentiment": round(sent[2] - sent[0], 2),
            "sentiment_label": labels[max(range(len(sent)), key=sent.__getitem__)],
            "toxicity": round(tox, 2),
            "topics": [lab for lab, p in zip(h.topic_labels, top) if p >= 0.5],
            "entities": [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char} for e in doc.ents],
            "emotion": dict(zip(h.heads["emotion"].labels, emo)),
        }

    def process(self, conn: psycopg.Connection, message_id: UUID) -> None:
        """Fetch, analyse, INSERT and COMMIT one message (``conn`` not in autocommit)."""
        row = conn.execute(_FETCH, (message_id,)).fetchone()
        if row is None:
            conn.commit()
            return
        mid, created_at, content = row
        a = self.analyse(content or "")
        conn.execute(_INSERT, (mid, created_at, a["sentiment"], a["toxicity"], a["language"], a["topics"],
                               json.dumps(a["entities"]), MODEL_VERSION, a["sentiment_label"],
                               json.dumps({"emotion": a["emotion"]})))
        conn.commit()


def run_naive(database_url: str, settings: Settings, ids: Sequence[UUID]) -> dict:
    """msgs/s (and CPU seconds, this process + PostgreSQL) of the naive pipeline over ``ids``
    (model load excluded) and rows written."""
    pipe = NaivePipeline(settings).load()
    pipe.analyse("warm-up: hello there, how is everyone doing today?")
    from bench.e2e import cpu_since, cpu_times

    with psycopg.connect(database_url, autocommit=False) as conn:
        cpu0 = cpu_times()
        t0 = time.perf_counter()
        for mid in ids:
            pipe.process(conn, mid)
        elapsed = time.perf_counter() - t0
        cpu = cpu_since(cpu0)
        rows = conn.execute("SELECT count(*) FROM ai_analysis WHERE model_version = %s AND message_id = ANY(%s)",
                            (MODEL_VERSION, list(ids))).fetchone()[0]
        conn.commit()
    return {"msgs": len(ids), "rows": rows, "seconds": elapsed, "msgs_per_s": len(ids) / elapsed, "cpu_s": cpu}
