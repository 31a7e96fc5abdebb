"""``enrichment-ai train``: train the shared-encoder heads (+LoRA adapter) on TweetEval."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = ("Train the shared-encoder heads (+LoRA adapter) on TweetEval + the multilingual sets (UMSAB, GermEval, "
        "ToLD-Br, TweetTopicXL en/es/gr/ja) train; select on their val")


#: the shipped multilingual artifact's recipe (models/multilingual-heads, 2026-12-07): LoRA on the
#: top 6 of mE5-small's 12 layers at 1e-3 (at 2e-3 six layers diverged; docs/models.md)
DEFAULT_ADAPT_LAYERS = 6
DEFAULT_LR = 1e-3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="shared datasets folder, e.g. ../shared/datasets")
    parser.add_argument("--out", type=Path, default=None, help="artifact folder (default: Settings.heads_path)")
    parser.add_argument("--mode", choices=("lora", "frozen"), default="lora",
                        help="lora: adapt the top encoder layers jointly with the heads; frozen: logistic heads only")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed (default 0); also picks GermEval's held-out share. With "
                             "--recalibrate the artifact's own seed (its card's) is used: a different one is refused")
    parser.add_argument("--sample", type=int, default=12000, help="most training tweets per task (0 = all)")
    parser.add_argument("--sample-extra", type=int, default=6000,
                        help="most training rows per multilingual set (0 = all; ToLD-Br has 16,800)")
    parser.add_argument("--english-only", action="store_true",
                        help="TweetEval + TweetTopicXL en only (the recipe of the MiniLM artifact, models/tweeteval-heads)")
    parser.add_argument("--epochs", type=float, default=3.0, help="passes over the (sampled) training data")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop adapter training after this long")
    parser.add_argument("--adapt-layers", type=int, default=DEFAULT_ADAPT_LAYERS, help="top encoder layers that get LoRA adapters")
    parser.add_argument("--max-steps", type=int, default=0,
                        help="stop adapter training after this many steps, 0 = none: the whole schedule "
                             "(--epochs), which is how the shipped artifacts were trained")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR, help="adapter learning rate")
    parser.add_argument("--ema", type=float, default=None,
                        help="keep an exponential moving average of the weights with this decay per step (e.g. 0.998)")
    parser.add_argument("--evals-per-epoch", type=int, default=2, help="val evaluations (checkpoint candidates) per epoch")
    parser.add_argument("--repeat", action="append", default=None, metavar="TASK=N",
                        help="passes over TASK's training set per epoch (default 1 for every task)")
    parser.add_argument("--symbol-names", action="store_true",
                        help="spell out emoji/symbols the vocabulary lacks by their Unicode names (recorded in the artifact)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="feature cache folder (default: <data_dir>/train-cache from Settings)")
    parser.add_argument("--recalibrate", action="store_true",
                        help="only refit the toxicity calibration (global + per language) of the --out artifact on val")
    parser.add_argument("--identity-refit", action="store_true",
                        help="only refit the --out artifact's offensive head with neutral identity sentences (the step "
                             "train ends with; once per artifact), then its toxicity calibration")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (the shipped model was trained with 2: another count rounds floats"
                             " in another order, so the weights come out slightly different)")


def config(args: argparse.Namespace, settings):
    """The :class:`TrainConfig` these arguments ask for (the defaults: the shipped model's recipe)."""
    from enrichment_ai.training.data import TASKS
    from enrichment_ai.training.trainer import TrainConfig

    extra = {}
    if args.repeat:
        repeats = {}
        for r in args.repeat:
            task, _, n = r.partition("=")
            if task not in TASKS or not n.isdigit() or int(n) < 1:
                raise SystemExit(f"--repeat {r!r}: expected TASK=N with N >= 1 and TASK one of {', '.join(TASKS)}")
            repeats[task] = int(n)
        extra["task_repeats"] = repeats
    return TrainConfig(
        data_dir=args.data, out_dir=args.out or settings.heads_path, mode=args.mode, seed=0 if args.seed is None else args.seed,
        max_per_task=args.sample or None, epochs=args.epochs, max_minutes=args.max_minutes,
        max_steps=args.max_steps or None,
        adapt_layers=args.adapt_layers, rank=args.rank, alpha=2.0 * args.rank, batch_size=args.batch_size, lr=args.lr,
        cache_dir=args.cache or (Path(settings.data_dir) / "train-cache"),
        ema=args.ema, evals_per_epoch=args.evals_per_epoch, symbol_names=args.symbol_names,
        multilingual=not args.english_only, max_per_extra_set=args.sample_extra or None, **extra,
    )


def run(args: argparse.Namespace, settings) -> int:
    import torch

    from enrichment_ai.training.trainer import train

    cfg = config(args, settings)
    torch.set_num_threads(max(1, args.threads))
    if args.identity_refit:
        from enrichment_ai.training.trainer import identity_refit

        if args.recalibrate:
            raise SystemExit("error: --identity-refit already ends with the recalibration; drop --recalibrate")
        try:
            identity_refit(settings, cfg.data_dir, cfg.out_dir)
        except ValueError as e:
            raise SystemExit(f"error: {e}") from None
        return 0
    if args.recalibrate:
        from enrichment_ai.training.data import holdout_seed
        from enrichment_ai.training.trainer import recalibrate

        own = holdout_seed(cfg.out_dir)  # the artifact's held-out split is its card's seed, not ours to choose
        if args.seed is not None and args.seed != own:
            raise SystemExit(f"error: --recalibrate uses the artifact's own seed ({own}, from {cfg.out_dir}/card.json): "
                             f"with --seed {args.seed} its GermEval val would be rows it trained on; drop --seed")
        print(f"recalibrating {cfg.out_dir} with its own seed {own} (folds, GermEval held-out share)")
        recalibrate(settings, cfg.data_dir, cfg.out_dir, own)
        return 0
    train(settings, cfg)
    return 0
