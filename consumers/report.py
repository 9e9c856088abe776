"""The flash-sale report: one self-contained HTML file a person can open and send.

Everything comes from the warehouse as it stands: the Gold tables (read with
:func:`consumers.gold.read_gold`, so a Gold that is not one snapshot of Silver is
refused), the data-quality tally, and Silver's own columns where Gold keeps nothing
(the writer schema id of each event, the stock level each purchase left, the sale id
events carry). With ledgers, each KPI table's verdict is the reconciliation of
``flashsale kpis --verify-ledger`` (:func:`consumers.reconcile.reconcile`).

The charts are Plotly figures. plotly.js is inlined once and each figure's JSON sits
in its own ``<script type="application/json">`` next to the element it is drawn in,
so the page needs no network when it is opened, and what a chart shows can be read
back from the file (the tests do).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from consumers.errors import PipelineError
from consumers.evolve import arrow
from consumers.gold import read_gold
from consumers.quality import data_quality
from consumers.reconcile import COMPARED_TABLES, merge_ledgers, reconcile

__all__ = ["SECTIONS", "Report", "Verdict", "build_report", "render_html", "write_report"]

# Section id -> title, in the order of the page.
SECTIONS = {
    "events-per-minute": "Events per minute by type",
    "funnel": "The funnel",
    "revenue-per-category": "Revenue per category",
    "sell-outs": "Sell-outs",
    "data-quality": "Data quality",
    "schema-versions": "Schema versions over time",
    "reconciliation": "Reconciliation with the ledgers",
}
_TYPES = (("views", "view"), ("carts", "cart"), ("purchases", "purchase"))


@dataclass(frozen=True)
class Verdict:
    """One KPI table's verdict: ``agrees`` is None where no ledger determines it."""

    table: str
    agrees: bool | None
    differences: tuple[str, ...] = ()


@dataclass
class Report:
    warehouse: Path
    silver_version: int
    generated_at: datetime
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)  # section -> figure JSON
    tables: dict[str, str] = field(default_factory=dict)  # section -> HTML table(s)
    notes: dict[str, str] = field(default_factory=dict)  # section -> a sentence
    verdicts: list[Verdict] | None = None  # None: no ledger given

    @property
    def differences(self) -> int:
        return sum(len(v.differences) for v in self.verdicts or [])


def build_report(warehouse: Path, ledgers: Sequence[dict[str, Any]] = ()) -> Report:
    """The report of ``warehouse``; with ``ledgers``, the verdict of every KPI table."""
    if not warehouse.is_dir():
        raise PipelineError(f"no warehouse at {warehouse}; run: flashsale pipeline run")
    gold, version = read_gold(warehouse)
    silver = _silver(warehouse)
    report = Report(warehouse, version, datetime.now(UTC))
    _events_per_minute(report, gold, silver)
    _funnel(report, gold)
    _revenue_per_category(report, gold)
    _sell_outs(report, gold, silver, warehouse)
    _data_quality(report, gold, warehouse)
    _schema_versions(report, silver)
    if ledgers:
        report.verdicts = verdicts(reconcile(merge_ledgers(ledgers), gold), gold)
    return report


def verdicts(problems: Sequence[str], gold: dict[str, pa.Table]) -> list[Verdict]:
    """Each Gold table's verdict from the reconciliation's differences (each names its
    table first: ``"table: ..."``)."""
    by_table: dict[str, list[str]] = {}
    for problem in problems:
        by_table.setdefault(problem.split(":", 1)[0], []).append(problem)
    return [
        Verdict(name, not by_table.get(name), tuple(by_table.get(name, ())))
        if name in COMPARED_TABLES
        else Verdict(name, None)
        for name in sorted(gold)
    ]


def write_report(warehouse: Path, out: Path, ledgers: Sequence[dict[str, Any]] = ()) -> Report:
    """Build the report and write it to ``out`` as one HTML file."""
    report = build_report(warehouse, ledgers)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report), encoding="utf-8")
    return report


# --------------------------------------------------------------------------- reading


def _silver(warehouse: Path) -> pa.Table:
    path = warehouse / "silver" / "events"
    if not DeltaTable.is_deltatable(str(path)):
        raise PipelineError(f"no Silver table in {warehouse}; run: flashsale pipeline run")
    columns = ["event_time", "event_type", "product_id", "writer_schema_id", "sale_id"]
    columns.append("stock_remaining")
    return arrow(DeltaTable(str(path)), columns)


def _stock(warehouse: Path) -> dict[str, int | None]:
    """Product id -> its stock when the sale opens, as the shop's catalog says."""
    path = warehouse / "silver" / "products"
    if not DeltaTable.is_deltatable(str(path)):
        return {}
    rows = arrow(DeltaTable(str(path)), ["product_id", "stock"]).to_pylist()
    return {r["product_id"]: r["stock"] for r in rows}


def _when(value: datetime | None) -> str | None:
    """A UTC moment as plotly.js reads it (it ignores offsets: the axes say UTC)."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _number(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _figure(title: str, traces: list[dict[str, Any]], **layout: Any) -> dict[str, Any]:
    base = {
        "title": {"text": title},
        "margin": {"t": 50, "r": 20, "b": 50, "l": 60},
        "height": 380,
        "legend": {"orientation": "h", "y": -0.2},
    }
    return {"data": traces, "layout": {**base, **layout}}


# A bar of a minute spans that minute (x is the minute's start).
_MINUTE_BAR = {"xperiod": 60_000, "xperiodalignment": "middle"}


def _time_axis() -> dict[str, Any]:
    return {"type": "date", "title": {"text": "event time (UTC)"}}


# --------------------------------------------------------------------------- sections


def sale_windows(silver: pa.Table) -> list[tuple[str, datetime, datetime]]:
    """Each sale's first and last event carrying its id (schema v2 and later)."""
    with_sale = silver.filter(pc.is_valid(silver["sale_id"]))
    if with_sale.num_rows == 0:
        return []
    grouped = with_sale.group_by("sale_id").aggregate(
        [("event_time", "min"), ("event_time", "max")]
    )
    return sorted(
        (r["sale_id"], r["event_time_min"], r["event_time_max"]) for r in grouped.to_pylist()
    )


def _events_per_minute(report: Report, gold: dict[str, pa.Table], silver: pa.Table) -> None:
    rows = gold["revenue_per_minute"].to_pylist()
    minutes = [_when(r["minute"]) for r in rows]
    traces = [
        {"type": "bar", "name": kind, "x": minutes, "y": [r[column] for r in rows], **_MINUTE_BAR}
        for column, kind in _TYPES
    ]
    shapes, notes = [], []
    for sale, start, end in sale_windows(silver):
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": _when(start),
                "x1": _when(end),
                "y0": 0,
                "y1": 1,
                "fillcolor": "rgba(255, 160, 0, 0.15)",
                "line": {"width": 0},
                "layer": "below",
            }
        )
        notes.append(f"{sale}: {_when(start)} to {_when(end)} UTC")
    spikes = [str(_when(r["minute"])) for r in gold["spikes"].to_pylist() if r["is_spike"]]
    report.figures["events-per-minute"] = _figure(
        "Events per minute by type",
        traces,
        barmode="stack",
        xaxis=_time_axis(),
        yaxis={"title": {"text": "events"}},
        shapes=shapes,
        meta={"sale_windows": [[s, _when(a), _when(b)] for s, a, b in sale_windows(silver)]},
    )
    window = (
        "The shaded band is the sale window: from the first to the last event carrying "
        "its sale id (" + "; ".join(notes) + "). Events written with schema v1 carry no "
        "sale id, so a window whose start was written with v1 starts at the switch."
        if notes
        else "No event carries a sale id (schema v1 only): no sale window to mark."
    )
    surge = f" Spike minutes (z-score >= 3): {', '.join(spikes)}." if spikes else ""
    report.notes["events-per-minute"] = window + surge


def _funnel(report: Report, gold: dict[str, pa.Table]) -> None:
    rows = gold["funnel_per_category"].to_pylist()
    totals = [sum(r[column] for r in rows) for column, _ in _TYPES]
    report.figures["funnel"] = _figure(
        "View -> cart -> purchase",
        [
            {
                "type": "funnel",
                "y": [kind for _, kind in _TYPES],
                "x": totals,
                "textinfo": "value+percent initial",
            }
        ],
    )
    sessions = gold["session_funnel"].to_pylist()
    if sessions and sessions[0]["sessions"]:
        s = sessions[0]
        report.notes["funnel"] = (
            f"{s['sessions']} sessions (schema v2 and later): {s['sessions_with_cart']} "
            f"reached a cart, {s['sessions_with_purchase']} a purchase."
        )


def _revenue_per_category(report: Report, gold: dict[str, pa.Table]) -> None:
    rows = gold["funnel_per_category"].to_pylist()
    report.figures["revenue-per-category"] = _figure(
        "Revenue per category",
        [
            {
                "type": "bar",
                "name": "revenue",
                "x": [r["category"] for r in rows],
                "y": [_number(r["revenue"]) for r in rows],
                "text": [str(r["revenue"]) for r in rows],
                "textposition": "auto",
            }
        ],
        yaxis={"title": {"text": "revenue"}},
    )
    report.tables["revenue-per-category"] = _table(
        ["category", "events", "views", "carts", "purchases", "units", "revenue"],
        [
            [r[c] for c in ("category", "events", "views", "carts", "purchases", "units")]
            + [str(r["revenue"])]
            for r in rows
        ],
    )


def _sell_outs(
    report: Report, gold: dict[str, pa.Table], silver: pa.Table, warehouse: Path
) -> None:
    """Each sold-out product: its stock level after each purchase, down to zero."""
    sold = gold["sold_out"].to_pylist()
    started = {r["product_id"]: r["sale_started_at"] for r in gold["sell_out_times"].to_pylist()}
    stock = _stock(warehouse)
    purchases = silver.filter(
        pc.and_(pc.equal(silver["event_type"], "purchase"), pc.is_valid(silver["stock_remaining"]))
    ).select(["product_id", "event_time", "stock_remaining"])
    levels: dict[str, list[tuple[datetime, int]]] = {}
    for r in purchases.to_pylist():
        levels.setdefault(r["product_id"], []).append((r["event_time"], r["stock_remaining"]))
    traces = []
    for r in sold:
        product = r["product_id"]
        points = sorted(levels.get(product, []))
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": product,
                "legendgroup": product,
                "showlegend": False,
                "line": {"shape": "hv", "width": 1},
                "x": [_when(t) for t, _ in points],
                "y": [level for _, level in points],
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "name": "sold out",
            "x": [_when(r["sold_out_at"]) for r in sold],
            "y": [0 for _ in sold],
            "customdata": [[r["product_id"], stock.get(r["product_id"])] for r in sold],
            "hovertemplate": "%{customdata[0]} sold out at %{x}<br>stock %{customdata[1]}"
            "<extra></extra>",
            "marker": {"symbol": "x", "size": 9, "color": "crimson"},
        }
    )
    report.figures["sell-outs"] = _figure(
        "Stock left after each purchase, down to each sell-out",
        traces,
        xaxis=_time_axis(),
        yaxis={"title": {"text": "units in stock"}, "rangemode": "tozero"},
    )
    report.tables["sell-outs"] = _table(
        ["product", "category", "stock at the sale's start", "sold out at (UTC)", "seconds in"],
        [
            [
                r["product_id"],
                r["category"],
                stock.get(r["product_id"]),
                _when(r["sold_out_at"]),
                _seconds(started.get(r["product_id"]), r["sold_out_at"]),
            ]
            for r in sold
        ],
    )
    tracking = gold["stock_tracking"].to_pylist()
    since = tracking[0]["tracked_since"] if tracking else None
    report.notes["sell-outs"] = (
        f"{len(sold)} products sold out. Stock levels are carried from schema v3 on "
        f"(since {_when(since)} UTC here)."
        if since is not None
        else "No event carries a stock level (schema v3 and later do): no sell-out is known."
    )


def _seconds(start: datetime | None, end: datetime) -> str:
    return "" if start is None else f"{(end - start).total_seconds():.1f}"


def _data_quality(report: Report, gold: dict[str, pa.Table], warehouse: Path) -> None:
    tally = data_quality(warehouse)
    rows = gold["quality_per_minute"].to_pylist()
    minutes = [_when(r["minute"]) for r in rows]
    traces: list[dict[str, Any]] = [
        {"type": "bar", "name": column, "x": minutes, "y": [r[column] for r in rows], **_MINUTE_BAR}
        for column in ("duplicates", "conflicts", "quarantined")
    ]
    traces += [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": f"lateness {label} (s)",
            "yaxis": "y2",
            "x": minutes,
            "y": [r[column] for r in rows],
        }
        for column, label in (("lateness_p50_s", "p50"), ("lateness_p99_s", "p99"))
    ]
    report.figures["data-quality"] = _figure(
        "Dropped and quarantined records, and lateness, per minute of arrival",
        traces,
        barmode="stack",
        xaxis={"type": "date", "title": {"text": "Kafka timestamp (UTC)"}},
        yaxis={"title": {"text": "records"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "seconds late"}, "overlaying": "y", "side": "right"},
        margin={"t": 50, "r": 80, "b": 50, "l": 60},
    )
    reasons = sorted(tally.quarantined.items())
    report.tables["data-quality"] = _table(
        ["records in Bronze", "events in Silver", "duplicates dropped", "quarantined"],
        [[tally.records, tally.events, tally.duplicates, sum(tally.quarantined.values())]],
    ) + _table(["quarantine reason", "records"], [[r, n] for r, n in reasons] or [["none", 0]])
    report.notes["data-quality"] = (
        "Lateness is the Kafka record timestamp minus the event time, over the events in "
        "Silver (nearest-rank percentiles of each minute of arrival)."
    )


def _schema_versions(report: Report, silver: pa.Table) -> None:
    """Events per minute of event time by the writer schema id that wrote them."""
    minute = pc.floor_temporal(silver["event_time"], unit="minute")
    counts = Counter(zip(silver["writer_schema_id"].to_pylist(), minute.to_pylist(), strict=True))
    ids = sorted({i for i, _ in counts}, key=lambda i: (i is None, i or 0))
    minutes = sorted({m for _, m in counts})
    traces = [
        {
            "type": "bar",
            "name": f"writer schema id {i}",
            "x": [_when(m) for m in minutes],
            "y": [counts.get((i, m), 0) for m in minutes],
            **_MINUTE_BAR,
        }
        for i in ids
    ]
    report.figures["schema-versions"] = _figure(
        "Events per minute by writer schema id",
        traces,
        barmode="stack",
        xaxis=_time_axis(),
        yaxis={"title": {"text": "events"}},
    )
    rows = []
    for i in ids:
        seen = [m for (j, m) in counts if j == i]
        rows.append(
            [
                i,
                sum(n for (j, _), n in counts.items() if j == i),
                _when(min(seen)),
                _when(max(seen)),
            ]
        )
    report.tables["schema-versions"] = _table(
        ["writer schema id", "events", "first minute (UTC)", "last minute (UTC)"], rows
    )


# --------------------------------------------------------------------------- HTML


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_html(report: Report) -> str:
    if report.verdicts is None:
        return "<p>No ledger given: nothing to reconcile (pass --ledger).</p>"
    rows = []
    for v in report.verdicts:
        if v.agrees is None:
            word, css = "not determined by a ledger", "na"
        elif v.agrees:
            word, css = "equals the ledgers", "ok"
        else:
            word, css = f"{len(v.differences)} differences", "bad"
        rows.append(
            f'<tr class="{css}" data-table="{html.escape(v.table)}"><td>{html.escape(v.table)}'
            f"</td><td>{html.escape(word)}</td></tr>"
        )
    differences = "".join(
        f"<li>{html.escape(d)}</li>" for v in report.verdicts for d in v.differences
    )
    overall = (
        f'<p class="bad">{report.differences} KPI differences from the ledgers.</p>'
        if report.differences
        else '<p class="ok">Every KPI table a ledger determines equals the ledgers.</p>'
    )
    listing = f'<ul class="differences">{differences}</ul>' if differences else ""
    return (
        f"{overall}<table><thead><tr><th>Gold table</th><th>verdict</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{listing}"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
section { margin-bottom: 2.5rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
td, th { border: 1px solid #ccc; padding: .2rem .6rem; text-align: right; }
th { background: #f4f4f4; }
.ok { color: #17692e; } .bad { color: #b00020; font-weight: bold; } .na { color: #777; }
.chart { min-height: 380px; }
"""

# Draws every figure from its JSON; plotly.js is inlined once above it.
_DRAW = """
document.querySelectorAll('script.figure').forEach(function (data) {
  var figure = JSON.parse(data.textContent);
  Plotly.newPlot(data.dataset.target, figure.data, figure.layout,
                 {responsive: true, displaylogo: false});
});
"""


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(value, default=str).replace("</", "<\\/")


def render_html(report: Report) -> str:
    """The page: plotly.js inlined once, then each section with its figure's JSON."""
    from plotly.offline import get_plotlyjs

    parts = []
    for section, title in SECTIONS.items():
        body = [f'<section id="{section}"><h2>{html.escape(title)}</h2>']
        if section in report.notes:
            body.append(f"<p>{html.escape(report.notes[section])}</p>")
        if section in report.figures:
            target = f"chart-{section}"
            body.append(f'<div class="chart" id="{target}"></div>')
            body.append(
                f'<script type="application/json" class="figure" data-target="{target}">'
                f"{_script_json(report.figures[section])}</script>"
            )
        if section in report.tables:
            body.append(report.tables[section])
        if section == "reconciliation":
            body.append(_verdict_html(report))
        body.append("</section>")
        parts.append("".join(body))
    title = f"flashsale report: {report.warehouse}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Gold of Silver version {report.silver_version}; written "
        f"{report.generated_at:%Y-%m-%d %H:%M:%S} UTC.</p>"
        + "\n".join(parts)
        + f"<script>{_DRAW}</script></body></html>\n"
    )
