"""Topics: TweetTopicXL's 19-label multi-label taxonomy, few-shot over the shared embedding.

The shipped topic head (in the heads artifact) is a per-label logistic regression fitted
on the 180 English TweetTopicXL training tweets plus one label-description "example" per
label (:func:`fit_topic_head`), with a decision threshold chosen by cross-validation on
train. Prediction always keeps the most likely label and adds every other label above the
threshold (every TweetTopicXL tweet has at least one topic).

Servers may define their own labels: :class:`CustomTopics` turns ``{label: description}``
into prototypes (description embeddings) and scores messages by cosine similarity on the
same embedding — no training data needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: Short descriptions of the 19 TweetTopicXL labels (used as few-shot "examples").
TOPIC_DESCRIPTIONS: dict[str, str] = {
    "arts_&_culture": "art, museums, books, literature, theatre, culture and history",
    "business_&_entrepreneurs": "business, companies, startups, entrepreneurs, money, markets and investing",
    "celebrity_&_pop_culture": "celebrities, famous people, pop culture, gossip and fandoms",
    "diaries_&_daily_life": "my day, daily life, personal feelings, routines and everyday moments",
    "family": "family, parents, children, kids, mom, dad, siblings",
    "fashion_&_style": "fashion, clothes, outfits, style, beauty and makeup",
    "film_tv_&_video": "movies, films, tv shows, series, episodes, streaming and videos",
    "fitness_&_health": "fitness, workout, gym, health, medicine, diet and wellbeing",
    "food_&_dining": "food, cooking, recipes, restaurants, eating and drinks",
    "gaming": "video games, gaming, consoles, esports and gamers",
    "learning_&_educational": "learning, education, teaching, knowledge, courses and studying",
    "music": "music, songs, albums, concerts, singers and bands",
    "news_&_social_concern": "news, politics, government, elections, war, crime and social issues",
    "other_hobbies": "hobbies, crafts, collecting, gardening, pets and leisure activities",
    "relationships": "relationships, love, dating, friends, partners and breakups",
    "science_&_technology": "science, technology, computers, software, AI, space and research",
    "sports": "sports, football, basketball, soccer, matches, teams and athletes",
    "travel_&_adventure": "travel, trips, vacation, adventure, flights and destinations",
    "youth_&_student_life": "school, college, university, students, exams and young people",
}


def predict_multilabel(probs: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """0/1 matrix: the argmax label always, plus every label with prob >= threshold."""
    probs = np.asarray(probs)
    out = probs >= np.asarray(threshold)
    if probs.shape[1]:
        out[np.arange(len(probs)), probs.argmax(1)] = True
    return out


def fit_topic_head(
    x: np.ndarray, y: np.ndarray, desc_x: np.ndarray, *, seed: int = 0, c: float = 4.0
) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit per-label logistic regressions; return (weight (L, d), bias (L,), threshold).

    ``desc_x`` (L, d) are the label-description embeddings, added as one positive example
    per label. The threshold maximises micro-F1 in 5-fold cross-validation on train.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold

    from enrichment_ai.training.metrics import multilabel_f1  # pure numpy

    n_labels = y.shape[1]
    xa = np.concatenate([x, desc_x])
    ya = np.concatenate([y, np.eye(n_labels, dtype=y.dtype)])

    def fit(xs, ys):
        w, b = np.zeros((n_labels, xs.shape[1])), np.zeros(n_labels)
        for j in range(n_labels):
            if ys[:, j].min() == ys[:, j].max():
                b[j] = 10.0 if ys[0, j] else -10.0
                continue
            m = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed)
            m.fit(xs, ys[:, j])
            w[j], b[j] = m.coef_[0], m.intercept_[0]
        return w, b

    oof = np.zeros(y.shape, dtype=float)
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(x):
        w, b = fit(np.concatenate([x[tr], desc_x]), np.concatenate([y[tr], np.eye(n_labels, dtype=y.dtype)]))
        oof[te] = 1 / (1 + np.exp(-(x[te] @ w.T + b)))
    grid = np.linspace(0.2, 0.95, 31)
    best = max(grid, key=lambda t: multilabel_f1(y, predict_multilabel(oof, t))["micro_f1"])
    w, b = fit(xa, ya)
    return w.astype(np.float32), b.astype(np.float32), float(best)


@dataclass
class CustomTopics:
    """Server-defined labels scored zero-shot against description prototypes.

    Build with :meth:`from_descriptions` (one encoder call for the descriptions, once per
    server), then :meth:`predict` on message embeddings from the same encoder.
    """

    labels: list[str]
    prototypes: np.ndarray  # (L, d), L2-normalised
    threshold: float = 0.35

    @classmethod
    def from_descriptions(cls, embed, descriptions: Mapping[str, str], threshold: float = 0.35) -> "CustomTopics":
        """``embed``: a callable texts -> L2-normalised embeddings (e.g. ``analyzer.embed``)."""
        labels = list(descriptions)
        protos = embed([f"{lab.replace('_', ' ')}: {descriptions[lab]}" for lab in labels]) if labels else np.zeros((0, 1))
        return cls(labels, np.asarray(protos, dtype=np.float32), threshold)

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """Cosine similarity of each message to each label, (n, L)."""
        return np.asarray(emb, dtype=np.float32) @ self.prototypes.T

    def predict(self, emb: np.ndarray) -> list[list[str]]:
        """Labels whose similarity reaches the threshold (possibly none)."""
        s = self.scores(emb)
        return [[lab for lab, v in zip(self.labels, row) if v >= self.threshold] for row in s]
