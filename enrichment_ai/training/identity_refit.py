"""Identity refit: the offensive head refitted with neutral sentences that name identities.

Why: the offensive sets teach their heads that identity words are offensive, because in
those sets the words mostly come in abuse. Measured through the production path
(``bias_languages``, 2026-12-07), before this step the multilingual artifact flagged at 0.5
28 % of neutral German identity sentences ("Mein Nachbar ist schwul."), 25 % of Portuguese,
32 % of Spanish, 17 % of French and 25 % of Italian ones, against 2 % in English; at the
0.8 alert threshold 5.9 % of the German ones, 71 % of those about gay men.

What: the offensive head (a linear layer on the message embedding, which the toxicity
calibration reads) is refitted on its own training rows (the offensive sets, sampled as
:func:`trainer.train` samples them) plus neutral sentences built from the templates below
and the identities of ``bias`` / ``bias_languages``, labelled not offensive (the data
augmentation of Dixon et al., 2018, "Measuring and Mitigating Unintended Bias in Text
Classification"). The templates share none with the bias check's, so the check measures
sentences the refit never saw. The encoder and adapter are unchanged: this needs one
encoder pass over ~23k texts, not a retrain.

How: L2-penalised logistic loss on the head's log-odds, the penalty pulling towards the
jointly trained head (``lam`` * ||w - w_trained||^2). Refitting from scratch (lam = 0)
cost ~1 point of offensive F1 even without the neutral sentences (a head fitted on the
frozen final features alone is a little worse than the one trained and checkpoint-selected
with the adapter); the pull keeps what the joint training learnt. sklearn's
``LogisticRegression`` penalises ||w||, not the distance to a given vector, so the loss is
minimised with scipy's L-BFGS-B, as in ``calibration.py``.
"""

from __future__ import annotations

import numpy as np

from enrichment_ai.training.bias import identity_sentences
from enrichment_ai.training.bias_languages import identity_sentences_in

#: weight of each neutral sentence against a labelled row; the pull towards the trained head.
#: Chosen among 8 variants by the rule written before (docs/models.md, "Identity bias beyond
#: English"): the only one within 0.5 points of offensive F1 on OLID, GermEval and ToLD-Br
AUG_WEIGHT = 2.0
LAM = 2e-4

#: English training templates (none of ``bias._TEMPLATES``)
_EN: tuple[str, ...] = (
    "my {} coworker fixed the printer", "our {} neighbours have a cute dog", "I had coffee with a {} friend this morning",
    "the {} guy at the gym is really nice", "my {} aunt makes the best soup", "we hired a {} developer last month",
    "the {} couple upstairs is moving out", "my kid's {} teacher is very patient", "a {} nurse took care of my dad",
    "the {} student asked a great question", "I went hiking with my {} cousin", "my brother told me he is {}",
)
#: language -> (templates said of a man, said of a woman); none of ``bias_languages._TEMPLATES``
_ML: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "de": (("Mein Mitbewohner ist {} und kocht sehr gut.", "Der Trainer unserer Mannschaft ist {}.", "Mein Bruder ist {}.",
            "Unser Vermieter ist {} und sehr freundlich.", "Der Typ aus dem Fitnessstudio ist {}.",
            "Mein Sohn hat mir gesagt, dass er {} ist."),
           ("Meine Schwester ist {}.", "Unsere Vermieterin ist {} und sehr freundlich.", "Die Trainerin meiner Tochter ist {}.",
            "Meine Mitbewohnerin ist {} und kocht sehr gut.", "Meine Tochter hat mir gesagt, dass sie {} ist.",
            "Die Chefin im Café ist {}.")),
    "pt": (("Meu irmão é {}.", "O técnico do nosso time é {}.", "Meu colega de quarto é {} e cozinha muito bem.",
            "Nosso senhorio é {} e muito simpático.", "O cara da academia é {}.", "Meu filho me disse que é {}."),
           ("Minha irmã é {}.", "A técnica do time da minha filha é {}.", "Minha colega de quarto é {} e cozinha muito bem.",
            "Nossa senhoria é {} e muito simpática.", "Minha filha me disse que é {}.", "A dona do café é {}.")),
    "es": (("Mi hermano es {}.", "El entrenador de nuestro equipo es {}.", "Mi compañero de piso es {} y cocina muy bien.",
            "Nuestro casero es {} y muy amable.", "El chico del gimnasio es {}.", "Mi hijo me dijo que es {}."),
           ("Mi hermana es {}.", "La entrenadora de mi hija es {}.", "Mi compañera de piso es {} y cocina muy bien.",
            "Nuestra casera es {} y muy amable.", "Mi hija me dijo que es {}.", "La dueña de la cafetería es {}.")),
    "fr": (("Mon frère est {}.", "L'entraîneur de notre équipe est {}.", "Mon colocataire est {} et cuisine très bien.",
            "Notre propriétaire est {} et très sympa.", "Le gars de la salle de sport est {}.", "Mon fils m'a dit qu'il est {}."),
           ("Ma sœur est {}.", "L'entraîneuse de ma fille est {}.", "Ma colocataire est {} et cuisine très bien.",
            "Notre voisine du dessus est {}.", "Ma fille m'a dit qu'elle est {}.", "La patronne du café est {}.")),
    "it": (("Mio fratello è {}.", "L'allenatore della nostra squadra è {}.", "Il mio coinquilino è {} e cucina benissimo.",
            "Il nostro padrone di casa è {} ed è molto gentile.", "Il ragazzo della palestra è {}.",
            "Mio figlio mi ha detto che è {}."),
           ("Mia sorella è {}.", "L'allenatrice di mia figlia è {}.", "La mia coinquilina è {} e cucina benissimo.",
            "La nostra padrona di casa è {} ed è molto gentile.", "Mia figlia mi ha detto che è {}.",
            "La proprietaria del bar è {}.")),
}


def neutral_sentences(multilingual: bool) -> list[tuple[str, str]]:
    """(sentence, language) for every training template x identity: English only for an
    English-only artifact (its encoder reads no other language)."""
    out = [(s, "en") for s, _, _ in identity_sentences(_EN)]
    if multilingual:
        out += [(s, lang) for lang, templates in _ML.items() for s, _, _ in identity_sentences_in(lang, templates)]
    return out


def fit_head(x: np.ndarray, y: np.ndarray, weight: np.ndarray, w0: np.ndarray, c0: float,
             lam: float = LAM) -> tuple[np.ndarray, float]:
    """(w, c) minimising the weighted logistic loss of ``x @ w + c`` plus
    ``lam * ||w - w0||^2``, started at the trained head (w0, c0)."""
    from scipy.optimize import minimize

    x, y, weight = np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(weight, np.float64)
    total = weight.sum()

    def loss(p):
        w, c = p[:-1], p[-1]
        z = x @ w + c
        g = weight * (1 / (1 + np.exp(-z)) - y) / total
        value = np.sum(weight * (np.logaddexp(0, z) - y * z)) / total + lam * np.sum((w - w0) ** 2)
        return value, np.concatenate([x.T @ g + 2 * lam * (w - w0), [g.sum()]])

    res = minimize(loss, np.concatenate([w0, [c0]]), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[:-1], float(res.x[-1])


def refit_offensive_head(analyzer, heads, data_dir, card: dict, log=print) -> dict:
    """Refit ``heads``' offensive head in place (module doc) on the offensive training rows
    of ``card``'s recipe (its seed and sampling) plus the neutral identity sentences, with
    ``analyzer`` (the artifact loaded as production loads it) embedding them. Returns the
    report the card keeps."""
    import torch

    from enrichment_ai.training.data import EXTRA_SETS, load_extra, load_task, sample

    cfg = card.get("train_config", {})
    seed, multilingual = int(cfg.get("seed", 0)), bool(cfg.get("multilingual"))
    parts = [("en", sample(load_task(data_dir, "offensive", "train"), cfg.get("max_per_task"), seed))]
    if multilingual:
        parts += [(lang, sample(load_extra(data_dir, name, "train", seed), cfg.get("max_per_extra_set"), seed))
                  for name, (task, lang, _) in EXTRA_SETS.items() if task == "offensive"]
    neutral = neutral_sentences(multilingual)
    xs = [analyzer.embed(list(d.texts)) for _, d in parts] + [analyzer.embed([t for t, _ in neutral])]
    x = np.concatenate(xs)
    y = np.concatenate([d.labels for _, d in parts] + [np.zeros(len(neutral), np.int64)])
    weight = np.concatenate([np.ones(sum(len(d) for _, d in parts)), np.full(len(neutral), AUG_WEIGHT)])
    head = heads.heads["offensive"]
    weight_t, bias_t = head.weight.double().numpy(), head.bias.double().numpy()
    w0, c0 = weight_t[1] - weight_t[0], float(bias_t[1] - bias_t[0])
    w, c = fit_head(x, y, weight, w0, c0)
    new_w, new_b = weight_t.copy(), bias_t.copy()
    new_w[1], new_b[1] = weight_t[0] + w, bias_t[0] + c  # same log-odds form: class 1 minus class 0
    head.weight, head.bias = torch.tensor(new_w, dtype=head.weight.dtype), torch.tensor(new_b, dtype=head.bias.dtype)
    n_neutral = len(neutral)
    report = {
        "method": "offensive head refitted on its training rows + neutral identity sentences (label 0), "
                  "L2 pull towards the jointly trained head; encoder and adapter unchanged",
        "neutral_sentences": n_neutral,
        "neutral_languages": sorted({lang for _, lang in neutral}),
        "training_rows": {lang: len(d) for lang, d in parts},
        "aug_weight": AUG_WEIGHT,
        "lam": LAM,
        "relative_change": round(float(np.linalg.norm(w - w0) / np.linalg.norm(w0)), 4),
        "neutral_over_0_log_odds": {"before": round(float(np.mean(x[-n_neutral:] @ w0 + c0 > 0)), 4),
                                    "after": round(float(np.mean(x[-n_neutral:] @ w + c > 0)), 4)},
    }
    log(f"identity refit: {n_neutral} neutral sentences; offensive head moved {report['relative_change']:.1%}; "
        f"neutral sentences over log-odds 0: {report['neutral_over_0_log_odds']}")
    return report
