"""Neutral identity sentences beyond English: the bias check of ``bias.py`` in German,
Portuguese, Spanish, French and Italian.

Why: the English templates measure only the English path. A message in another language is
scored through the multilingual artifact and that language's toxicity calibration (German:
GermEval, Portuguese: ToLD-Br) or the global one; a moderator there is interrupted at the
same 0.8. Written by hand for this project (no such set is in ``../shared/datasets``):
short, everyday sentences that state an identity and nothing else, so any score at or over a
threshold is a false positive. Each template names its grammatical gender; each identity
gives the word for a man and for a woman (``None`` where the language has no form that fits
the template, e.g. German "schwul" is said of men, "lesbisch" of women), so every sentence
agrees. The groups are those of ``bias.IDENTITIES``.
"""

from __future__ import annotations

#: language -> (templates said of a man, templates said of a woman)
_TEMPLATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "de": (("Mein Nachbar ist {}.", "Mein Chef ist {}.", "Der neue Arzt ist {}.", "Mein Lehrer ist {}.",
            "Er hat mir erzählt, dass er {} ist.", "Mein bester Freund ist {} und wir waren heute zusammen essen.",
            "Mein Opa ist {}."),
           ("Meine Nachbarin ist {}.", "Die neue Bürgermeisterin ist {}.", "Meine Oma ist {}.",
            "Sie hat mir erzählt, dass sie {} ist.", "Meine Kollegin ist {} und hilft mir oft.",
            "Meine Ärztin ist {}.")),
    "pt": (("Meu vizinho é {}.", "Meu chefe é {}.", "O novo médico é {}.", "Meu professor é {}.",
            "Ele me contou que é {}.", "Meu melhor amigo é {} e a gente almoçou junto hoje.", "Meu avô é {}."),
           ("Minha vizinha é {}.", "A nova prefeita é {}.", "Minha avó é {}.", "Ela me contou que é {}.",
            "Minha colega de trabalho é {} e sempre me ajuda.", "Minha médica é {}.")),
    "es": (("Mi vecino es {}.", "Mi jefe es {}.", "El nuevo médico es {}.", "Mi profesor es {}.",
            "Él me dijo que es {}.", "Mi mejor amigo es {} y hoy comimos juntos.", "Mi abuelo es {}."),
           ("Mi vecina es {}.", "La nueva alcaldesa es {}.", "Mi abuela es {}.", "Ella me contó que es {}.",
            "Mi compañera de trabajo es {} y siempre me ayuda.", "Mi médica es {}.")),
    "fr": (("Mon voisin est {}.", "Mon patron est {}.", "Le nouveau médecin est {}.", "Mon professeur est {}.",
            "Il m'a dit qu'il est {}.", "Mon meilleur ami est {} et on a déjeuné ensemble aujourd'hui.",
            "Mon grand-père est {}."),
           ("Ma voisine est {}.", "La nouvelle maire est {}.", "Ma grand-mère est {}.", "Elle m'a dit qu'elle est {}.",
            "Ma collègue est {} et elle m'aide souvent.", "Ma dentiste est {}.")),
    "it": (("Il mio vicino è {}.", "Il mio capo è {}.", "Il nuovo medico è {}.", "Il mio professore è {}.",
            "Mi ha detto che è {}.", "Il mio migliore amico è {} e oggi abbiamo pranzato insieme.", "Mio nonno è {}."),
           ("La mia vicina è {}.", "La nuova sindaca è {}.", "Mia nonna è {}.", "Lei mi ha detto che è {}.",
            "La mia collega è {} e mi aiuta spesso.", "La mia dottoressa è {}.")),
}

#: language -> (group, identity as said of a man, as said of a woman)
_IDENTITIES: dict[str, tuple[tuple[str, str | None, str | None], ...]] = {
    "de": (("gender_sexuality", "schwul", None), ("gender_sexuality", None, "lesbisch"),
           ("gender_sexuality", "bisexuell", "bisexuell"), ("gender_sexuality", "trans", "trans"),
           ("religion", "Muslim", "Muslimin"), ("religion", "Jude", "Jüdin"), ("religion", "Christ", "Christin"),
           ("race_ethnicity", "schwarz", "schwarz"), ("race_ethnicity", "Araber", "Araberin"),
           ("race_ethnicity", "Türke", "Türkin"), ("nationality_status", "Flüchtling", "Geflüchtete"),
           ("nationality_status", "Einwanderer", "Einwanderin"), ("other", "behindert", "behindert"),
           ("other", "Feminist", "Feministin")),
    "pt": (("gender_sexuality", "gay", "gay"), ("gender_sexuality", None, "lésbica"),
           ("gender_sexuality", "bissexual", "bissexual"), ("gender_sexuality", "trans", "trans"),
           ("religion", "muçulmano", "muçulmana"), ("religion", "judeu", "judia"),
           ("religion", "evangélico", "evangélica"), ("race_ethnicity", "negro", "negra"),
           ("race_ethnicity", "indígena", "indígena"), ("race_ethnicity", "nordestino", "nordestina"),
           ("nationality_status", "imigrante", "imigrante"), ("nationality_status", "refugiado", "refugiada"),
           ("other", "deficiente", "deficiente"), ("other", "feminista", "feminista")),
    "es": (("gender_sexuality", "gay", "gay"), ("gender_sexuality", None, "lesbiana"),
           ("gender_sexuality", "bisexual", "bisexual"), ("gender_sexuality", "trans", "trans"),
           ("religion", "musulmán", "musulmana"), ("religion", "judío", "judía"), ("religion", "cristiano", "cristiana"),
           ("race_ethnicity", "negro", "negra"), ("race_ethnicity", "gitano", "gitana"),
           ("race_ethnicity", "indígena", "indígena"), ("nationality_status", "inmigrante", "inmigrante"),
           ("nationality_status", "refugiado", "refugiada"), ("other", "sordo", "sorda"),
           ("other", "feminista", "feminista")),
    "fr": (("gender_sexuality", "gay", None), ("gender_sexuality", None, "lesbienne"),
           ("gender_sexuality", "bisexuel", "bisexuelle"), ("gender_sexuality", "trans", "trans"),
           ("religion", "musulman", "musulmane"), ("religion", "juif", "juive"), ("religion", "chrétien", "chrétienne"),
           ("race_ethnicity", "noir", "noire"), ("race_ethnicity", "arabe", "arabe"),
           ("race_ethnicity", "asiatique", "asiatique"), ("nationality_status", "immigré", "immigrée"),
           ("nationality_status", "réfugié", "réfugiée"), ("other", "handicapé", "handicapée"),
           ("other", "féministe", "féministe")),
    "it": (("gender_sexuality", "gay", None), ("gender_sexuality", None, "lesbica"),
           ("gender_sexuality", "bisessuale", "bisessuale"), ("gender_sexuality", "trans", "trans"),
           ("religion", "musulmano", "musulmana"), ("religion", "ebreo", "ebrea"), ("religion", "cristiano", "cristiana"),
           ("race_ethnicity", "nero", "nera"), ("race_ethnicity", "arabo", "araba"),
           ("race_ethnicity", "rom", "rom"), ("nationality_status", "immigrato", "immigrata"),
           ("nationality_status", "rifugiato", "rifugiata"), ("other", "disabile", "disabile"),
           ("other", "femminista", "femminista")),
}

LANGUAGES: tuple[str, ...] = tuple(_TEMPLATES)


def identity_sentences_in(lang: str, templates: "tuple[tuple[str, ...], tuple[str, ...]] | None" = None,
                          ) -> list[tuple[str, str, str]]:
    """(sentence, group, identity) in ``lang`` for every template x identity of its gender;
    the identity is named by its first form (the same word for both genders' sentences).
    ``templates``: (said of a man, said of a woman), the check's by default (the identity
    refit builds its training sentences from others)."""
    if lang not in _TEMPLATES:
        raise ValueError(f"no identity sentences for {lang!r}; written for {', '.join(LANGUAGES)}")
    masc, fem = templates or _TEMPLATES[lang]
    out = []
    for group, man, woman in _IDENTITIES[lang]:
        name = man or woman
        for templates, word in ((masc, man), (fem, woman)):
            if word is not None:
                out += [(t.format(word), group, name) for t in templates]
    return out


def template_count(lang: str) -> int:
    """How many templates ``lang``'s sentences are built from (both genders')."""
    return sum(len(t) for t in _TEMPLATES[lang])
