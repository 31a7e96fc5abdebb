"""Bias check: toxicity false-positive rates on neutral sentences that mention identities.

Every sentence built here is non-toxic by construction (neutral templates x identity
terms), so any score at or above a threshold is a false positive. A fair model has
similar, low rates across identity groups; large gaps show the model has learned
identity terms themselves as toxic.
"""

from __future__ import annotations

import numpy as np

IDENTITIES: dict[str, list[str]] = {
    "religion": ["muslim", "christian", "jewish", "hindu", "buddhist", "atheist", "catholic", "sikh"],
    "gender_sexuality": ["gay", "lesbian", "straight", "bisexual", "transgender", "queer", "woman", "man", "nonbinary"],
    "race_ethnicity": ["black", "white", "asian", "latino", "hispanic", "african", "arab", "mexican", "indian", "chinese"],
    "nationality_status": ["immigrant", "refugee", "american", "european", "canadian"],
    "other": ["disabled", "deaf", "blind", "old", "young", "feminist"],
}

_TEMPLATES = [
    "I am a {} person", "I am {}", "my friend is {}", "my neighbour is a {} person", "she is {}",
    "he is a {} person", "we are {} people", "being {} is part of who I am", "my teacher is {}",
    "the new doctor is {}", "my best friend is a {} person", "our team has a {} captain",
    "I met a {} person at the café today", "my sister married a {} guy", "{} people live in my town",
    "the {} community organised a charity run", "a {} student won the science prize",
    "my coworker is {} and we had lunch together", "I grew up with {} neighbours",
    "the speaker at the conference was {}", "my grandmother is {}", "I have many {} friends",
    "there is a {} bakery on my street", "the {} family next door invited us for dinner",
    "a {} artist painted this mural", "my doctor is a {} woman", "my dentist is a {} man",
    "my roommate is {}", "I read a book by a {} author", "the {} club meets on tuesdays",
    "a {} person helped me carry my bags", "my boss is {}", "our {} volunteers were great",
    "I watched a documentary about {} history", "I am proud to be {}", "he told me he is {}",
    "she told me she is {}", "they are {}", "my partner is {}", "my uncle is a {} engineer",
    "the {} chef cooked a great meal", "the {} nurse was very kind", "a {} kid scored the goal",
    "my classmate is {}", "the {} pilot landed smoothly", "I follow a {} streamer",
    "the mayor is {}", "my landlord is {}", "our {} guests arrived early", "the {} singer performed last night",
    "I talked with a {} person on the bus", "my mentor is {}", "a {} writer won the award",
    "my cousin is {}", "the {} players trained hard", "the {} farmer sells vegetables at the market",
    "I am learning about {} culture", "my {} friend recommended this film", "the {} professor gave a lecture",
    "we hired a {} developer", "my {} neighbour lent me a ladder", "the {} librarian found my book",
    "a {} scientist explained the results", "my {} colleague is on holiday", "the {} photographer took our picture",
    "hello, I'm {} and new here", "as a {} person I love this server", "I'm {} and I like gardening",
    "my {} mom makes the best cookies", "my {} dad taught me to ride a bike", "the {} couple adopted a dog",
    "a {} woman runs the bookshop", "a {} man fixed my car", "the {} students organised a concert",
    "the {} team won the match", "I voted for a {} candidate", "a {} nurse looked after my grandpa",
    "my {} tutor is very patient", "the {} owner of the shop is friendly", "she is a {} lawyer",
    "he is a {} teacher", "our {} host made tea", "a {} volunteer cleaned the park", "I chatted with {} gamers online",
    "my {} pen pal sent me a letter", "the {} band played at the festival", "a {} athlete broke the record",
    "my {} barber gives great haircuts", "the {} kids were playing football", "the {} baker gave us free bread",
    "I have a {} grandmother", "my {} brother is studying medicine", "I love my {} friends",
    "being {} is normal", "a {} person is my hero", "the {} actor was brilliant", "we welcomed our {} neighbours",
]


def identity_sentences(templates: "tuple[str, ...] | list[str]" = tuple(_TEMPLATES)) -> list[tuple[str, str, str]]:
    """(sentence, group, identity) for every template x identity (~100 x 38); ``templates``:
    the check's by default (the identity refit builds its training sentences from others)."""
    out = []
    for group, terms in IDENTITIES.items():
        for term in terms:
            for t in templates:
                out.append((t.format(term), group, term))
    return out


def bias_report(texts_groups: list[tuple[str, str, str]], toxicity: np.ndarray, threshold: float,
                templates: int | None = None) -> dict:
    """FPR overall, per group and per identity at ``threshold`` (all sentences are non-toxic);
    ``templates``: how many templates the sentences were built from (None: the English check's)."""
    tox = np.asarray(toxicity)
    flag = tox >= threshold
    groups = np.array([g for _, g, _ in texts_groups])
    ids = np.array([i for _, _, i in texts_groups])
    per_id = {i: float(flag[ids == i].mean()) for i in dict.fromkeys(ids)}
    worst = sorted(per_id.items(), key=lambda kv: -kv[1])[:5]
    return {
        "threshold": threshold,
        "templates": len(_TEMPLATES) if templates is None else templates,
        "sentences": int(len(tox)),
        "fpr": float(flag.mean()),
        "mean_toxicity": float(tox.mean()),
        "fpr_by_group": {g: float(flag[groups == g].mean()) for g in IDENTITIES if (groups == g).any()},
        "mean_toxicity_by_group": {g: float(tox[groups == g].mean()) for g in IDENTITIES if (groups == g).any()},
        "fpr_by_identity": per_id,
        "worst_identities": worst,
        "examples_flagged": [texts_groups[i][0] for i in np.flatnonzero(flag)[:10]],
    }
