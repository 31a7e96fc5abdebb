"""Unit-test fixtures: heavy models load once per test session (no services needed)."""

from __future__ import annotations

import pytest

from enrichment_ai.config import Settings


@pytest.fixture(scope="session")
def analysis_settings() -> Settings:
    """Default settings (no database/broker needed for the analysis path)."""
    return Settings(device="cpu")


@pytest.fixture(scope="session")
def lingua_detector(analysis_settings):
    from enrichment_ai.analysis.language import LinguaDetector

    return LinguaDetector(analysis_settings).load()


@pytest.fixture(scope="session")
def langdetect_detector(analysis_settings):
    from enrichment_ai.analysis.language import LangdetectDetector

    return LangdetectDetector(analysis_settings).load()


@pytest.fixture(scope="session")
def spacy_entities(analysis_settings):
    from enrichment_ai.analysis.entities import SpacyEntities

    return SpacyEntities(analysis_settings).load()


@pytest.fixture(scope="session")
def enricher(analysis_settings):
    """The real pipeline: lingua + shared encoder and shipped heads + spaCy."""
    from enrichment_ai.pipeline import Enricher

    return Enricher(analysis_settings).load()


@pytest.fixture(scope="session")
def english_enricher():
    """The English-only configuration: all-MiniLM-L6-v2 with models/tweeteval-heads."""
    from enrichment_ai.pipeline import Enricher

    return Enricher(Settings(device="cpu", encoder="all-MiniLM-L6-v2")).load()


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "love", "hate", "this", "you", "are", "great", "awful", "!", ".", "so"]


@pytest.fixture(scope="session")
def tiny_hf_checkpoint(tmp_path_factory):
    """A 2-layer, hidden-32 BERT classifier with 3 labels saved to disk, with its tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    tok = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    cfg = BertConfig(
        vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
        id2label={0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, label2id={"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    )  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path, model, tok
