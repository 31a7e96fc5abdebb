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
    lines = [
        f"# tweeteval-heads ({card.get('kind', '?')}) — version `{card.get('version', '?')}`",
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
        "Reproduce: `enrichment-ai train --data ../shared/datasets` then `enrichment-ai eval --data ../shared/datasets --split val`",
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
            "`toxicity = sigmoid(a*z_offensive + b*z_hate + c)` (z = the heads' log-odds), fitted on TweetEval val",
            "(offensive + hate tweets; toxic = offensive or hateful). Long messages: the maximum over the whole",
            "message and each sentence (sentence embeddings pooled from the same encoder pass); `details.toxicity_span`",
            "names the sentence.",
            "",
            f"- ECE, cross-fitted (held-out folds): **{t['ece_cross_fitted']}**; uncalibrated max-of-heads: {t['ece_uncalibrated_max_head']};",
            f"  shipped calibration measured on the same val it was fitted on (in-sample, optimistic): {t['ece_shipped_in_sample']}.",
            "",
            "| alert threshold | share of val flagged | precision | recall |",
            "|---|---|---|---|",
            *[f"| {r['threshold']} | {r['flagged']} | {r['precision']} | {r['recall']} |" for r in t["thresholds_shipped"]],
            "",
            "Moderator guidance: treat the score as the chance that raters would call the message offensive or",
            "hateful. Use **0.8** (the default `ENRICHMENT_TOXICITY_THRESHOLD`) for alerts that interrupt a moderator;",
            "0.5–0.7 for a review queue; never auto-punish on the score alone. Tweets are not chat: re-check precision",
            "on your own community's flagged messages before lowering the threshold.",
            "",
            "## Bias check (neutral identity sentences; every flag is a false positive)",
            "",
        ]
        for key, b in ev.get("bias_fpr", {}).items():
            groups = ", ".join(f"{g} {v:.3f}" for g, v in b["by_group"].items())
            lines.append(f"- FPR {key.replace('at_', 'at ')}: **{b['fpr']:.4f}** ({groups})")
        lines.append("")
    lines += [
        "## Topics and server-defined labels",
        "",
        "The topic head is a per-label logistic regression on the 180 English TweetTopicXL train tweets plus one",
        "description per label; it always returns the most likely topic plus any other above the threshold.",
        "Servers can define their own labels with `CustomTopics.from_descriptions(analyzer.embed, {label: description})`",
        "and pass it as `analyze(texts, custom_topics=...)` (cosine similarity to the descriptions, no training).",
        "",
        "## Limits",
        "",
        "English only (`languages = {en}`); trained on tweets; TweetEval's hate set targets immigrants and women, so",
        "other kinds of hate are less well covered. The official test splits were not used; numbers above are on val,",
        "which also selected the checkpoint and fitted the 3 calibration numbers (ECE above is cross-fitted for that).",
        "Calibration is fitted on whole tweets; the per-sentence maximum on long messages can only raise the score.",
        "Training time excludes nothing but the one-off frozen encoder pass over the training tweets, which is cached",
        "under `<data_dir>/train-cache` (first run on a fresh clone: add one encoding pass of ~45k tweets).",
        "Only the top `adapt_layers` encoder layers get LoRA (the lower layers' outputs are cached), which is what",
        "makes CPU training affordable; `--sample` caps training tweets per task (12k; sentiment has 45k).",
    ]
    return "\n".join(lines) + "\n"


def write_readme(directory: Path) -> None:
    """Write README.md next to card.json."""
    directory = Path(directory)
    (directory / "README.md").write_text(render(read_card(directory)))
