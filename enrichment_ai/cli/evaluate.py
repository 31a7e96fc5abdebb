"""``enrichment-ai eval``: evaluate the shipped shared-encoder model on val, write a JSON report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Evaluate the shipped heads on TweetEval/TweetTopicXL val (tables, ECE, bias, throughput, JSON report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="shared datasets folder, e.g. ../shared/datasets")
    parser.add_argument("--split", default="val", choices=("val",), help="only val is available here")
    parser.add_argument("--report", type=Path, default=None, help="JSON report path (default reports/eval-<split>.json)")
    parser.add_argument("--no-card", action="store_true", help="do not update models/<heads>/card.json")
    parser.add_argument("--no-langid", action="store_true", help="skip the language-id table")
    parser.add_argument("--no-entities", action="store_true", help="skip the entity table (hand-annotated chat set)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--routed", action="store_true",
                        help="evaluate what the pipeline runs: English through the English artifact, every other "
                        "language through the multilingual one (analysis/routed.py); updates no card")


def run(args: argparse.Namespace, settings) -> int:
    import torch

    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer
    from enrichment_ai.training.data import holdout_seed
    from enrichment_ai.training.evaluate import evaluate, format_tables, update_card

    torch.set_num_threads(max(1, args.threads))
    if args.routed:
        from enrichment_ai.analysis.routed import RoutedAnalyzer, routes_english

        if not routes_english(settings):
            print("--routed: these settings route nothing (route_english off, or the heads artifact is not "
                  "multilingual): evaluating the heads artifact alone")
            args.routed = False
    analyzer = (RoutedAnalyzer if args.routed else SharedEncoderAnalyzer)(settings).load()
    report = evaluate(analyzer, args.data, args.split, langid=not args.no_langid, entities=not args.no_entities,
                      holdout_seed=holdout_seed(Path(settings.heads_path)))
    if args.routed:  # the route as the pipeline takes it: language id decides, not the set's label
        from enrichment_ai.analysis import registry
        from enrichment_ai.training.evaluate import evaluate_detected_languages

        detector = registry.create(registry.LANGUAGE_DETECTORS[settings.language_detector], settings).load()
        report["tasks_language_detected"] = evaluate_detected_languages(analyzer, detector, args.data, args.split)
    print(format_tables(report))
    path = args.report or Path("reports") / f"eval-{args.split}{'-routed' if args.routed else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nreport: {path}")
    if not args.no_card and not args.routed:  # a routed run measures two artifacts: no card is its own
        from enrichment_ai.training.readme import write_readme

        update_card(Path(settings.heads_path), report)
        write_readme(Path(settings.heads_path))
    return 0
