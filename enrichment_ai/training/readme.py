"""Render ``models/<name>/README.md`` from ``card.json`` (numbers only ever come from runs)."""

from __future__ import annotations

from pathlib import Path

from enrichment_ai.analysis.heads import read_card

_TARGETS = {"sentiment": 71.0, "offensive": 79.0, "hate": 52.0, "emotion": 76.0, "irony": 64.0}
_BOARD = {"RoBERTa-base": {"sentiment": 71.3, "offensive": 79.5, "hate": 46.6, "emotion": 76.1, "irony": 59.7},
          "FastText": {"sentiment": 62.9, "offensive": 73.4, "hate": 50.6, "emotion": 65.2, "irony": 63.1}}


def render(card: dict) -> str:
    """Markdown for the artifact README."""
    ev = card.get("eval_val")
    at_train = card.get("val_metrics_at_train", {})
    n_cal = len((card.get("toxicity_calibration") or {}).get("coefficients") or [0] * 3)
    lines = [
        f"# {card.get('name', 'tweeteval-heads')} ({card.get('kind', '?')}) — version `{card.get('version', '?')}`",
        "",
        f"Base encoder: **{card.get('base_encoder')}** ({card.get('base_encoder_source')}); the base weights are",
        "not in this folder. Artifact: `heads.safetensors` (5 TweetEval heads, toxicity calibration, topic head)",
        "and, for the LoRA kind, `adapter.safetensors` (low-rank updates of the top encoder layers).",
        f"Encoder passes per message: **{card.get('encoder_passes_per_message', 1)}** (every head reads the same pass).",
        f"Text preprocessing: `{card.get('text_preprocessing', 'none')}`"
        + (" (emoji and other symbols the encoder's vocabulary maps to `[UNK]` are spelled out by their Unicode"
           " names, e.g. 😂 → \"face with tears of joy\"; `enrichment_ai/analysis/symbols.py`)."
           if card.get("text_preprocessing", "none") != "none" else "."),
        "",
        f"Training data: {card.get('training_data')}. Selection: {card.get('selection_data')}.",
        f"Training config: `{card.get('train_config')}`; training took {card.get('train_minutes')} min on this machine.",
        *([f"Kept checkpoint: step {sel['step']} (epoch {sel['epoch']}), the best mean val metric ({sel['mean_val']}) of"
             f" {len(card.get('train_log', []))} evaluations (the card's `train_log`; step 0 = the warm-start heads)."]
          if (sel := card.get("selected_checkpoint")) else []),
        "Reproduce: " + _reproduce(card),
        "(with the default 2 CPU threads: another `--threads` count rounds floats in another order, so the weights differ slightly).",
        "",
        "## Validation results (official TweetEval metric per task, %)",
        "",
        "| task | metric | this model (val) | RoBERTa-base (test) | FastText (test) | target |",
        "|---|---|---|---|---|---|",
    ]
    for task, tgt in _TARGETS.items():
        if ev:
            m = ev["tasks"][task]
            val, metric = f"{m['value']:.2f}", m["metric"]
        else:
            m = at_train.get(task, {})
            val, metric = (f"{100 * m['value']:.2f}" if m else "?"), m.get("metric", "")
        lines.append(f"| {task} | {metric} | {val} | {_BOARD['RoBERTa-base'][task]} | {_BOARD['FastText'][task]} | ≥ {tgt} |")
    lines.append("")
    if ev:
        t = ev["toxicity"]
        lines += [
            f"Throughput (all heads, CPU, 2 threads shared with other jobs): {ev['throughput_msgs_per_s']} msgs/s.",
            f"Topics (TweetTopicXL en validation, 20 tweets): micro-F1 {ev['topics']['micro_f1']}, macro-F1 {ev['topics']['macro_f1']}.",
            "",
            "## Toxicity: a calibrated probability",
            "",
            ("`toxicity = sigmoid(a*z_offensive + b*z_hate + c)` (z = the heads' log-odds)"
             if n_cal == 3 else
             "`toxicity = sigmoid(w · [z_off, z_hate, tanh(z_off/2), tanh(z_hate/2), tanh(z_off), tanh(z_hate)] + c)`,"
             " w ≥ 0 (z = the heads' log-odds; monotone in both)")
            + (", the global form fitted on the offensive val sets of every language with one (TweetEval's, "
               "GermEval's held-out share, ToLD-Br's), each language's own form below"
               if card.get("coverage") else ", fitted on TweetEval val"),
            "(the offensive tweets: toxic = offensive as OLID labels it, i.e. insults, threats, hate and profanity;",
            "`enrichment_ai/training/calibration.py`, TOXICITY_TASKS). Long messages: the maximum over the whole",
            "message and each sentence (sentence embeddings pooled from the same encoder pass); `details.toxicity_span`",
            "names the sentence.",
            "",
            *_calibrators(card.get("toxicity_calibration") or {}),
            *([f"- Identity refit (`enrichment_ai/training/identity_refit.py`): the offensive head refitted with "
               f"{card['identity_refit']['neutral_sentences']} neutral sentences that name an identity "
               f"({', '.join(card['identity_refit']['neutral_languages'])}; templates the bias check does not use), "
               f"label 0, weight {card['identity_refit']['aug_weight']:g}, pulled towards the trained head "
               f"(lam {card['identity_refit']['lam']:g}; the head moved {card['identity_refit']['relative_change']:.1%})."]
              if card.get("identity_refit") else []),
            f"- ECE, cross-fitted (held-out folds): **{t['ece_cross_fitted']}**; uncalibrated max-of-heads: {t['ece_uncalibrated_max_head']};",
            f"  shipped calibration measured on the same val it was fitted on (in-sample, optimistic): {t['ece_shipped_in_sample']}.",
            "",
            "In-sample (the shipped calibration on the val rows it was fitted on, and the checkpoint was chosen on them):",
            "slightly optimistic, like the in-sample ECE above.",
            "",
            "| alert threshold | share of val flagged | precision | recall |",
            "|---|---|---|---|",
            *[f"| {r['threshold']} | {r['flagged']} | {r['precision']} | {r['recall']} |" for r in t["thresholds_shipped"]],
            "",
            *([("The hate set (TweetEval hate val: hate against immigrants and women; not what the score is calibrated on):"
                " share of its hateful tweets at or over each threshold: "
                + ", ".join(f"{r['threshold']}: {r['recall']}" for r in t["hate_set_thresholds"]) + "."), ""]
              if t.get("hate_set_thresholds") else []),
            "Moderator guidance: treat the score as the chance that raters would call the message offensive",
            "(swearing counts, as in every offensive set it is fitted on). Use **0.8** (the default",
            "`ENRICHMENT_TOXICITY_THRESHOLD`) for alerts that interrupt a moderator; **0.9** in a community where",
            "swearing is fine (most explicit insults still pass it: 5 of 6 probed, docs/models.md); 0.5–0.7 for a review",
            "queue; never auto-punish on the score alone. Tweets are not chat: re-check precision on your own community's",
            "flagged messages before lowering the threshold.",
            "",
            "## Bias check (neutral identity sentences; every flag is a false positive)",
            "",
        ]
        for key, b in ev.get("bias_fpr", {}).items():
            groups = ", ".join(f"{g} {v:.3f}" for g, v in b["by_group"].items())
            lines.append(f"- FPR {key.replace('at_', 'at ')}: **{b['fpr']:.4f}** ({groups})")
        lines.append("")
    if ev and ev.get("languages"):
        lines += _languages_section(ev["languages"], card.get("coverage"))
    lines += [
        "## Topics and server-defined labels",
        "",
        f"The topic head is a per-label logistic regression on the {(card.get('training_data') or {}).get('topics', 180)} "
        f"TweetTopicXL train tweets ({'en, es, gr, ja' if card.get('coverage') else 'English'}) plus one",
        "description per label; it always returns the most likely topic plus any other above the threshold.",
        "Servers can define their own labels with `CustomTopics.from_descriptions(analyzer.embed, {label: description})`",
        "and pass it as `analyze(texts, custom_topics=...)` (cosine similarity to the descriptions, no training).",
        "",
        "## Limits",
        "",
        ("Languages: see the coverage table above (validated vs transferred); trained on tweets;"
         if card.get("coverage") else "English only (`languages = {en}`); trained on tweets;") + " TweetEval's hate set targets immigrants and women, so",
        "other kinds of hate are less well covered. The official test splits were not used; numbers above are on val,",
        "which also selected the checkpoint and fitted the toxicity calibration "
        "(ECE above is cross-fitted for that).",
        ("Calibration is fitted on the score the worker outputs: the maximum over each tweet and its sentences."
         if "max over each message" in (card.get("toxicity_calibration") or {}).get("method", "") else
         "Calibration is fitted on whole tweets; the per-sentence maximum on long messages can only raise the score."),
        "Training time excludes nothing but the one-off frozen encoder pass over the training tweets, which is cached",
        "under `<data_dir>/train-cache` (first run on a fresh clone: add one encoding pass of ~45k tweets).",
        "Only the top `adapt_layers` encoder layers get LoRA (the lower layers' outputs are cached), which is what",
        "makes CPU training affordable; `--sample` caps training tweets per task (12k; sentiment has 45k).",
    ]
    return "\n".join(lines) + "\n"


def _calibrators(cal: dict) -> list[str]:
    """One line per language with its own calibrator: its form and held-out ECE (and, where the
    form was chosen, what each candidate scored); none for a single global fit."""
    by = cal.get("by_language") or {}
    if not by:
        return []

    def form(r: dict) -> str:
        scored = r.get("chosen_from")
        return (f"{r['method'].split(' ', 1)[0]}, cross-fitted ECE {r['ece']:.4f}"
                + (" (chosen: " + ", ".join(f"{k} {v:.4f}" for k, v in scored.items()) + ")" if scored else ""))

    return ["Each language with toxicity val data has its own calibrator, fitted on that language's val"
            + (" (its form: whichever of Platt and Platt + tanh has the lower 5-fold cross-fitted ECE there)"
               if any("chosen_from" in r for r in by.values()) else "") + "; every other language gets the global fit:",
            "",
            *[f"- {lang}: {form(r)}" for lang, r in by.items()],
            f"- global (every other language): {form(cal)}", ""]


def _reproduce(card: dict) -> str:
    from enrichment_ai.cli.train import DEFAULT_ADAPT_LAYERS, DEFAULT_LR

    cfg = card.get("train_config", {})
    env = f"ENRICHMENT_ENCODER={card.get('base_encoder')} "
    flags = "" if cfg.get("multilingual", False) else " --english-only"
    if cfg.get("adapt_layers", 2) != DEFAULT_ADAPT_LAYERS:  # the CLI defaults
        flags += f" --adapt-layers {cfg.get('adapt_layers', 2)}"
    if cfg.get("lr", 2e-3) != DEFAULT_LR:
        flags += f" --lr {cfg.get('lr', 2e-3):g}"
    if cfg.get("seed", 0) != 0:  # the CLI default
        flags += f" --seed {cfg['seed']}"
    if cfg.get("max_steps"):
        flags += f" --max-steps {cfg['max_steps']}"
    if cfg.get("max_minutes"):
        flags += f" --max-minutes {cfg['max_minutes']:g}"
    out = f" --out models/{card.get('name', 'tweeteval-heads')}"
    return (f"`{env}enrichment-ai train --data ../shared/datasets{flags}{out}` then "
            f"`{env}enrichment-ai eval --data ../shared/datasets --split val`")


def _alerting(bias_fpr: dict) -> str:
    """The identities whose neutral sentences still reach the alert threshold (the last key)."""
    worst = [(i, r) for i, r in list(bias_fpr.values())[-1]["worst_identities"] if r > 0][:2]
    return f" (alerting: {', '.join(f'{i} {r:.2f}' for i, r in worst)})" if worst else ""


def _languages_section(langs: dict, coverage: dict | None) -> list[str]:
    """Per-language val tables (production path) beside the published anchors, and coverage."""
    from enrichment_ai.training.evaluate import TOLD_BR_ANCHOR, UMSAB_ANCHORS, UMSAB_XLMT

    sets = langs["sets"]
    lines = ["## Beyond English (val, through the production path)", "",
             "| UMSAB sentiment, macro-F1 | " + " | ".join(m["lang"] for n, m in sets.items() if n.startswith("umsab-"))
             + " | mean 7 non-en | mean 8 |",
             "|---" * (sum(n.startswith("umsab-") for n in sets) + 3) + "|",
             "| this model (val) | " + " | ".join(f"{m['value']:.1f}" for n, m in sets.items() if n.startswith("umsab-"))
             + f" | **{langs['umsab_mean_non_en']:.1f}** | {langs['umsab_mean_all']:.1f} |",
             "| XLM-Tw multilingual (test) | " + " | ".join(f"{UMSAB_XLMT[m['lang']]:.1f}" for n, m in sets.items()
                                                       if n.startswith("umsab-")) + " | | 69.4 |", "",
             "Anchors (UMSAB README, official test set): " + "; ".join(f"{k} {v}" for k, v in UMSAB_ANCHORS.items())
             + ". Target: mean of the 7 non-English ≥ 66.", ""]
    for name, anchor in (("germeval-de", ""), ("told-br-pt", f"; ToLD-Br README: {TOLD_BR_ANCHOR:.0f}")):
        if name in sets:
            m = sets[name]
            lines.append(f"- {name}: {m['metric']} **{m['value']:.1f}** (val n={m['n']}; target ≥ 70{anchor})")
    lines.append("- toxicity ECE per language (shipped probability, in-sample): "
                 + ", ".join(f"{k} {v['ece']:.4f} (n={v['n']})" for k, v in langs["toxicity_ece"].items()))
    if langs.get("bias_fpr"):
        lines.append("- bias check beyond English (neutral sentences that state an identity, hand-written per language, "
                     "`training/bias_languages.py`; every flag is a false positive), FPR at 0.5 / at the alert threshold: "
                     + "; ".join(f"{lang} " + " / ".join(f"{v['fpr']:.3f}" for v in b.values()) + _alerting(b)
                                 for lang, b in langs["bias_fpr"].items()))
    lines.append("- topics per language (TweetTopicXL validation, 20 tweets each, indicative): "
                 + ", ".join(f"{k} micro-F1 {v['micro_f1']:.1f}" for k, v in langs["topics"].items()))
    lines.append("")
    if coverage:
        groups = list(next(iter(coverage["languages"].values())))
        lines += ["### Coverage: which languages get which scores, on what evidence", "",
                  "`validated` = labelled val data in that language at or above the floor "
                  f"({', '.join(f'{g} {100 * v:.0f}' for g, v in coverage['floors'].items())}); `transferred` = scored "
                  "through the multilingual encoder without such evidence (every other language the encoder covers; "
                  f"{len(coverage['languages'])} languages in all). Each row's `details.coverage` says which; a server with "
                  "`validated_languages_only` gets NULL for transferred groups.", "",
                  "| language | " + " | ".join(groups) + " | evidence |", "|---" * (len(groups) + 2) + "|"]
        for lang, row in coverage["languages"].items():
            ev = coverage.get("evidence", {}).get(lang)
            if not ev and all(s == "transferred" for s in row.values()):
                continue
            lines.append(f"| {lang} | " + " | ".join(row[g] for g in groups) + " | "
                         + "; ".join(ev.values() if ev else []) + " |")
        lines += ["| every other covered language | " + " | ".join("transferred" for _ in groups) + " | none (zero-shot) |", ""]
    return lines


def write_readme(directory: Path) -> None:
    """Write README.md next to card.json."""
    directory = Path(directory)
    (directory / "README.md").write_text(render(read_card(directory)))
