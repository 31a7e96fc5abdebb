"""Summarizer logic without services: small talk, masking, attribution, MMR, seq2seq."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest

from enrichment_ai.summarizers import (
    MASK,
    SMALL_TALK,
    ExtractiveSummarizer,
    Seq2SeqSummarizer,
    WindowMessage,
    WORDS_SPACE,
    as_sentence,
    build_summarizer,
    content_words,
    quote,
    mmr_select,
    word_vectors,
)


def bag_embed(texts):
    """A deterministic bag-of-words embedding (hashing trick), L2-normalised."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def msg(author, text, toxic=False):
    return WindowMessage(uuid.uuid4(), uuid.uuid5(uuid.NAMESPACE_DNS, author), author, text, toxic)


def test_content_words_separates_small_talk():
    assert content_words("lol") == 0
    assert content_words("hey guys, good morning!") == 0
    assert content_words("The deploy failed because the migration locked the messages table") >= 4
    # numbers alone are no key point (the analysis stores no vector for a text without letters)
    assert content_words("9 0 1 3 8 3 8 3 2 7") == 0 and content_words("2024 404 500 503 🎉") == 0
    assert content_words("error 404 on 2024 deploy") == 4


def test_words_keep_their_combining_marks_and_unspaced_scripts_count_by_length():
    """Indic vowel signs and viramas are combining marks, outside ``\\w``: Hindi, Tamil and
    Bengali sentences were cut into 1–2 letter pieces and counted as small talk."""
    assert content_words("कल की मीटिंग में हम नए डिज़ाइन की समीक्षा करेंगे") >= 4
    assert content_words("நாளை கூட்டத்தில் புதிய வடிவமைப்பை மதிப்பாய்வு செய்வோம்") >= 4
    assert content_words("আগামীকাল মিটিংয়ে আমরা নতুন ডিজাইন পর্যালোচনা করব") >= 4
    assert content_words("พรุ่งนี้เราจะประชุมเรื่องการออกแบบใหม่") >= 4  # Thai: no spaces between words
    assert content_words("今日は東京でとても暑いです") >= 4
    v = word_vectors(["नए डिज़ाइन की समीक्षा", "डिज़ाइन की समीक्षा कल", "पिज़्ज़ा खाना"])
    assert v[0] @ v[1] > 0.5 and v[0] @ v[2] == 0


def test_a_hindi_conversation_is_not_small_talk():
    window = [msg("asha", "कल की मीटिंग में हम नए डिज़ाइन की समीक्षा करेंगे"),
              msg("ravi", "डिज़ाइन की फ़ाइलें मैंने साझा फ़ोल्डर में डाल दी हैं"),
              msg("meera", "ग्राहक ने रंगों के बारे में शिकायत की थी, उसे भी देखना होगा"),
              msg("asha", "ठीक है, मैं प्रस्तुति तैयार करूँगी")]
    s = ExtractiveSummarizer(bag_embed).summarize(window)
    assert not s.small_talk and s.key_points


def test_small_talk_window_says_so():
    window = [msg("alice", "hi"), msg("bob", "hey hey"), msg("alice", "lol"), msg("carol", "good morning!")]
    s = ExtractiveSummarizer(bag_embed).summarize(window)
    assert s.summary.startswith(SMALL_TALK)
    assert s.key_points == [] and s.key_point_message_ids == []
    assert s.small_talk and s.message_count == 4
    assert len(s.participants) == 3


def test_key_points_are_attributed_and_linked():
    window = [
        msg("alice", "The release build fails on the database migration step again"),
        msg("bob", "lol"),
        msg("carol", "The database migration step locks the messages table for minutes"),
        msg("bob", "Let's split the migration into batches and run it tonight"),
    ]
    s = ExtractiveSummarizer(bag_embed).summarize(window)
    assert s.key_points, s
    by_id = {m.id: m for m in window}
    for point, mid in zip(s.key_points, s.key_point_message_ids, strict=True):
        src = by_id[mid]
        assert point.startswith(f"{src.author}: ")
        assert src.text[:30] in point
    assert "lol" not in " ".join(s.key_points)


def test_toxic_quote_is_masked():
    window = [
        msg("alice", "You are a worthless idiot and everybody here hates your stupid code", toxic=True),
        msg("bob", "The worthless stupid code review process everybody hates needs fixing"),
    ]
    s = ExtractiveSummarizer(bag_embed).summarize(window)
    joined = s.summary + " ".join(s.key_points)
    assert "idiot" not in joined
    assert MASK in joined


def test_mmr_skips_near_duplicates():
    e = np.array([[1, 0], [1, 0], [0.6, 0.8]], dtype=np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    picked = mmr_select(e, 2)
    assert sorted(picked) in ([0, 2], [1, 2])


def test_mmr_compares_only_within_an_embedding_space():
    # rows 0 and 2 hold the same numbers, but in two different spaces (two encoders)
    e = np.array([[1, 0], [0.9, 0.436], [1, 0], [0, 1]], dtype=np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    assert mmr_select(e, 2) == [1, 0]  # one space: rows 0 and 2 count as the same message
    # two spaces: row 0 is central in "a"; row 2 is not redundant with it (another space),
    # while row 1 is (0.9 similar), so row 2 comes second
    assert mmr_select(e, 2, spaces=["a", "a", "b", "b"]) == [0, 2]
    # same labels everywhere: exactly the plain selection
    assert mmr_select(e, 3, spaces=["x"] * 4) == mmr_select(e, 3)


def test_word_vectors_are_alike_only_in_shared_content_words():
    v = word_vectors(["the deploy failed on the migration", "Migration FAILED, deploy again",
                      "lunch pizza tomorrow anyone", "the and lol"])
    assert v.shape == (4, 512) and np.allclose(np.linalg.norm(v[:3], axis=1), 1)
    assert v[0] @ v[1] > 0.5 and v[0] @ v[2] == 0  # shared words / none shared
    assert not v[3].any()  # filler only: no content, a zero row (not NaN)
    # CRC32, not Python's salted hash(): the same vector in every worker process
    again = word_vectors(["the deploy failed on the migration"])
    assert np.array_equal(again[0], v[0])
    import zlib
    assert v[0][zlib.crc32(b"deploy") % 512] > 0


def test_without_an_encoder_messages_lacking_a_vector_are_placed_by_their_words():
    """A background worker holds no encoder (embed returns None): key-point candidates
    without a stored vector are compared by their words, stored vectors as before, and a
    summary is written all the same."""
    asked = []

    def no_encoder(texts):
        asked.append(list(texts))
        return None

    texts = ["The release build fails because the database migration locks the messages table",
             "Split the database migration into smaller batches during the night",
             "Batching the migration sounds right, the messages table has forty million rows",
             "faisal bhai purana hai ye to haan bilkul",  # no stored vector (past the cache, say)
             "purana faisal bhai ka mazak tha yaar bilkul",
             "Staging restore from last night's backup is ready for the migration test"]
    stored = bag_embed(texts)
    window = [msg("alice", t) for t in texts]
    window = [WindowMessage(m.id, m.author_id, m.author, m.text, embedding=None if i in (3, 4) else stored[i],
                            space=None if i in (3, 4) else "enc") for i, m in enumerate(window)]
    s = ExtractiveSummarizer(no_encoder)
    emb, spaces = s._embeddings(window)
    assert asked == [[texts[3], texts[4]]]  # asked once, for exactly those two
    assert spaces == ["enc", "enc", "enc", WORDS_SPACE, WORDS_SPACE, "enc"]
    assert emb.shape == (6, 64 + 512)  # each space in a block of its own columns
    assert emb[3, 64:] @ emb[4, 64:] > 0.3 and not emb[3, :64].any() and not emb[0, 64:].any()
    out = s.summarize(window)
    assert out.key_points and not out.small_talk and out.message_count == 6


def test_quotes_ending_a_sentence_in_any_script_get_no_extra_full_stop():
    for done in ("yuki: 京都の紅葉はとてもきれいですよ。", "yuki: 行く予定です！", "omar: هل شاهدتم المباراة؟",
                 "ravi: मैं कल आऊँगा।", "eleni: Τι ώρα είναι;", "bob: really?", "ann: wait…"):
        assert as_sentence(done) == done
    assert as_sentence("alice: the build fails") == "alice: the build fails."
    window = [msg("yuki", "京都の紅葉はとてもきれいですよ。本当に最高の季節です。"),
              msg("yuki", "来週また京都の紅葉を見に行く予定です。楽しみにしています。")]
    out = ExtractiveSummarizer(bag_embed).summarize(window)
    assert out.key_points and "。." not in out.summary


def _tiny_seq2seq(path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    words = "summarize : the release build fails on database migration step alice bob carol".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2} | {w: i + 3 for i, w in enumerate(dict.fromkeys(words))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(path)
    cfg = T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1,
                   num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    import torch

    torch.manual_seed(0)
    T5ForConditionalGeneration(cfg).save_pretrained(path)


def test_seq2seq_summarizer_loads_tiny_random_checkpoint(tmp_path):
    _tiny_seq2seq(tmp_path / "t5")
    summ = build_summarizer(str(tmp_path / "t5"), bag_embed)
    assert isinstance(summ, Seq2SeqSummarizer)
    window = [
        msg("alice", "The release build fails on the database migration step again"),
        msg("carol", "The database migration step locks the messages table for minutes"),
    ]
    s = summ.load().summarize(window)
    assert s.model.startswith("seq2seq:")
    assert isinstance(s.summary, str) and s.summary
    assert s.key_point_message_ids  # key points stay extractive, linked to messages


def test_seq2seq_requires_load(tmp_path):
    summ = Seq2SeqSummarizer(str(tmp_path), bag_embed)
    with pytest.raises(RuntimeError):
        summ.summarize([msg("a", "The release build fails on the database migration"),
                        msg("b", "The database migration step locks the messages table")])


def test_seq2seq_reads_the_key_points_and_the_newest_messages_of_a_long_window(tmp_path):
    """A window longer than the model's input: the key points (spread over the window) and
    the newest messages are what it reads, in order — not the first minutes only."""
    _tiny_seq2seq(tmp_path / "t5")
    summ = Seq2SeqSummarizer(str(tmp_path / "t5"), bag_embed).load()
    window = [msg("alice", f"the release build fails {i}") for i in range(400)]
    key = {window[10].id, window[200].id}
    lines = summ.transcript(window, key).split("\n")
    assert lines[0] == quote(window[10]) and quote(window[200]) in lines and lines[-1] == quote(window[-1])
    assert quote(window[0]) not in lines and len(lines) < 400
    n = len(summ._tokenizer("\n".join(lines))["input_ids"])
    assert n <= Seq2SeqSummarizer.TRANSCRIPT_TOKENS + 1
