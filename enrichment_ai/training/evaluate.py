"""``enrichment-ai eval``: the shipped analyzer, end to end, on TweetEval/TweetTopicXL val.

Everything goes through :class:`SharedEncoderAnalyzer.analyze` (the production path,
including per-sentence max toxicity), so the numbers are what users get.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from enrichment_ai.analysis.heads import TASK_LABELS, artifact_digest, read_card, write_card
from enrichment_ai.training.calibration import TOXICITY_TASKS
from enrichment_ai.training.data import TASKS, load_task, load_topics
from enrichment_ai.training.metrics import OFFICIAL_METRIC, expected_calibration_error, multilabel_f1, official

#: Published TweetEval test-set results (upstream README) and the issue-3 targets.
LEADERBOARD: dict[str, dict[str, float]] = {
    "RoBERTa-base": {"sentiment": 71.3, "offensive": 79.5, "hate": 46.6, "emotion": 76.1, "irony": 59.7},
    "FastText": {"sentiment": 62.9, "offensive": 73.4, "hate": 50.6, "emotion": 65.2, "irony": 63.1},
}
TARGETS: dict[str, float] = {"sentiment": 71.0, "offensive": 79.0, "hate": 52.0, "emotion": 76.0, "irony": 64.0}


def evaluate(analyzer, data_dir: Path, split: str = "val", *, langid: bool = True, entities: bool = False,
             holdout_seed: int = 0, log=print) -> dict:
    """Run every evaluation; return the report dict. ``holdout_seed``: the seed of the
    GermEval share the multilingual artifact held out (``data.holdout_seed``)."""
    from enrichment_ai.training.bias import identity_sentences
    from enrichment_ai.training.calibration import fit_toxicity_calibration, precision_at_thresholds, reliability_table

    report: dict = {"split": split, "model_version": analyzer.version, "tasks": {}}
    results = {}
    for task in TASKS:
        data = load_task(data_dir, task, split)
        t0 = time.time()
        res = analyzer.analyze(data.texts, languages=["en"] * len(data))  # as the pipeline calls it
        dt = time.time() - t0
        results[task] = (data, res)
        labels = TASK_LABELS[task]
        pred = np.array([int(np.argmax([r.scores[task][lab] for lab in labels])) for r in res])
        value = official(task, data.labels, pred, len(labels))
        report["tasks"][task] = {
            "metric": OFFICIAL_METRIC[task], "value": round(100 * value, 2), "n": len(data),
            "target": TARGETS[task], "meets_target": bool(100 * value >= TARGETS[task]),
            **{name: row[task] for name, row in LEADERBOARD.items()},
            "msgs_per_s": round(len(data) / dt, 1),
        }
        log(f"{task}: {OFFICIAL_METRIC[task]}={100 * value:.2f}")
    report["throughput_msgs_per_s"] = round(
        sum(v["n"] for v in report["tasks"].values()) / sum(v["n"] / v["msgs_per_s"] for v in report["tasks"].values()), 1)

    # toxicity: shipped end-to-end ECE (in-sample for the calibration's numbers) + cross-fitted ECE of the
    # same calibrator (the one of the artifact that scores these tweets: routed, the English one)
    scorer = getattr(analyzer, "english", analyzer)  # routed: the English artifact scores these tweets
    ys, ps, zs = [], [], []
    for task in TOXICITY_TASKS:
        data, res = results[task]
        ys.append(data.labels)
        ps.append(np.array([r.toxicity for r in res]))
        zs.extend(scorer.toxicity_log_odds(data.texts))  # every candidate the score is the max over
    y, p = np.concatenate(ys), np.concatenate(ps)
    method = _calibrator(scorer.heads, "en")  # English's own where it has one (its form may differ from the global's)
    _, cross = fit_toxicity_calibration(zs, y, method=method)
    report["toxicity"] = {
        "ece_cross_fitted": round(cross["ece"], 4),
        "brier_cross_fitted": round(cross["brier"], 4),
        "ece_uncalibrated_max_head": round(cross["ece_uncalibrated_max_head"], 4),
        "ece_shipped_in_sample": round(expected_calibration_error(y, p), 4),
        "calibrator": method,
        "note": f"calibration ({method}) is fitted on this val set; ece_cross_fitted is the honest, held-out estimate",
        "reliability_cross_fitted": cross["reliability"],
        "reliability_shipped": reliability_table(y, p),
        "thresholds_shipped": precision_at_thresholds(y, p),
        "n": int(len(y)),
        # the hate set is not what toxicity is the probability of (calibration.TOXICITY_TASKS),
        # but its hateful tweets must still be caught: how many reach each alert threshold
        "hate_set_thresholds": precision_at_thresholds(results["hate"][0].labels,
                                                        np.array([r.toxicity for r in results["hate"][1]])),
    }
    log(f"toxicity ECE cross-fitted={cross['ece']:.4f} shipped(in-sample)={report['toxicity']['ece_shipped_in_sample']:.4f}")

    texts, names, ty = load_topics(data_dir, "validation" if split == "val" else split)
    res = analyzer.analyze(texts, languages=["en"] * len(texts))
    pred = np.array([[n in r.topics for n in names] for r in res])
    report["topics"] = {k: round(100 * v, 2) for k, v in multilabel_f1(ty, pred).items()} | {"n": len(texts), "lang": "en"}
    log(f"topics: {report['topics']}")

    report["bias"] = _identity_bias(analyzer, identity_sentences(), "en")
    log("bias FPR: " + ", ".join(f"{k}={v['fpr']:.4f}" for k, v in report["bias"].items()))

    if (Path(data_dir) / "multilingual").is_dir() and getattr(analyzer, "coverage", None):
        report["languages"] = evaluate_languages(analyzer, data_dir, split, log,
                                                 english={t: results[t] for t in TOXICITY_TASKS},
                                                 seed=holdout_seed)
    if langid:
        report["langid"] = _langid(data_dir, analyzer.settings, log)
    if entities:  # the pipelines of Settings.spacy_models on the hand-annotated chat set
        from enrichment_ai.training.entities_eval import evaluate_entities

        report["entities"] = evaluate_entities(analyzer.settings, log=log)
    return report


def evaluate_detected_languages(analyzer, detector, data_dir: Path, split: str = "val", log=print) -> dict:
    """TweetEval val with each tweet's language as the pipeline finds it (``detector``, no
    platform hint) instead of ``en``: what a routed analyzer (analysis/routed.py) gives
    English text when language id decides the route. Per task: the official metric and
    the share of tweets detected as ``en`` (the rest go through the multilingual artifact)."""
    out = {}
    for task in TASKS:
        data = load_task(data_dir, task, split)
        langs = [g.code for g in detector.detect(data.texts)]
        res = analyzer.analyze(data.texts, languages=langs)
        labels = TASK_LABELS[task]
        pred = np.array([int(np.argmax([r.scores[task][lab] for lab in labels])) for r in res])
        value = official(task, data.labels, pred, len(labels))
        out[task] = {"metric": OFFICIAL_METRIC[task], "value": round(100 * value, 2), "n": len(data),
                     "detected_en": round(langs.count("en") / max(1, len(langs)), 4)}
        log(f"{task} (language detected): {OFFICIAL_METRIC[task]}={100 * value:.2f}, "
            f"{100 * out[task]['detected_en']:.1f}% detected as en")
    return out


#: published test-set anchors from the datasets' READMEs (macro-F1 %): XLM-Tw multilingual
#: (XLM-T, 270M-parameter XLM-R base further trained on tweets) per UMSAB language, and
#: ToLD-Br's own reported figure
UMSAB_XLMT = {"ar": 66.9, "en": 70.6, "fr": 71.2, "de": 77.3, "hi": 56.4, "it": 69.1, "pt": 75.4, "es": 67.9}
UMSAB_ANCHORS = {"XLM-Tw multilingual, all 8 (test)": 69.4, "XLM-R multilingual, all 8 (test, 270M params)": 66.8,
                 "FastText monolingual, all 8 (test)": 51.0}
TOLD_BR_ANCHOR = 76.0


def _calibrator(heads, lang: str) -> str:
    """The form of the calibrator that scores ``lang``: its own where the artifact has one
    (chosen per language since 2026-12-07), else the global one."""
    from enrichment_ai.training.calibration import method_of

    return method_of(heads.toxicity_calibration_by_language.get(lang, heads.toxicity_calibration))


def _cross_fitted_ece(analyzer, lang: str, texts: list[str], y: np.ndarray) -> dict:
    """The held-out ECE of ``lang``'s calibrator: the artifact's own method refitted 5-fold on
    the worker's max (``toxicity_log_odds``), as :func:`evaluate` does for English, so two
    artifacts compare like for like whatever their stored calibration was fitted on."""
    from enrichment_ai.training.calibration import enough_to_cross_fit, fit_toxicity_calibration

    if not enough_to_cross_fit(y):
        return {}
    scorer = getattr(analyzer, "primary", analyzer)  # routed: every language but English goes through it
    method = _calibrator(scorer.heads, lang)
    _, cross = fit_toxicity_calibration(scorer.toxicity_log_odds(texts), y, method=method)
    return {"ece_cross_fitted": round(cross["ece"], 4), "calibrator": method}


def _identity_bias(analyzer, sents: list[tuple[str, str, str]], lang: str, templates: int | None = None) -> dict:
    """Neutral identity sentences in ``lang`` through the production path (that language's
    toxicity calibration, or the global one): ``bias_report`` at 0.5 and at the alert
    threshold. ``templates``: how many they were built from (the English check's by default)."""
    from enrichment_ai.training.bias import bias_report

    thr = float(getattr(analyzer.settings, "toxicity_threshold", 0.8))
    tox = np.array([r.toxicity for r in analyzer.analyze([s for s, _, _ in sents], languages=[lang] * len(sents))])
    return {f"at_{t}": bias_report(sents, tox, t, templates) for t in sorted({0.5, thr})}


def _identity_bias_by_language(analyzer) -> dict:
    """:func:`_identity_bias` for each language of ``bias_languages``: false-positive rates
    per group, with the worst identities and a few flagged sentences."""
    from enrichment_ai.training.bias_languages import LANGUAGES, identity_sentences_in, template_count

    return {lang: _identity_bias(analyzer, identity_sentences_in(lang), lang, template_count(lang)) for lang in LANGUAGES}


def evaluate_languages(analyzer, data_dir: Path, split: str = "val", log=print, english: dict | None = None,
                       seed: int = 0) -> dict:
    """Per-language tables through the production path: UMSAB sentiment (macro-F1), GermEval
    2018 coarse and ToLD-Br (the offensive head's decision; Average F / macro-F1), toxicity
    ECE per language (the shipped calibrated probability; in-sample where the calibration
    saw that val), TweetTopicXL per language. ``english``: the TweetEval offensive
    ``(Split, results)`` :func:`evaluate` already has (analysed here otherwise). ``seed``:
    the GermEval share held out by the artifact (recorded in the report)."""
    from enrichment_ai.analysis.coverage import TOPIC_LANG_CODES
    from enrichment_ai.training.data import EXTRA_SETS, TOPIC_LANGS, load_extra
    from enrichment_ai.training.metrics import metric

    out: dict = {"sets": {}, "toxicity_ece": {}, "topics": {}, "germeval_holdout_seed": seed}
    tox_by_lang: dict[str, tuple[list, list]] = {}
    tox_texts: dict[str, list[str]] = {}  # beyond English: for the cross-fitted ECE below
    for task in TOXICITY_TASKS:  # English toxicity: TweetEval
        if english and task in english:
            data, res = english[task]
        else:
            data = load_task(data_dir, task, split)
            res = analyzer.analyze(data.texts, languages=["en"] * len(data))
        ys, ps = tox_by_lang.setdefault("en", ([], []))
        ys += list(data.labels)
        ps += [r.toxicity for r in res]
    for name, (task, lang, metric_name) in EXTRA_SETS.items():
        data = load_extra(data_dir, name, split, seed)
        res = analyzer.analyze(data.texts, languages=[lang] * len(data))
        labels = TASK_LABELS[task]
        pred = np.array([int(np.argmax([r.scores[task][lab] for lab in labels])) for r in res])
        value = metric(metric_name, data.labels, pred, len(labels))
        out["sets"][name] = {"task": task, "lang": lang, "metric": metric_name, "value": round(100 * value, 2),
                             "n": len(data)}
        if task == "offensive":
            ys, ps = tox_by_lang.setdefault(lang, ([], []))
            ys += list(data.labels)
            ps += [r.toxicity for r in res]
            tox_texts.setdefault(lang, []).extend(data.texts)
        log(f"{name}: {metric_name}={100 * value:.2f}")
    out["bias_fpr"] = _identity_bias_by_language(analyzer)
    for lang, b in out["bias_fpr"].items():
        log(f"bias FPR {lang}: " + ", ".join(f"{k}={v['fpr']:.4f}" for k, v in b.items()))
    umsab = {v["lang"]: v["value"] for k, v in out["sets"].items() if k.startswith("umsab-")}
    out["umsab_mean_non_en"] = round(float(np.mean([v for k, v in umsab.items() if k != "en"])), 2)
    out["umsab_mean_all"] = round(float(np.mean(list(umsab.values()))), 2)
    for lang, (ys, ps) in tox_by_lang.items():
        out["toxicity_ece"][lang] = {"ece": round(expected_calibration_error(np.array(ys), np.array(ps)), 4), "n": len(ys)}
        if lang in tox_texts:  # English's is evaluate()'s ``toxicity.ece_cross_fitted``
            out["toxicity_ece"][lang] |= _cross_fitted_ece(analyzer, lang, tox_texts[lang], np.array(ys))
    for folder in TOPIC_LANGS:
        texts, names, ty = load_topics(data_dir, "validation" if split == "val" else split, folder)
        res = analyzer.analyze(texts, languages=[TOPIC_LANG_CODES[folder]] * len(texts))
        pred = np.array([[n in r.topics for n in names] for r in res])
        out["topics"][TOPIC_LANG_CODES[folder]] = {k: round(100 * v, 2) for k, v in multilabel_f1(ty, pred).items()} | {"n": len(texts)}
    log(f"UMSAB mean non-en {out['umsab_mean_non_en']}, toxicity ECE by language {out['toxicity_ece']}")
    return out


def format_languages(res: dict) -> str:
    """The per-language tables beside the datasets' published anchors."""
    sets = res["sets"]
    lines = ["\nUMSAB sentiment — macro-F1 (val n=324 per language; anchors are the official test set)",
             f"  {'language':<10}{'this model (val)':>18}{'XLM-Tw multi (test)':>22}"]
    for name, m in sets.items():
        if name.startswith("umsab-"):
            lines.append(f"  {m['lang']:<10}{m['value']:>18.2f}{UMSAB_XLMT.get(m['lang'], float('nan')):>22.1f}")
    lines.append(f"  mean of the 7 non-English: {res['umsab_mean_non_en']:.2f} (target >= 66); all 8: {res['umsab_mean_all']:.2f}")
    lines += [f"  anchor: {k} {v}" for k, v in UMSAB_ANCHORS.items()]
    for name in ("germeval-de", "told-br-pt"):
        if name in sets:
            m = sets[name]
            extra = (f"; ToLD-Br README: {TOLD_BR_ANCHOR:.0f} macro-F1" if name == "told-br-pt"
                     else f"; the 20% held out with seed {res.get('germeval_holdout_seed', 0)}")
            lines.append(f"\n{name} — {m['metric']} {m['value']:.2f} (val n={m['n']}; target >= 70{extra})")
    lines.append("\ntoxicity ECE per language (shipped probability vs label; in-sample: the calibration was fitted on these "
                 "vals; cross-fitted: the same calibrator refitted 5-fold on the worker's max, held out)")
    lines += [f"  {lang}: {v['ece']:.4f} in-sample"
              + (f", {v['ece_cross_fitted']:.4f} cross-fitted ({v['calibrator']})" if "ece_cross_fitted" in v else "")
              + f" (n={v['n']})" for lang, v in res["toxicity_ece"].items()]
    lines.append("\ntopics per language (TweetTopicXL validation, 20 tweets each: indicative only)")
    lines += [f"  {lang}: micro-F1 {v['micro_f1']:.2f}, macro-F1 {v['macro_f1']:.2f}" for lang, v in res["topics"].items()]
    return "\n".join(lines)


def _langid(data_dir: Path, settings, log) -> dict | None:
    """The runtime engineer's language-id evaluation, when present."""
    try:
        from enrichment_ai.training.langid_eval import evaluate_langid
    except ImportError:
        return None
    try:
        return evaluate_langid(Path(data_dir) / "langid", settings=settings)
    except Exception as exc:  # noqa: BLE001 - report, do not lose the rest of the eval
        log(f"langid eval failed: {exc}")
        return {"error": str(exc)}


def format_tables(report: dict) -> str:
    """Human-readable tables: one per task, then toxicity, topics, bias, throughput."""
    lines = []
    for task, m in report["tasks"].items():
        lines += [f"\n{task} — {m['metric']} (val n={m['n']}; leaderboard rows are the official test set)",
                  f"  {'row':<28}{'score':>8}",
                  f"  {'this model (val)':<28}{m['value']:>8.2f}",
                  *[f"  {name + ' (test)':<28}{m[name]:>8.1f}" for name in LEADERBOARD],
                  f"  {'target':<28}{m['target']:>8.1f}   {'MET' if m['meets_target'] else 'not met'}"]
    t = report["toxicity"]
    lines += [f"\ntoxicity — ECE cross-fitted {t['ece_cross_fitted']:.4f} (uncalibrated max-head {t['ece_uncalibrated_max_head']:.4f}; "
              f"shipped, in-sample {t['ece_shipped_in_sample']:.4f}); n={t['n']}"]
    for row in t["thresholds_shipped"]:
        lines.append(f"  alert at {row['threshold']:.1f}: flags {row['flagged']:.3f}, precision {row['precision']}, recall {row['recall']}")
    tp = report["topics"]
    lines.append(f"\ntopics (TweetTopicXL en validation, n={tp['n']}): micro-F1 {tp['micro_f1']:.2f}, macro-F1 {tp['macro_f1']:.2f}")
    for key, b in report["bias"].items():
        groups = ", ".join(f"{g} {v:.3f}" for g, v in b["fpr_by_group"].items())
        lines.append(f"bias ({b['sentences']} neutral identity sentences) FPR {key}: {b['fpr']:.4f} [{groups}]")
    lines.append(f"\nthroughput: {report['throughput_msgs_per_s']} msgs/s (all heads, one encoder pass per message)")
    if report.get("tasks_language_detected"):
        lines.append("\nTweetEval val routed by detected language (no platform hint), official metric:")
        lines += [f"  {task}: {m['value']:.2f} ({100 * m['detected_en']:.1f}% detected as en; "
                  f"with every tweet taken as en: {report['tasks'][task]['value']:.2f})"
                  for task, m in report["tasks_language_detected"].items()]
    if report.get("languages"):
        lines.append(format_languages(report["languages"]))
    if report.get("langid"):
        lines.append("\nlanguage id:\n" + _langid_table(report["langid"]))
    if report.get("entities"):
        from enrichment_ai.training.entities_eval import format_report

        lines.append("\n" + format_report(report["entities"]))
    return "\n".join(lines)


def _langid_table(res: dict) -> str:
    """The language-id module's own table (its format_report), else compact JSON."""
    import json

    if "error" not in res:
        try:
            from enrichment_ai.training.langid_eval import format_report

            return format_report(res)
        except Exception:  # noqa: BLE001 - a formatting problem must not hide the numbers
            pass
    return json.dumps(res, default=str)[:4000]


def update_card(heads_path: Path, report: dict) -> None:
    """Record the eval results in the artifact's card.json."""
    card = read_card(heads_path)
    card["version"] = artifact_digest(heads_path)[:12]  # what the weights are now (model_version's suffix)
    card[f"eval_{report['split']}"] = {k: report[k] for k in ("model_version", "tasks", "throughput_msgs_per_s", "topics")}
    card[f"eval_{report['split']}"]["toxicity"] = {k: v for k, v in report["toxicity"].items() if not k.startswith("reliability")}
    card[f"eval_{report['split']}"]["bias_fpr"] = {k: {"fpr": v["fpr"], "by_group": v["fpr_by_group"]} for k, v in report["bias"].items()}
    if report.get("languages"):
        from enrichment_ai.analysis.coverage import XLMR_LANGUAGES, build_coverage
        from enrichment_ai.training.data import EXTRA_SETS

        card[f"eval_{report['split']}"]["languages"] = report["languages"]
        # coverage from what the production path measured (metric values as fractions)
        metrics = {k: {"value": v["value"] / 100, "n": v["n"]} for k, v in report["languages"]["sets"].items()}
        card["coverage"] = build_coverage(metrics, card.get("coverage", {}).get("languages") or XLMR_LANGUAGES, EXTRA_SETS)
    write_card(heads_path, card)
