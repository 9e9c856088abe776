"""`flashsale report` on a real warehouse: every section, Gold's numbers in the page, the
verdict of each KPI table, and the page in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from consumers.gold import SILVER_VERSION, read_gold
from consumers.report import SECTIONS
from producer.contract.catalog import bundled_schemas_dir, load_catalog
from producer.kafka.produce import ProduceOptions, StreamProducer
from producer.registry.client import Registry
from producer.registry.workflows import register_contract
from producer.simulation.scenario_file import load_scenario
from tests.integration.browser import headless_chromium
from tests.integration.conftest import Endpoints, cli, config_for
from tests.integration.test_pipeline import resend

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# A small shop whose sale sells products out within a minute or so: a short pre-sale
# written with schema v1, the switch to the newest before the doors open, so that the
# sale window and every sell-out are in data that carries them.
SCENARIO = """
name: report-sale
start: "2026-11-27T08:58:00Z"
schema_version: 1
catalog:
  products: 20
  first_product_id: 7000
  popularity_skew: 1.1
  stock: [3, 12]
  categories:
    electronics: {weight: 2, price: [49, 999], brands: [Voltix]}
    fashion: {weight: 2, price: [15, 250], brands: [Maren, Oro]}
    toys: {weight: 1, price: [9, 150], brands: [Blokko]}
users: {population: 5000, first_user_id: 100000}
funnel:
  views_per_session: [1, 3]
  cart_rate: 0.5
  purchase_rate: 0.7
sale: {id: report-sale-1, starts_at: 60s, ends_at: 150s, discount_pct: 30}
timeline:
  - {phase: pre-sale, duration: 60s, rate: {band: [3, 6]}}
  - {phase: surge, duration: 5s, rate: {ramp: [6, 40]}}
  - {phase: peak, duration: 25s, rate: {band: [30, 40]}}
  - {phase: tail, duration: null, rate: {band: [4, 8]}}
"""


DUPLICATES = 20  # records sent twice, which Silver drops


class Warehouse:
    def __init__(self, path: Path, ledger: Path) -> None:
        self.path, self.ledger = path, ledger


@pytest.fixture(scope="module")
def built(stack: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    """One small warehouse for the module: a short produce, then pipeline run --until-idle."""
    root = tmp_path_factory.mktemp("report")
    scenario_file = root / "scenario.yaml"
    scenario_file.write_text(SCENARIO, encoding="utf-8")
    topic = f"report-{uuid.uuid4().hex[:12]}"
    ledger, warehouse = root / "ledger.json", root / "warehouse"
    config = config_for(stack)
    catalog = load_catalog(bundled_schemas_dir())
    register_contract(Registry(config), catalog, topic=topic)
    stream = StreamProducer(
        config,
        catalog,
        load_scenario(str(scenario_file)),
        5,
        ProduceOptions(
            topic=topic,
            duration=180,
            speed=None,
            create_topic=True,
            ledger_path=ledger,
            switch_at=40,
            switch_version=catalog.latest().version,
        ),
    )
    stream.preflight()
    assert stream.run().ok
    assert resend(stack, topic, DUPLICATES) == DUPLICATES
    ran = cli(stack, "pipeline", "run", "--until-idle", "--quiet", "--topic", topic,
              "--warehouse", str(warehouse))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return Warehouse(warehouse, ledger)


class Page(HTMLParser):
    """The sections, the figures' JSON and the verdict rows of a report."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.figures: dict[str, dict[str, Any]] = {}
        self.verdicts: dict[str, str] = {}
        self.differences: list[str] = []
        self.external: list[str] = []
        self._figure: str | None = None
        self._in_difference = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href"):
            if a.get(name):
                self.external.append(str(a[name]))
        if tag == "section":
            self.sections.append(str(a["id"]))
        elif tag == "script" and a.get("class") == "figure":
            self._figure = str(a["data-target"]).removeprefix("chart-")
        elif tag == "tr" and "data-table" in a:
            self.verdicts[str(a["data-table"])] = str(a["class"])
        elif tag == "li":
            self._in_difference = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self._in_difference = False

    def handle_data(self, data: str) -> None:
        if self._figure is not None:
            self.figures[self._figure] = json.loads(data)
            self._figure = None
        elif self._in_difference:
            self.differences.append(data)


def when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def traces(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in figure["data"] if "name" in t}


def test_the_report_holds_every_section_with_gold_numbers(
    stack: Endpoints, built: Warehouse, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "report.html"
    ran = cli(stack, "report", "--warehouse", str(built.path), "--ledger", str(built.ledger),
              "--out", str(out))  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"report: {out}",
        "reconciled: every KPI table a ledger determines equals the ledgers",
    ]
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections == list(SECTIONS)
    assert page.external == []  # nothing fetched when it is opened
    assert text.count("Plotly.newPlot") == 1  # the one drawing loop, plotly.js inlined once
    from plotly.offline import get_plotlyjs

    assert text.count(get_plotlyjs()[:500]) == 1
    gold, _ = read_gold(built.path)
    silver = DeltaTable(str(built.path / "silver" / "events")).to_pyarrow_table().to_pylist()

    per_minute = gold["revenue_per_minute"].to_pylist()
    shown = traces(page.figures["events-per-minute"])
    for column, kind in (("views", "view"), ("carts", "cart"), ("purchases", "purchase")):
        assert shown[kind]["x"] == [when(r["minute"]) for r in per_minute]
        assert shown[kind]["y"] == [r[column] for r in per_minute]
    sale = [r["event_time"] for r in silver if r["sale_id"] is not None]
    assert page.figures["events-per-minute"]["layout"]["meta"]["sale_windows"] == [
        ["report-sale-1", when(min(sale)), when(max(sale))]
    ]
    (band,) = page.figures["events-per-minute"]["layout"]["shapes"]
    assert (band["x0"], band["x1"]) == (when(min(sale)), when(max(sale)))

    categories = gold["funnel_per_category"].to_pylist()
    (funnel,) = page.figures["funnel"]["data"]
    assert funnel["y"] == ["view", "cart", "purchase"]
    assert funnel["x"] == [sum(r[c] for r in categories) for c in ("views", "carts", "purchases")]
    assert funnel["x"][2] > 0

    revenue = traces(page.figures["revenue-per-category"])["revenue"]
    assert revenue["x"] == [r["category"] for r in categories]
    assert revenue["text"] == [str(r["revenue"]) for r in categories]
    assert revenue["y"] == [float(r["revenue"]) for r in categories]

    sold = gold["sold_out"].to_pylist()
    assert sold  # the small shop sells out
    stock = {
        r["product_id"]: r["stock"]
        for r in DeltaTable(str(built.path / "silver" / "products")).to_pyarrow_table().to_pylist()
    }
    marks = traces(page.figures["sell-outs"])["sold out"]
    assert marks["x"] == [when(r["sold_out_at"]) for r in sold]
    assert marks["customdata"] == [[r["product_id"], stock[r["product_id"]]] for r in sold]
    for r in sold:  # each line steps down to zero at the sell-out
        line = traces(page.figures["sell-outs"])[r["product_id"]]
        assert line["y"][-1] == 0
        assert line["x"][-1] == when(r["sold_out_at"])
        assert max(line["y"]) < stock[r["product_id"]]

    quality = gold["quality_per_minute"].to_pylist()
    shown = traces(page.figures["data-quality"])
    for column in ("duplicates", "conflicts", "quarantined"):
        assert shown[column]["y"] == [r[column] for r in quality]
    assert sum(shown["duplicates"]["y"]) == DUPLICATES
    assert shown["lateness p99 (s)"]["y"] == [r["lateness_p99_s"] for r in quality]
    records = len(DeltaTable(str(built.path / "bronze" / "events")).to_pyarrow_table())
    assert f"<td>{records}</td><td>{len(silver)}</td><td>{DUPLICATES}</td>" in text

    writers = Counter(r["writer_schema_id"] for r in silver)
    shown = traces(page.figures["schema-versions"])
    assert len(writers) == 2  # v1, then the newest
    assert {name: sum(t["y"]) for name, t in shown.items()} == {
        f"writer schema id {i}": n for i, n in writers.items()
    }

    assert page.verdicts == {
        name: "ok"
        if name
        in {"revenue_per_minute", "funnel_per_minute", "funnel_per_category", "product_sales",
            "product_funnel", "sold_out", "spikes"}
        else "na"
        for name in gold
    }  # fmt: skip
    assert page.differences == []


def test_a_broken_gold_cell_is_a_difference_in_the_verdict(
    stack: Endpoints, built: Warehouse, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse"
    shutil.copytree(built.path, warehouse)
    _, version = read_gold(warehouse)
    path = warehouse / "gold" / "funnel_per_category"
    table = DeltaTable(str(path)).to_pyarrow_table()
    rows = table.to_pylist()
    category, was = rows[0]["category"], rows[0]["revenue"]
    rows[0]["revenue"] = was + 1
    write_deltalake(
        str(path),
        pa.Table.from_pylist(rows, schema=table.schema),
        mode="overwrite",
        commit_properties=CommitProperties(custom_metadata={SILVER_VERSION: str(version)}),
    )
    out = tmp_path / "report.html"
    ran = cli(stack, "report", "--warehouse", str(warehouse), "--ledger", str(built.ledger),
              "--out", str(out))  # fmt: skip
    assert ran.returncode == 1
    assert ran.stdout == f"report: {out}\n"
    assert ran.stderr == "Error: 1 KPI differences from the ledger; the report shows them\n"
    page = Page(out.read_text(encoding="utf-8"))
    assert page.verdicts["funnel_per_category"] == "bad"
    assert {v for k, v in page.verdicts.items() if k != "funnel_per_category"} == {"ok", "na"}
    assert page.differences == [
        f"funnel_per_category: {category} revenue: ledger {was}, Gold {was + 1}"
    ]


def test_the_report_renders_in_headless_chromium(
    stack: Endpoints, built: Warehouse, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    ran = cli(stack, "report", "--warehouse", str(built.path), "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    with headless_chromium() as driver:
        driver.get(out.as_uri())
        drawn = driver.execute_script(
            """
            return Array.from(document.querySelectorAll('div.chart')).map(function (div) {
              var svg = div.querySelector('svg.main-svg');
              return [div.id, svg ? svg.getBoundingClientRect().height : 0,
                      div.querySelectorAll('g.trace').length];
            });
            """
        )
        assert [d[0] for d in drawn] == [f"chart-{s}" for s in SECTIONS if s != "reconciliation"]
        for chart, height, plotted in drawn:
            assert height > 100, chart
            assert plotted > 0, chart
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 100, 8000))
        screenshot = tmp_path / "report.png"
        assert driver.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
