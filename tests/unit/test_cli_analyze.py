"""enrichment-ai analyze: input forms, one output line per input, in order."""

from __future__ import annotations

import json

from enrichment_ai.cli import main
from enrichment_ai.cli.analyze import parse_line


def test_parse_line():
    assert parse_line('{"id": 7, "text": "hello there"}') == (7, "hello there")
    assert parse_line('{"text": null}') == (None, None)
    assert parse_line('{"not_text": 1}') == (None, '{"not_text": 1}')
    assert parse_line("{broken json") == (None, "{broken json")
    assert parse_line("plain text") == (None, "plain text")


def test_file_to_jsonl(tmp_path, capsys):
    src = tmp_path / "in.txt"
    lines = [
        "Alice Smith moved from Paris to work at Google.",
        "",
        '{"id": "m-2", "text": "今日はとても良い天気なので、公園に散歩に行きました。"}',
        "😂",
        "you are a complete idiot and everyone hates you",
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["analyze", "--input", str(src), "--format", "jsonl", "--batch-size", "2", "-o", str(out)]) == 0
    rows = [json.loads(ln) for ln in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(lines)
    keys = ["language", "language_confidence", "sentiment", "sentiment_label", "toxicity", "scores",
            "topics", "entities", "model_version", "skipped", "reason", "details"]  # fmt: skip
    assert list(rows[0]) == keys and list(rows[2]) == ["id", *keys]
    assert rows[0]["language"] == "en" and {"text": "Paris", "label": "GPE", "start": 23, "end": 28} in rows[0]["entities"]
    assert rows[1]["skipped"] and rows[1]["reason"] == "empty"
    assert rows[2]["id"] == "m-2" and rows[2]["language"] == "ja"  # scored by the multilingual default, marked:
    assert rows[2]["toxicity"] is not None and rows[2]["details"]["coverage"]["toxicity"] == "transferred"
    assert rows[3]["language"] == "und" and rows[3]["sentiment"] is None
    assert rows[4]["toxicity"] > rows[0]["toxicity"]


def test_arguments_and_table(capsys):
    assert main(["analyze", "--format", "table", "The match in Madrid was fantastic!", "hmm"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and " en " in out[1] and " und " in out[2]


def test_no_input_is_usage_error(capsys):
    assert main(["analyze"]) == 2


def test_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": 1, "text": "Good morning everyone, have a nice day!"}\n\n'))
    assert main(["analyze", "--input", "-"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r.get("id") for r in rows] == [1, None]
    assert rows[0]["language"] == "en" and rows[1]["skipped"]


def _inputs(path_or_dash: str) -> list:
    import argparse

    from enrichment_ai.cli.analyze import read_inputs

    return list(read_inputs(argparse.Namespace(input=path_or_dash, texts=[])))


CR_LINES = b'first\rhalf and second half\n{"id": 2, "text": "json\\rtext"}\nwindows line\r\n\rlead\n\nlast no newline\r'
CR_EXPECTED = [(None, "first\rhalf and second half"), (2, "json\rtext"), (None, "windows line"),
               (None, "\rlead"), (None, ""), (None, "last no newline\r")]  # fmt: skip


def test_lone_carriage_return_does_not_split_a_file_line(tmp_path):
    src = tmp_path / "cr.txt"
    src.write_bytes(CR_LINES)
    assert _inputs(str(src)) == CR_EXPECTED


def test_lone_carriage_return_does_not_split_a_stdin_line(monkeypatch):
    import io

    # a real stdin is a universal-newline TextIOWrapper over a byte buffer
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(CR_LINES), encoding="utf-8"))
    assert _inputs("-") == CR_EXPECTED


def test_one_output_row_per_newline_terminated_line(tmp_path):
    src = tmp_path / "cr.txt"
    src.write_bytes(b"I love this\rso much\nJe suis\rcontent\n\r\nok\n")
    out = tmp_path / "out.jsonl"
    assert main(["analyze", "--input", str(src), "-o", str(out)]) == 0
    rows = [json.loads(ln) for ln in out.read_text(encoding="utf-8").split("\n") if ln]
    assert len(rows) == 4
    assert rows[0]["language"] == "en" and rows[2]["skipped"] and not rows[3]["skipped"]


def test_a_byte_order_mark_does_not_turn_the_first_json_line_into_text(tmp_path, monkeypatch):
    import io

    src = tmp_path / "bom.jsonl"
    src.write_bytes('\ufeff{"id": "m1", "text": "Barack Obama visited Paris."}\nplain\n'.encode())
    assert _inputs(str(src)) == [("m1", "Barack Obama visited Paris."), (None, "plain")]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(src.read_bytes()), encoding="utf-8"))
    assert _inputs("-") == [("m1", "Barack Obama visited Paris."), (None, "plain")]


def test_a_lone_surrogate_in_an_id_or_text_is_written_not_fatal():
    """JSON allows "\\ud800" (a JS string cut inside an emoji); UTF-8 cannot encode it: the
    jsonl line escapes it (the id comes back exactly), the table shows U+FFFD."""
    from enrichment_ai.cli.analyze import json_line, table_row
    from enrichment_ai.types import Analysis

    line = json_line({"id": "m4\ud800", "language": "en"})
    line.encode("utf-8")
    assert json.loads(line)["id"] == "m4\ud800"
    assert json_line({"id": "ü"}) == '{"id": "ü"}\n'  # UTF-8 as is otherwise
    row = table_row(1, "nice game \ud83d everyone", Analysis("en", 0.9))
    row.encode("utf-8")
    assert "nice game \ufffd everyone" in row
