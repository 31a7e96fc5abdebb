"""The health report writes a real PNG and HTML page from rolled-up data."""

from __future__ import annotations

import pytest

from enrichment_ai.report import write_report
from enrichment_ai.rollups import rollup_range
from enrichment_ai.seed import seed, seeded_servers

pytestmark = pytest.mark.integration


def test_report_png_and_html(conn, tmp_path):
    res = seed(conn, 4000, servers=2, days=10)
    rollup_range(conn, res.first.date(), res.last.date())
    sid, name = seeded_servers(conn, res.tag, 2)[0]
    png, page = write_report(conn, sid, tmp_path / "reports", days=10)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    text = page.read_text()
    assert name in text and "data:image/png;base64," in text
    assert text.count("<tr>") >= 10 + 2  # daily rows + contributors + headers
    assert "Top contributors" in text


def test_report_needs_rollups(conn, factory, tmp_path):
    s = factory.server()
    with pytest.raises(LookupError, match="rollup"):
        write_report(conn, s, tmp_path)
