"""Community health report: one PNG dashboard and one self-contained HTML page per
server, from ``community_health`` and ``reputation_scores`` (docs/metrics.md).

:func:`build_report` reads the data, :func:`render_png` draws it (matplotlib, Agg),
:func:`render_html` wraps the image and the tables. No global matplotlib state is
changed: figures are created and closed explicitly.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import psycopg

from enrichment_ai.db import report_sql

GOOD, FAIR = 0.7, 0.5  # health bands drawn on the chart
COLORS = {"health": "#2563eb", "messages": "#94a3b8", "users": "#0f766e", "positive": "#16a34a",
          "engagement": "#9333ea", "toxic": "#dc2626", "moderation": "#f59e0b", "rep": "#2563eb"}


@dataclass
class Day:
    date: date
    active_users: int
    message_count: int
    positive_ratio: float | None
    toxicity_incidents: int
    moderation_actions: int
    engagement: float | None
    health: float | None


@dataclass
class Contributor:
    name: str
    score: int
    helpful: int
    quality: int
    active_days: int
    moderation: int


@dataclass
class Report:
    server_id: UUID
    server_name: str
    first: date
    last: date
    days: list[Day]
    top: list[Contributor]


def _f(x) -> float | None:
    return None if x is None else float(x)


def build_report(conn: psycopg.Connection, server_id: UUID, days: int = 30, *, last: date | None = None) -> Report:
    """The last ``days`` UTC days up to ``last`` (default: the latest rolled-up day)."""
    name = report_sql.server_name(conn, server_id)
    if name is None:
        raise LookupError(f"no server {server_id}")
    last = last or report_sql.latest_day(conn, server_id)
    if last is None:
        raise LookupError(f"server {server_id} has no community_health rows: run `enrichment-ai rollup` first")
    first = last - timedelta(days=days - 1)
    rows = report_sql.daily(conn, server_id, first, last)
    ds = [Day(r[0], r[1], r[2], _f(r[3]), r[4], r[5], _f(r[6]), _f(r[7])) for r in rows]
    top = [Contributor(*r[:6]) for r in report_sql.top_contributors(conn, server_id)]
    return Report(server_id, name, first, last, ds, top)


def _kpis(rep: Report) -> list[tuple[str, str]]:
    scored = [d.health for d in rep.days if d.health is not None]
    msgs = sum(d.message_count for d in rep.days)
    return [
        ("Average health", f"{sum(scored) / len(scored):.2f}" if scored else "–"),
        ("Messages", f"{msgs:,}"),
        ("Peak daily active", f"{max((d.active_users for d in rep.days), default=0):,}"),
        ("Toxicity incidents", f"{sum(d.toxicity_incidents for d in rep.days):,}"),
        ("Moderation actions", f"{sum(d.moderation_actions for d in rep.days):,}"),
    ]


def render_png(rep: Report, path: Path) -> Path:
    """Draw the dashboard to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    x = [d.date for d in rep.days]
    fig = plt.figure(figsize=(15, 12), dpi=110, layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=[1, 1, 1.05])
    fig.suptitle(f"{rep.server_name} — community health, {rep.first:%d %b} – {rep.last:%d %b %Y} (UTC days)",
                 fontsize=17, fontweight="bold")
    fig.text(0.5, 0.955, "   ·   ".join(f"{k}: {v}" for k, v in _kpis(rep)), ha="center", fontsize=11.5, color="#334155")
    fig.get_layout_engine().set(rect=(0, 0, 1, 0.945))

    def dates(ax):
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=8))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)

    ax = fig.add_subplot(grid[0, 0])
    ax.axhspan(GOOD, 1, color="#dcfce7", alpha=0.6, lw=0, label="good (≥ 0.7)")
    ax.axhspan(FAIR, GOOD, color="#fef9c3", alpha=0.6, lw=0, label="fair (0.5–0.7)")
    ax.axhspan(0, FAIR, color="#fee2e2", alpha=0.6, lw=0, label="poor (< 0.5)")
    ax.plot(x, [d.health for d in rep.days], marker="o", ms=3.5, color=COLORS["health"], lw=2, label="health score")
    ax.set_ylim(0, 1)
    ax.set_title("Health score (0–1)", loc="left", fontweight="bold")
    ax.set_ylabel("score")
    ax.legend(loc="lower left", fontsize=8.5, ncol=4, frameon=False)
    dates(ax)

    ax = fig.add_subplot(grid[0, 1])
    ax.bar(x, [d.message_count for d in rep.days], color=COLORS["messages"], label="messages / day")
    ax.set_ylabel("messages per day")
    ax2 = ax.twinx()
    ax2.plot(x, [d.active_users for d in rep.days], color=COLORS["users"], lw=2, marker="o", ms=3.5, label="active users")
    ax2.set_ylabel("active users (wrote ≥ 1 message)", color=COLORS["users"])
    ax.set_ylim(0, 1.3 * max([d.message_count for d in rep.days] + [1]))
    ax2.set_ylim(0, 1.3 * max([d.active_users for d in rep.days] + [1]))
    ax.set_title("Activity", loc="left", fontweight="bold")
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(lines, ["messages / day", "active users"], loc="upper left", ncol=2, fontsize=8.5, frameon=False)
    dates(ax)
    ax2.spines[["top"]].set_visible(False)

    ax = fig.add_subplot(grid[1, 0])
    ax.plot(x, [None if d.positive_ratio is None else 100 * d.positive_ratio for d in rep.days],
            color=COLORS["positive"], lw=2, marker="o", ms=3.5, label="positive messages (sentiment ≥ 0.25)")
    ax.plot(x, [d.engagement for d in rep.days], color=COLORS["engagement"], lw=2, ls="--",
            label="messages that got a reply or reaction")
    ax.set_ylim(0, 100)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:.0f} %")
    ax.set_ylabel("share of the day's messages")
    ax.set_title("Sentiment and engagement", loc="left", fontweight="bold")
    ax.legend(loc="lower left", fontsize=8.5, frameon=False)
    dates(ax)

    ax = fig.add_subplot(grid[1, 1])
    width = 0.4
    xs = mdates.date2num(x)
    ax.bar(xs - width / 2, [d.toxicity_incidents for d in rep.days], width, color=COLORS["toxic"],
           label="toxicity incidents (model score ≥ threshold)")
    ax.bar(xs + width / 2, [d.moderation_actions for d in rep.days], width, color=COLORS["moderation"],
           label="moderation actions (timeouts + mod deletions)")
    ax.set_ylim(0, 1.3 * max([d.toxicity_incidents for d in rep.days] + [d.moderation_actions for d in rep.days] + [1]))
    ax.set_ylabel("count per day")
    ax.set_title("Safety", loc="left", fontweight="bold")
    ax.legend(loc="upper left", ncol=2, fontsize=8.5, frameon=False)
    ax.xaxis_date()
    dates(ax)

    ax = fig.add_subplot(grid[2, :])
    top = rep.top[::-1]
    if top:
        names = [c.name for c in top]
        bars = ax.barh(names, [c.score for c in top], color=COLORS["rep"], alpha=0.85)
        for bar, c in zip(bars, top, strict=True):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                    f"  {c.score:,}  ({c.helpful} helpful · {c.quality} quality · {c.active_days} days active"
                    + (f" · {c.moderation} moderation" if c.moderation else "") + ")",
                    va="center", fontsize=9, color="#334155")
        ax.set_xlim(0, max(c.score for c in top) * 1.45)
    else:
        ax.text(0.5, 0.5, "no reputation yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("reputation score (90-day window, daily cap 200)")
    ax.set_title("Top contributors by reputation", loc="left", fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", alpha=0.3)

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor="white")
    plt.close(fig)
    return path


def _cell(v, fmt: str = "{}") -> str:
    return "–" if v is None else html.escape(fmt.format(v))


def render_html(rep: Report, png: Path, path: Path) -> Path:
    """A self-contained page: the PNG (embedded) plus the daily and contributor tables."""
    img = base64.b64encode(png.read_bytes()).decode()
    kpis = "".join(f"<div class=kpi><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>" for k, v in _kpis(rep))
    days = "".join(
        f"<tr><td>{d.date:%a %d %b}</td><td>{_cell(d.health, '{:.2f}')}</td><td>{d.message_count:,}</td>"
        f"<td>{d.active_users:,}</td><td>{_cell(None if d.positive_ratio is None else 100 * d.positive_ratio, '{:.0f} %')}</td>"
        f"<td>{_cell(d.engagement, '{:.1f} %')}</td><td>{d.toxicity_incidents}</td><td>{d.moderation_actions}</td></tr>"
        for d in reversed(rep.days))
    top = "".join(
        f"<tr><td>{i}</td><td>{html.escape(c.name)}</td><td>{c.score:,}</td><td>{c.helpful}</td><td>{c.quality}</td>"
        f"<td>{c.active_days}</td><td>{c.moderation}</td></tr>" for i, c in enumerate(rep.top, 1))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(rep.server_name)} — community health</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1200px;color:#0f172a;padding:0 1rem}}
h1{{margin-bottom:.2rem}} .sub{{color:#475569;margin-top:0}}
.kpis{{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}}
.kpi{{background:#f1f5f9;border-radius:.6rem;padding:.7rem 1.1rem;min-width:9rem}}
.kpi b{{display:block;font-size:1.5rem}} .kpi span{{color:#475569;font-size:.85rem}}
img{{width:100%;border:1px solid #e2e8f0;border-radius:.5rem}}
table{{border-collapse:collapse;width:100%;margin:1rem 0 2rem;font-size:.92rem}}
th,td{{padding:.35rem .6rem;border-bottom:1px solid #e2e8f0;text-align:right}}
th:first-child,td:first-child,td:nth-child(2){{text-align:left}} th{{background:#f8fafc}}
.note{{color:#475569;font-size:.88rem}}
</style></head><body>
<h1>{html.escape(rep.server_name)}</h1>
<p class=sub>Community health, {rep.first:%d %b} – {rep.last:%d %b %Y} (UTC days) · server {rep.server_id}</p>
<div class=kpis>{kpis}</div>
<img alt="community health dashboard" src="data:image/png;base64,{img}">
<h2>Daily numbers</h2>
<table><tr><th>Day</th><th>Health</th><th>Messages</th><th>Active users</th><th>Positive</th>
<th>Engagement</th><th>Toxicity incidents</th><th>Moderation actions</th></tr>{days}</table>
<h2>Top contributors</h2>
<table><tr><th>#</th><th>Member</th><th>Reputation</th><th>Helpful messages</th><th>Quality contributions</th>
<th>Days active (of 90)</th><th>Moderation actions</th></tr>{top}</table>
<p class=note>Health = 0.40 × positive share + 0.35 × safety (1 − 10 × toxic share, floored at 0) + 0.25 × share of
messages that got a reply or reaction. Reputation: 10 points per message others responded to, 2 per substantive civil
message, 5 per active day, at most 200 per day, over 90 days; −100 per timeout and −20 per message a moderator deleted.
Model scores alone never cost anyone reputation. Full definitions: docs/metrics.md.</p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def write_report(conn: psycopg.Connection, server_id: UUID, out_dir: Path, days: int = 30,
                 *, last: date | None = None) -> tuple[Path, Path]:
    """Build and write ``health-<server>.png`` and ``.html`` under ``out_dir``."""
    rep = build_report(conn, server_id, days, last=last)
    stem = f"health-{str(server_id)[:8]}-{rep.last:%Y%m%d}"
    png = render_png(rep, Path(out_dir) / f"{stem}.png")
    return png, render_html(rep, png, Path(out_dir) / f"{stem}.html")
