"""``enrichment-ai analyze``: run the analyzers on texts; no database or broker needed.

Texts come from the arguments, or from ``--input FILE`` (``-`` = stdin), one per line:
lines end at ``\n`` only (a lone ``\r`` inside a line is part of its text).
A line that is a JSON object with a ``"text"`` field is read as such (its ``"id"``, if
any, is echoed first in the output); any other line is the text itself. One output per
input line, in order (empty lines give a skipped result). The output contract is in
``docs/analyze.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, TextIO

from enrichment_ai.analysis.text import safe_str
from enrichment_ai.config import Settings
from enrichment_ai.types import Analysis

HELP = "analyse texts (arguments, a file or stdin) and print one JSON object per text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``enrichment-ai analyze``."""
    parser.add_argument("texts", nargs="*", help="texts to analyse (instead of --input)")
    parser.add_argument("--input", "-i", metavar="FILE", help="one text (or JSON object with 'text') per line; '-' = stdin")
    parser.add_argument("--format", "-f", choices=("jsonl", "table"), default="jsonl")
    parser.add_argument("--batch-size", type=int, default=None, help="texts per enrich_batch call (default: encoder_batch_size)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def parse_line(line: str) -> tuple[Any, str | None]:
    """``(id or None, text)`` for one input line (JSON object with "text", else plain)."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "text" in obj:
            text = obj["text"]
            return obj.get("id"), text if isinstance(text, str) or text is None else str(text)
    return None, line


def _lines(stream: TextIO) -> Iterator[str]:
    """Lines split on ``\n`` only: the stream must not translate newlines (see _open_text).

    A lone ``\r`` (it occurs inside tweets) stays part of its line's text, so the output
    keeps one object per input line; a ``\r\n`` ending (a Windows file) is removed whole.
    """
    for line in stream:
        if line.endswith("\n"):
            line = line[:-2] if line.endswith("\r\n") else line[:-1]
        yield line


def _open_text(binary: BinaryIO) -> TextIO:
    """UTF-8 text over ``binary`` with ``newline="\n"``: no universal-newline splitting
    (``utf-8-sig``: a byte-order mark that Windows tools put first is not text)."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="\n")


def read_inputs(args: argparse.Namespace) -> Iterable[tuple[Any, str | None]]:
    """Inputs from the arguments or the ``--input`` file/stdin, lazily."""
    if args.input is None:
        return ((None, t) for t in args.texts)
    if args.input == "-":
        # sys.stdin is a universal-newline text stream; read its bytes instead (a replaced
        # stdin without .buffer, e.g. io.StringIO, already splits on "\n" only)
        buffer = getattr(sys.stdin, "buffer", None)
        stream = _open_text(buffer) if buffer is not None else sys.stdin
        return (parse_line(ln) for ln in _lines(stream))
    handle = open(args.input, encoding="utf-8-sig", errors="replace", newline="\n")  # noqa: SIM115 - closed at exhaustion
    return (parse_line(ln) for ln in _closing(handle))


def _closing(handle: TextIO) -> Iterator[str]:
    with handle:
        yield from _lines(handle)


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def to_record(analysis: Analysis, item_id: Any = None) -> dict[str, Any]:
    """The documented JSON object (``id`` first when the input had one)."""
    record = analysis.to_json()
    return {"id": item_id, **record} if item_id is not None else record


def json_line(record: dict[str, Any]) -> str:
    """One JSON line, UTF-8 as is; ASCII-escaped when the record holds a lone surrogate
    (an input ``id`` such as ``"m\\ud800"``: JSON allows it, UTF-8 cannot encode it), so
    the value comes back exactly and the run goes on."""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(record, ensure_ascii=True)
    return line + "\n"


def _fmt(x: float | None, spec: str = "+.2f") -> str:
    return "-" if x is None else format(x, spec)


def table_row(n: int, text: str | None, a: Analysis) -> str:
    """One human-readable line."""
    shown = safe_str(text or "").replace("\n", " ").replace("\r", " ")
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    ents = ", ".join(f"{e.text}/{e.label}" for e in a.entities)
    extra = f"  [{a.reason}]" if a.reason else ""
    return (
        f"{n:>4} {a.language:>3} {a.language_confidence:4.2f} {_fmt(a.sentiment):>5} "
        f"{(a.sentiment_label or '-'):<8} {_fmt(a.toxicity, '.2f'):>4}  {shown:<40}  "
        f"{','.join(a.topics) or '-'}  {ents or '-'}{extra}"
    )


TABLE_HEADER = f"{'#':>4} {'lng':>3} conf  sent {'label':<8}  tox  {'text':<40}  topics  entities"


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Load the Enricher once, stream the inputs through it in batches."""
    from enrichment_ai.pipeline import Enricher

    if args.input is None and not args.texts:
        print("enrichment-ai analyze: give texts or --input FILE (- for stdin)", file=sys.stderr)
        return 2
    try:
        enricher = Enricher(settings).load()
    except Exception as exc:  # a missing model is a user-facing error, not a traceback
        print(f"enrichment-ai analyze: could not load models: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        if args.format == "table":
            print(TABLE_HEADER, file=out)
        n = 0
        for chunk in _chunks(read_inputs(args), args.batch_size or settings.encoder_batch_size):
            results = enricher.enrich_batch([text for _, text in chunk])
            for (item_id, text), analysis in zip(chunk, results):
                n += 1
                if args.format == "jsonl":
                    out.write(json_line(to_record(analysis, item_id)))
                else:
                    print(table_row(n, text, analysis), file=out)
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
