"""Training smoke test: a tiny synthetic TweetEval-shaped folder, both modes, seconds."""

from __future__ import annotations

import json

import pytest

from enrichment_ai.analysis.heads import TASK_LABELS
from enrichment_ai.config import Settings

POS = ["I love this, great day", "what a wonderful game", "thanks friend, awesome", "so happy today"]
NEG = ["you are a stupid idiot", "I hate you, moron", "worst thing ever, disgusting", "shut up loser"]


def _write(data, n=16):
    from enrichment_ai.analysis.topics import TOPIC_DESCRIPTIONS

    for task, labels in TASK_LABELS.items():
        d = data / "tweeteval" / task
        d.mkdir(parents=True)
        for split in ("train", "val"):
            texts, ys = [], []
            for i in range(n):
                y = i % len(labels)
                texts.append((POS if y == 0 else NEG)[i % 4] + f" {split} {i}")  # no val text in train
                ys.append(y)
            (d / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
            (d / f"{split}_labels.txt").write_text("\n".join(map(str, ys)) + "\n")
    t = data / "tweettopicxl" / "en"
    t.mkdir(parents=True)
    names = list(TOPIC_DESCRIPTIONS)
    for split in ("train", "validation"):
        rows = [{"id": i, "text": f"tweet about {names[i % 19]}", **{k: int(k == names[i % 19]) for k in names}}
                for i in range(24)]
        (t / f"en_{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.mark.parametrize("mode", ["frozen", "lora"])
def test_train_tiny_then_load(tmp_path, mode):
    import torch

    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer
    from enrichment_ai.training.trainer import TrainConfig, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    cfg = TrainConfig(data_dir=data, out_dir=out, mode=mode, epochs=2, batch_size=8, rank=2, alpha=4,
                      cache_dir=None, max_len=32, multilingual=False)
    card = train(Settings(device="cpu", encoder=None), cfg, log=lambda *_: None)
    assert (out / "heads.safetensors").exists()
    assert (out / "adapter.safetensors").exists() == (mode == "lora")
    assert set(card["val_metrics_at_train"]) == set(TASK_LABELS)
    assert 0 <= card["toxicity_calibration"]["ece"] <= 1
    assert "coverage" not in card  # English-only heads: English only
    a = SharedEncoderAnalyzer(Settings(device="cpu", encoder=None, heads_path=out)).load()
    res = a.analyze(["hello", "", "you idiot"])
    assert len(res) == 3 and all(r.error is None for r in res)
    assert ("lora" in a.version) == (mode == "lora")
    assert a.languages == frozenset({"en"})


DE_POS, DE_NEG = ["ich liebe das, toller Tag", "wunderbar, danke"], ["du bist ein Idiot", "halt die Klappe, Depp"]


def _write_multilingual(data, n=12):
    """Tiny files shaped like ../shared/datasets/multilingual and tweettopicxl es/gr/ja."""
    from enrichment_ai.training.data import UMSAB

    ml = data / "multilingual"
    for folder in UMSAB:
        d = ml / "umsab" / folder
        d.mkdir(parents=True)
        for split in ("train", "val"):
            ys = [i % 3 for i in range(n)]
            texts = [(DE_NEG if y == 0 else DE_POS)[i % 2] + f" {folder} {split} {i}" for i, y in enumerate(ys)]
            if folder == "english" and split == "train":
                texts[0] = "I LOVE  this, great day val 0"  # TweetEval sentiment val's first text: left out
            (d / f"{split}_text.txt").write_text("\n".join(texts))  # no final newline, as upstream
            (d / f"{split}_labels.txt").write_text("\n".join(map(str, ys)))
    g = ml / "germeval2018"
    g.mkdir(parents=True)
    rows = [f"{(DE_NEG if i % 2 else DE_POS)[i % 2]}|LBR|{i}\t{'OFFENSE' if i % 2 else 'OTHER'}\tX" for i in range(30)]
    (g / "germeval2018.training.txt").write_text("\n".join(rows) + "\n")
    t = ml / "told-br"
    t.mkdir(parents=True)
    for name in ("ptbr_train_1annotator.csv", "ptbr_validation_1annotator.csv"):
        body = "".join(f'"{"voce e um idiota" if i % 2 else "que dia lindo"}\n{name[5:9]} {i}",{float(i % 2)}\n'
                       for i in range(20))
        (t / name).write_text("text,toxic\n" + body)
    src = data / "tweettopicxl" / "en"
    for lang in ("es", "gr", "ja"):
        d = data / "tweettopicxl" / lang
        d.mkdir(parents=True)
        for split in ("train", "validation"):
            rows = [json.loads(x) for x in (src / f"en_{split}.jsonl").read_text().splitlines()]
            # es/ja upstream store labels as floats
            rows = [{k: (float(v) if isinstance(v, int) and k != "id" else v) for k, v in r.items()} for r in rows]
            (d / f"{lang}_{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_train_multilingual_sets_coverage_and_rows(tmp_path):
    """The multilingual recipe: extra sets in training and selection, a coverage block in
    the card, the analyzer scoring every covered language with coverage on each row."""
    import torch

    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer
    from enrichment_ai.config import Settings
    from enrichment_ai.pipeline import Enricher
    from enrichment_ai.training.data import EXTRA_SETS
    from enrichment_ai.training.trainer import TrainConfig, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    _write_multilingual(data)
    cfg = TrainConfig(data_dir=data, out_dir=out, mode="frozen", cache_dir=None, max_len=32)
    card = train(Settings(device="cpu", encoder=None), cfg, log=lambda *_: None)
    assert set(card["val_metrics_at_train"]) == set(TASK_LABELS) | set(EXTRA_SETS)
    assert card["training_data"]["sentiment/de"] == 12 and card["training_data"]["offensive/pt"] == 20
    # a training row whose text (case and spacing aside) is a val text of its head is left out
    assert card["train_rows_removed_as_in_val"] == {"sentiment/umsab-en": 1}
    assert card["training_data"]["sentiment/en"] == 16 + 12 - 1  # TweetEval + UMSAB English, less the one
    assert card["training_data"]["offensive/de"] == 24  # GermEval: 80% of 30 rows; 6 held out for val
    assert card["topics"]["labels"] and card["training_data"]["topics"] == 4 * 24
    # the multilingual recipe ends with the identity refit (in every language it has sentences for)
    assert card["identity_refit"]["neutral_languages"] == ["de", "en", "es", "fr", "it", "pt"]
    assert card["identity_refit"]["training_rows"] == {"en": 16, "de": 24, "pt": 20}
    cov = card["coverage"]
    assert cov["languages"]["en"]["toxicity"] == "validated"
    assert cov["languages"]["sw"] == {g: "transferred" for g in cov["languages"]["sw"]}  # no data in Swahili
    assert "umsab-de" in cov["evidence"]["de"]["sentiment"]
    settings = Settings(device="cpu", encoder=None, heads_path=out)
    a = SharedEncoderAnalyzer(settings).load()
    assert {"en", "de", "pt", "sw"} <= a.languages
    enricher = Enricher(settings).load()
    text = "Das ist wirklich ein wunderbarer Tag, ich freue mich sehr darauf"
    row = enricher.enrich_batch([text])[0]
    assert row.language == "de" and row.toxicity is not None and row.details["coverage"] == cov["languages"]["de"]
    # a server that requires validated languages: transferred groups NULL, with a reason naming the language
    strict = enricher.enrich_batch([text], validated_only=[True])[0]
    withheld = [g for g, s in cov["languages"]["de"].items() if s != "validated"]
    assert strict.details.get("withheld", []) == withheld
    assert "emotion" in withheld and "emotion" not in strict.scores and "'de'" in strict.reason
    assert (strict.sentiment is None) == ("sentiment" in withheld)


def test_ema_averages_and_swaps_back():
    import torch

    from enrichment_ai.training.multitask import EMA

    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([p], decay=0.5)
    with torch.no_grad():
        p.fill_(4.0)
    ema.update()  # 0.5 * 0 + 0.5 * 4
    with torch.no_grad():
        p.fill_(8.0)
    ema.update()  # 0.5 * 2 + 0.5 * 8
    assert torch.allclose(ema.shadow[0], torch.full((3,), 5.0))
    ema.swap()
    assert torch.allclose(p, torch.full((3,), 5.0))  # averaged weights are live
    ema.swap()
    assert torch.allclose(p, torch.full((3,), 8.0))  # and the trained ones are back


def test_train_with_ema_records_it(tmp_path):
    import torch

    from enrichment_ai.training.trainer import TrainConfig, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    cfg = TrainConfig(data_dir=data, out_dir=out, mode="lora", epochs=1, batch_size=8, rank=2, alpha=4, multilingual=False,
                      cache_dir=None, max_len=32, ema=0.9, evals_per_epoch=4)
    card = train(Settings(device="cpu", encoder=None), cfg, log=lambda *_: None)
    assert card["train_config"]["ema"] == 0.9
    assert len(card["train_log"]) >= 4  # start + several evaluations within the epoch


def test_train_cli_rejects_unknown_repeat_task(tmp_path):
    from enrichment_ai.cli import main

    with pytest.raises(SystemExit, match="TASK=N"):
        main(["train", "--data", str(tmp_path), "--repeat", "emotions=2"])


def test_recalibrate_uses_the_artifacts_own_seed_and_refuses_another(tmp_path, monkeypatch, capsys):
    """`train --recalibrate --seed N` used to ignore N silently (the card's seed wins, rightly:
    another seed's GermEval val is this artifact's training data). Now a different N is an
    error that says why, and the seed used is printed."""
    from enrichment_ai.analysis.heads import write_card
    from enrichment_ai.cli import main
    from enrichment_ai.training import trainer

    art = tmp_path / "art"
    art.mkdir()
    write_card(art, {"train_config": {"seed": 3}})
    calls = []
    monkeypatch.setattr(trainer, "recalibrate", lambda settings, data, out, seed=None, log=print: calls.append(seed))
    base = ["train", "--data", str(tmp_path), "--out", str(art), "--recalibrate"]
    with pytest.raises(SystemExit, match=r"own seed \(3.*drop --seed"):
        main(base + ["--seed", "0"])
    assert calls == []
    assert main(base) == 0 and main(base + ["--seed", "3"]) == 0
    assert calls == [3, 3]
    assert "with its own seed 3" in capsys.readouterr().out


def test_epoch_plan_repeats_small_tasks_and_covers_every_example():
    import numpy as np

    from enrichment_ai.training.multitask import epoch_plan

    rng = np.random.default_rng(0)
    lengths = {"sentiment": rng.integers(3, 40, 250), "emotion": rng.integers(3, 40, 70)}
    plan = epoch_plan(lengths, {"emotion": 3}, 16, np.random.default_rng(1))
    for task, times in (("sentiment", 1), ("emotion", 3)):
        seen = np.concatenate([idx for t, idx in plan if t == task])
        assert np.array_equal(np.bincount(seen, minlength=len(lengths[task])), np.full(len(lengths[task]), times))
    assert {t for t, _ in plan} == {"sentiment", "emotion"} and all(len(idx) <= 16 for _, idx in plan)
    order = [t for t, _ in plan]
    assert order != sorted(order) and order != sorted(order, reverse=True)  # tasks interleaved, not in blocks


def test_diverged_training_keeps_the_warm_start_and_says_so(tmp_path):
    import torch
    from safetensors.torch import load_file

    from enrichment_ai.training.trainer import TrainConfig, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    lines: list[str] = []
    cfg = TrainConfig(data_dir=data, out_dir=out, mode="lora", epochs=1, batch_size=8, rank=2, alpha=4, multilingual=False,
                      cache_dir=None, max_len=32, lr=1e4, head_lr=1e4)  # far past stable: the weights blow up
    card = train(Settings(device="cpu", encoder=None), cfg, log=lines.append)
    tasks = list(TASK_LABELS)
    warm, last = card["train_log"][0], card["train_log"][-1]
    assert last["step"] > 0 and sum(last[t] for t in tasks) < sum(warm[t] for t in tasks)  # it did diverge
    assert card["selected_checkpoint"]["step"] == 0
    assert any(line.startswith("WARNING: adapter training never beat the warm-start heads") for line in lines)
    adapter = load_file(str(out / "adapter.safetensors"))
    lora_b = [t for k, t in adapter.items() if k.endswith(".lora_b")]
    assert lora_b and all(torch.count_nonzero(t) == 0 for t in lora_b)  # zero update: the frozen encoder
    # the shipped heads score what the warm start scored
    assert all(abs(m["value"] - warm[t]) < 1e-3 for t, m in card["val_metrics_at_train"].items())


def test_train_defaults_are_the_shipped_models_recipe(tmp_path):
    """`enrichment-ai train --data D` must rebuild models/: its defaults are the shipped card's config."""
    from dataclasses import asdict

    from enrichment_ai.analysis.heads import read_card
    from enrichment_ai.cli import build_parser
    from enrichment_ai.cli.train import config

    argv = ["train", "--data", str(tmp_path)]
    cfg = config(build_parser(argv).parse_args(argv), Settings(data_dir=tmp_path))
    ours = {k: v for k, v in asdict(cfg).items() if k not in ("data_dir", "out_dir", "cache_dir", "seed")}
    shipped = read_card(Settings().heads_path)["train_config"]
    # the seed is not the recipe: the shipped artifact is seed 3 of it (the card's reproduce line says --seed 3)
    assert ours == {k: v for k, v in shipped.items() if k != "seed"}


def test_germeval_val_is_the_share_the_artifact_held_out(tmp_path):
    """GermEval's val is carved out of its only file by the training seed: a ``--seed 1``
    artifact trained on most of seed 0's held-out rows, so its eval and recalibration must
    read its own seed from its card."""
    from enrichment_ai.analysis.heads import write_card
    from enrichment_ai.training.data import holdout_seed, load_extra

    data = tmp_path / "data"
    _write(data)
    _write_multilingual(data)
    train1, val1 = (set(load_extra(data, "germeval-de", s, 1).texts) for s in ("train", "val"))
    val0 = set(load_extra(data, "germeval-de", "val", 0).texts)
    assert val1 and not train1 & val1  # a seed's own split: disjoint
    assert val0 & train1  # another seed's val: partly this seed's training rows (why it matters)
    art = tmp_path / "art"
    art.mkdir()
    assert holdout_seed(art) == 0  # no card: the default seed
    write_card(art, {"train_config": {"seed": 1}})
    assert holdout_seed(art) == 1


def test_eval_and_recalibration_use_the_artifacts_held_out_share(tmp_path, monkeypatch):
    import torch

    from enrichment_ai.analysis.shared import SharedEncoderAnalyzer
    from enrichment_ai.training import evaluate, trainer
    from enrichment_ai.training.data import load_extra
    from enrichment_ai.training.trainer import TrainConfig, recalibrate, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    _write_multilingual(data)
    settings = Settings(device="cpu", encoder=None)
    train(settings, TrainConfig(data_dir=data, out_dir=out, mode="frozen", cache_dir=None, max_len=32, seed=1),
          log=lambda *_: None)
    seeds: list[tuple[str, int]] = []

    def spy(data_dir, name, split, seed=0):
        seeds.append((split, seed))
        return load_extra(data_dir, name, split, seed)

    monkeypatch.setattr(trainer, "load_extra", spy)
    recalibrate(settings, data, out, log=lambda *_: None)
    assert seeds and set(seeds) == {("val", 1)}
    analyzer = SharedEncoderAnalyzer(settings.model_copy(update={"heads_path": out})).load()
    report = evaluate.evaluate_languages(analyzer, data, "val", log=lambda *_: None, seed=1)
    assert report["germeval_holdout_seed"] == 1
    assert report["sets"]["germeval-de"]["n"] == len(load_extra(data, "germeval-de", "val", 1))


def test_eval_cross_fits_each_languages_calibrator_on_the_workers_max():
    """Per language, the eval refits that language's own calibrator (its method) 5-fold on
    the candidates the worker takes the max over, so artifacts compare like for like."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from enrichment_ai.training.evaluate import _cross_fitted_ece

    rng = np.random.default_rng(0)
    n = 600
    z = rng.normal(0, 2, (n, 2))
    y = (rng.random(n) < 1 / (1 + np.exp(-z.max(1)))).astype(int)  # labels drawn from the max's probability
    heads = SimpleNamespace(toxicity_calibration=torch.zeros(7), toxicity_calibration_by_language={"de": torch.zeros(3)})
    calls = []
    scorer = SimpleNamespace(heads=heads, toxicity_log_odds=lambda texts: calls.append(len(texts)) or [z[i:i + 1] for i in range(n)])
    routed = SimpleNamespace(primary=scorer)
    de = _cross_fitted_ece(routed, "de", ["t"] * n, y)
    pt = _cross_fitted_ece(scorer, "pt", ["t"] * n, y)
    assert de["calibrator"] == "platt" and pt["calibrator"] == "platt+tanh"  # the language's own, else the global
    assert 0 <= de["ece_cross_fitted"] < 0.08 and 0 <= pt["ece_cross_fitted"] < 0.08 and calls == [n, n]
    assert _cross_fitted_ece(scorer, "pt", ["t"] * 30, y[:30]) == {}  # too few of a class to cross-fit
    # English, whose eval figure is computed beside the task metrics, takes its own form too
    from enrichment_ai.training.evaluate import _calibrator

    heads.toxicity_calibration_by_language["en"] = torch.zeros(3)
    assert _calibrator(heads, "en") == "platt" and _calibrator(heads, "pt") == "platt+tanh"


def test_identity_refit_runs_once_and_records_itself(tmp_path):
    """`train --identity-refit` on an English-only artifact (the multilingual recipe ends with it:
    test_train_multilingual_sets_coverage_and_rows)."""
    import torch

    from enrichment_ai.analysis.heads import Heads, read_card
    from enrichment_ai.config import Settings
    from enrichment_ai.training.identity_refit import neutral_sentences
    from enrichment_ai.training.trainer import TrainConfig, identity_refit, train

    torch.set_num_threads(2)
    data, out = tmp_path / "data", tmp_path / "model"
    _write(data)
    settings = Settings(device="cpu", encoder=None)
    train(settings, TrainConfig(data_dir=data, out_dir=out, mode="frozen", cache_dir=None, max_len=32,
                                multilingual=False), log=lambda *_: None)
    assert "identity_refit" not in read_card(out)  # an English-only recipe ends with the calibration alone
    identity_refit(settings, data, out, log=lambda *_: None)  # what `train --identity-refit` runs
    card = read_card(out)
    report = card["identity_refit"]
    assert report["neutral_languages"] == ["en"] and report["neutral_sentences"] == len(neutral_sentences(False))
    assert report["training_rows"] == {"en": 16}
    assert card["toxicity_calibration"]["n"] > 0  # the calibration was fitted after the refit
    before = Heads.load(out).heads
    with pytest.raises(ValueError, match="already had its identity refit"):
        identity_refit(settings, data, out, log=lambda *_: None)
    after = Heads.load(out).heads
    assert all(torch.equal(before[t].weight, after[t].weight) for t in before)  # refused: nothing written
