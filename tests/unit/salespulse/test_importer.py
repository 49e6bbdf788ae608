"""``salespulse import``: the mapping, row conversion, rejections, the report and publishing.

The real sample (``../shared/data/crm-sales-opportunities``, or
``$SALESPULSE_SHARED/data/...``) is converted in full; expected numbers are
counted from it with the ``csv`` module, not with the converter.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import tomllib
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from salespulse import kafka_client
from salespulse.importer import SAMPLE_COMPANY_CONFIG, add_import_arguments, import_command
from salespulse.importer import publish as publish_module
from salespulse.importer.command import check_pipeline, managers_toml
from salespulse.importer.convert import (
    RowRejectedError,
    convert_file,
    convert_row,
    convert_rows,
    read_rows,
)
from salespulse.importer.mapping import (
    BUILTIN_MAPPINGS,
    Mapping,
    detect_builtin,
    load_builtin,
    load_mapping,
    slug,
)
from salespulse.importer.publish import Progress, PublishError, publish
from salespulse.settings import ConfigurationError, Settings, load_settings
from schemas.events import EVENT_ADAPTER, DealCreated, DealStageChanged
from streams.processor import Processor, RawMessage
from streams.store import StateStore
from tests.support.fake_producer import FakeProducer

SHARED = Path(
    os.environ.get("SALESPULSE_SHARED", Path(__file__).resolve().parents[3] / ".." / "shared")
)
SAMPLE = SHARED / "data" / "crm-sales-opportunities"
PIPELINE_CSV = SAMPLE / "sales_pipeline.csv"
TEAMS_CSV = SAMPLE / "sales_teams.csv"
HEADER = [
    "opportunity_id",
    "sales_agent",
    "product",
    "account",
    "deal_stage",
    "engage_date",
    "close_date",
    "close_value",
]


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return load_builtin("crm-sales-opportunities")


@pytest.fixture(scope="module")
def sample_rows() -> list[dict[str, str]]:
    assert PIPELINE_CSV.is_file(), f"sample not found at {SAMPLE} (set SALESPULSE_SHARED)"
    with PIPELINE_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


def row(**cells: str) -> dict[str, str]:
    base = dict.fromkeys(HEADER, "")
    base.update(opportunity_id="OPP1", sales_agent="Moses Frase", product="GTX Basic")
    base.update(cells)
    return base


def parsed(events: list[dict[str, Any]]) -> list[Any]:
    return [EVENT_ADAPTER.validate_json(json.dumps(event)) for event in events]


# -- the mapping -----------------------------------------------------------------------


def test_builtin_mapping_loads(mapping: Mapping) -> None:
    assert set(BUILTIN_MAPPINGS) == {"crm-sales-opportunities"}
    assert mapping.source == "crm-sales-opportunities"
    assert mapping.pipeline.name == "opportunities"
    assert mapping.pipeline.stages == ("prospecting", "engaging", "won")
    assert mapping.pipeline.first_stage == "engaging"
    assert mapping.stages == {
        "Prospecting": "prospecting",
        "Engaging": "engaging",
        "Won": "won",
        "Lost": "lost",
    }
    assert mapping.columns.record_id == "opportunity_id"
    assert mapping.columns.engaged == "engage_date"
    assert mapping.columns.created is None
    assert mapping.normalised("product", "GTXPro") == "GTX Pro"
    assert mapping.normalised("product", " MG Special ") == "MG Special"
    assert mapping.dates.timezone == "America/New_York"
    assert list(mapping.header) == HEADER
    assert detect_builtin(HEADER) == "crm-sales-opportunities"
    assert detect_builtin(list(reversed(HEADER))) == "crm-sales-opportunities"
    assert detect_builtin([*HEADER, "extra"]) is None


def test_a_bad_mapping_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'source = "x"\n[pipeline]\nname = "p"\nstages = ["a", "won"]\n'
        '[columns]\nrecord_id = "id"\nmanager = "m"\nstage = "s"\nengaged = "d"\n'
        '[stages]\nOpen = "a"\nDone = "finished"\n'
    )
    with pytest.raises(ConfigurationError, match=r"bad\.toml.*\n.*'finished'"):
        load_mapping(path)
    path.write_text("source = ")
    with pytest.raises(ConfigurationError, match=r"bad\.toml"):
        load_mapping(path)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_mapping(tmp_path / "absent.toml")


def test_slugs() -> None:
    assert slug("Moses Frase") == "moses-frase"
    assert slug("Mei-Mei Johns") == "mei-mei-johns"
    assert slug("  José  O'Neil ") == "jose-o-neil"
    assert slug("Анна Петрова") == "анна-петрова"
    assert slug("!!!") == ""


# -- rows -> events --------------------------------------------------------------------


def test_a_won_row_is_created_at_engage_date_and_won_at_close_date(mapping: Mapping) -> None:
    events = convert_row(
        mapping,
        row(
            opportunity_id="1C1I7A6R",
            product="GTX Plus Basic",
            account="Cancity",
            deal_stage="Won",
            engage_date="2016-10-20",
            close_date="2017-03-01",
            close_value="1054",
        ),
    )
    created, won = parsed(events)
    assert isinstance(created, DealCreated)
    assert isinstance(won, DealStageChanged)
    assert created.event_id == "import:crm-sales-opportunities:1C1I7A6R:created"
    assert won.event_id == "import:crm-sales-opportunities:1C1I7A6R:stage:won"
    assert created.manager_id == won.manager_id == "moses-frase"
    assert created.deal_id == won.deal_id == "1C1I7A6R"
    assert created.pipeline == won.pipeline == "opportunities"
    assert created.stage == "engaging"
    assert created.product == "GTX Plus Basic"
    assert created.amount is None
    assert created.source == "crm-sales-opportunities"
    # Dates only: noon in New York, with the offset of the day (EDT, then EST).
    assert events[0]["occurred_at"] == "2016-10-20T12:00:00-04:00"
    assert events[1]["occurred_at"] == "2017-03-01T12:00:00-05:00"
    assert (won.to_stage, won.from_stage, won.amount) == ("won", "engaging", 1054.0)
    assert "account" not in json.dumps(events)  # a customer never becomes a label
    assert "Cancity" not in json.dumps(events)


def test_a_lost_row_closes_lost_with_its_close_value(mapping: Mapping) -> None:
    events = convert_row(
        mapping,
        row(deal_stage="Lost", engage_date="2017-01-05", close_date="2017-02-01", close_value="0"),
    )
    created, lost = parsed(events)
    assert created.stage == "engaging"
    assert (lost.to_stage, lost.amount) == ("lost", 0.0)
    assert lost.event_id.endswith(":stage:lost")


def test_an_engaging_row_stays_open(mapping: Mapping) -> None:
    (created,) = parsed(convert_row(mapping, row(deal_stage="Engaging", engage_date="2017-11-30")))
    assert created.type == "deal.created"
    assert created.stage == "engaging"


def test_gtxpro_is_normalised_and_a_missing_account_is_fine(mapping: Mapping) -> None:
    (created,) = parsed(
        convert_row(
            mapping,
            row(product="GTXPro", account="", deal_stage="Engaging", engage_date="2017-06-01"),
        )
    )
    assert created.product == "GTX Pro"


def test_an_open_row_further_down_the_funnel_moves_there(tmp_path: Path) -> None:
    """A mapping whose deals start in the first stage: an Engaging row moves on at once."""
    builtin = BUILTIN_MAPPINGS["crm-sales-opportunities"].read_text()
    path = tmp_path / "first-stage.toml"
    path.write_text(builtin.replace('created_stage = "engaging"', ""))
    custom = load_mapping(path)
    assert custom.pipeline.first_stage == "prospecting"
    created, engaged = parsed(
        convert_row(custom, row(deal_stage="Engaging", engage_date="2017-06-01"))
    )
    assert (created.stage, engaged.to_stage) == ("prospecting", "engaging")
    assert created.occurred_at == engaged.occurred_at
    assert engaged.event_id.endswith(":stage:engaging")


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"deal_stage": "Prospecting"}, "no_date"),
        ({"deal_stage": "Negotiation", "engage_date": "2017-01-01"}, "unknown_stage"),
        ({"deal_stage": "Won", "engage_date": "2017-01-01"}, "no_close_date"),
        (
            {"deal_stage": "Won", "engage_date": "01/02/2017", "close_date": "2017-03-01"},
            "bad_date",
        ),
        (
            {"deal_stage": "Won", "engage_date": "2017-03-02", "close_date": "2017-03-01"},
            "closed_before_opened",
        ),
        (
            {
                "deal_stage": "Won",
                "engage_date": "2017-01-01",
                "close_date": "2017-03-01",
                "close_value": "lots",
            },
            "bad_amount",
        ),
        (
            {
                "deal_stage": "Won",
                "engage_date": "2017-01-01",
                "close_date": "2017-03-01",
                "close_value": "-5",
            },
            "bad_amount",
        ),
        ({"sales_agent": " ", "engage_date": "2017-01-01", "deal_stage": "Engaging"}, "no_manager"),
        (
            {"opportunity_id": "", "engage_date": "2017-01-01", "deal_stage": "Engaging"},
            "no_record_id",
        ),
    ],
)
def test_rows_that_cannot_become_events_say_why(
    mapping: Mapping, cells: dict[str, str], reason: str
) -> None:
    with pytest.raises(RowRejectedError) as caught:
        convert_row(mapping, row(**cells))
    assert caught.value.reason == reason
    assert caught.value.detail


def test_rejections_keep_the_row_and_never_half_import_a_deal(mapping: Mapping) -> None:
    too_long = "A" * 70  # a manager id over 64 characters breaks the contract
    spilled: dict[Any, Any] = row(opportunity_id="C")
    spilled[None] = ["spill"]  # csv.DictReader's way of saying: more cells than the header
    rows = [
        (2, row(opportunity_id="A", deal_stage="Engaging", engage_date="2017-01-02")),
        (3, row(opportunity_id="A", deal_stage="Engaging", engage_date="2017-01-03")),
        (
            4,
            row(
                opportunity_id="B",
                sales_agent=too_long,
                deal_stage="Won",
                engage_date="2017-01-02",
                close_date="2017-02-01",
            ),
        ),
        (5, spilled),
        (6, row(opportunity_id="D", deal_stage="Engaging", engage_date="2999-01-01")),
    ]
    conversion = convert_rows(mapping, HEADER, rows)
    assert conversion.rows_read == 5
    assert [e.event_id for e in conversion.events] == ["import:crm-sales-opportunities:A:created"]
    assert [(r.line, r.reason) for r in conversion.rejects] == [
        (3, "duplicate_record"),
        (4, "invalid_event"),
        (5, "malformed_row"),
        (6, "in_future"),
    ]
    assert conversion.rejects[1].row["sales_agent"] == too_long


def test_event_ids_are_stable_across_runs(mapping: Mapping) -> None:
    first = convert_file(mapping, PIPELINE_CSV)
    second = convert_file(mapping, PIPELINE_CSV)
    assert [e.value for e in first.events] == [e.value for e in second.events]
    ids = [e.event_id for e in first.events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("import:crm-sales-opportunities:") for i in ids)


def test_events_go_out_in_time_order_creation_first(mapping: Mapping) -> None:
    conversion = convert_file(mapping, PIPELINE_CSV)
    times = [e.occurred_at for e in conversion.events]
    assert times == sorted(times)
    seen_created: set[str] = set()
    for event in conversion.events:
        deal = event.event_id.split(":")[2]
        if event.type == "deal.created":
            seen_created.add(deal)
        else:
            assert deal in seen_created, event.event_id


# -- the whole sample, counted independently ------------------------------------------


def test_dry_run_report_on_the_real_sample(
    sample_rows: list[dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = sum(1 for r in sample_rows if r["engage_date"])
    won = sum(1 for r in sample_rows if r["deal_stage"] == "Won")
    lost = sum(1 for r in sample_rows if r["deal_stage"] == "Lost")
    undated = [r["opportunity_id"] for r in sample_rows if not r["engage_date"]]
    assert (len(sample_rows), created, len(undated)) == (8800, 8300, 500)

    rejects = tmp_path / "rejects.csv"
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    args = parser.parse_args(
        [
            str(PIPELINE_CSV),
            "--dry-run",
            "--rejects",
            str(rejects),
            "--config",
            str(SAMPLE_COMPANY_CONFIG),
        ]
    )
    assert import_command(args) == 0
    out = capsys.readouterr()
    assert out.err == ""  # no progress bar, no warning: the configuration fits
    report = {
        line.split()[0]: line.split()[1]
        for line in out.out.splitlines()[2:]
        if line.startswith("    ")
    }
    lines = out.out
    assert "rows read              8,800" in lines
    assert f"events converted      {created + won + lost:,}   (dry run: nothing published)" in lines
    assert f"won {won:,}, lost {lost:,}" in lines
    assert "rows rejected            500" in lines
    assert report == {
        "deal.created": f"{created:,}",
        "deal.stage_changed": f"{won + lost:,}",
        "no_date": "500",
    }
    with rejects.open(newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [r["opportunity_id"] for r in rejected] == undated
    assert {r["reason"] for r in rejected} == {"no_date"}
    assert list(rejected[0]) == [*HEADER, "reason", "detail"]
    assert all(r["deal_stage"] == "Prospecting" for r in rejected)


def test_reimporting_the_sample_changes_no_number_in_the_processor(
    mapping: Mapping, sample_rows: list[dict[str, str]]
) -> None:
    """Broker-free: the sample twice through the processor under the sample's configuration.

    The processor remembers event ids for ``dedupe_horizon_days`` (at most 366)
    of each manager's event time, and the sample spans 437 days per agent: the
    repeated creations older than that are not recognised by id but by their
    deal, which the processor still holds. They count as late, and change no
    number either. With the default horizon of 7 days, a second import would
    count every closed deal twice; the sample's configuration must keep 366.
    """
    settings = load_settings(config=str(SAMPLE_COMPANY_CONFIG))
    conversion = convert_file(mapping, PIPELINE_CSV)
    store = StateStore()
    processor = Processor(settings, store)
    offsets = iter(range(10**9))

    def run() -> dict[tuple[Any, ...], float]:
        messages = [RawMessage(0, next(offsets), e.key, e.value) for e in conversion.events]
        for start in range(0, len(messages), 2000):
            assert processor.process(settings.topic_deals, messages[start : start + 2000]) == []
            store.written(store.drain())
        cells: dict[tuple[Any, ...], float] = defaultdict(float)
        for record in store.managers_in({0}):
            for cell, value in record.counters.items():
                cells[(record.manager_id, *cell)] += value
        return cells

    first, second = run(), run()
    published = len(conversion.events)

    def outcomes(cells: dict[tuple[Any, ...], float]) -> Counter[str]:
        found: Counter[str] = Counter()
        for key, value in cells.items():
            if key[1] == "events_total":
                found[key[4]] += int(value)
        return found

    numbers = {k: v for k, v in first.items() if k[1] != "events_total"}
    assert numbers == {k: v for k, v in second.items() if k[1] != "events_total"}
    assert outcomes(first) == {"processed": published}
    newest: dict[str, date] = {}
    for r in sample_rows:
        for cell in (r["engage_date"], r["close_date"]):
            if cell:
                day = date.fromisoformat(cell)
                newest[r["sales_agent"]] = max(newest.get(r["sales_agent"], day), day)
    horizon = timedelta(days=settings.dedupe_horizon_days)
    forgotten = sum(
        1
        for r in sample_rows
        if r["engage_date"]
        and date.fromisoformat(r["engage_date"]) < newest[r["sales_agent"]] - horizon
    )
    assert forgotten == 0  # the sample company remembers ids longer than the sample spans
    assert outcomes(second) - outcomes(first) == {"duplicate": published}


def test_print_managers_matches_the_company_configuration(mapping: Mapping) -> None:
    snippet = tomllib.loads(managers_toml(mapping, TEAMS_CSV))["managers"]
    with TEAMS_CSV.open(newline="") as handle:
        roster = list(csv.DictReader(handle))
    assert len(snippet) == len(roster) == 35
    assert {m["name"]: m["team"] for m in snippet.values()} == {
        r["sales_agent"]: r["regional_office"] for r in roster
    }
    assert snippet["mei-mei-johns"] == {"name": "Mei-Mei Johns", "team": "Central"}
    by_manager = tomllib.loads(managers_toml(mapping, TEAMS_CSV, "manager"))["managers"]
    assert by_manager["moses-frase"]["team"] == "Dustin Brinkmann"
    company = load_settings(config=str(SAMPLE_COMPANY_CONFIG))
    assert {k: (m.name, m.team) for k, m in company.managers.items()} == {
        k: (m["name"], m["team"]) for k, m in snippet.items()
    }
    with pytest.raises(ConfigurationError, match="lacks the columns"):
        managers_toml(mapping, TEAMS_CSV, "office")


def test_print_managers_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    assert import_command(parser.parse_args([str(TEAMS_CSV), "--print-managers"])) == 0
    assert len(tomllib.loads(capsys.readouterr().out)["managers"]) == 35


def test_the_company_configuration_accepts_the_sample(
    mapping: Mapping, sample_rows: list[dict[str, str]]
) -> None:
    company = load_settings(config=str(SAMPLE_COMPANY_CONFIG))
    assert check_pipeline(mapping, company) is None
    assert company.timezone == mapping.dates.timezone
    products = {mapping.normalised("product", r["product"]) for r in sample_rows}
    assert products == set(company.labels.products)
    agents = {mapping.manager_ids.id_of(r["sales_agent"]) for r in sample_rows}
    assert agents <= set(company.managers)


def test_a_configuration_without_the_pipeline_stops_the_import(
    tmp_path: Path, mapping: Mapping, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "not checked" in (check_pipeline(mapping, Settings()) or "")
    config = tmp_path / "company.toml"
    config.write_text('[pipelines.opportunities]\nstages = ["prospecting", "won"]\n')
    with pytest.raises(ConfigurationError, match="'engaging' is not in it"):
        check_pipeline(mapping, load_settings(config=str(config)))
    config.write_text('[pipelines.default]\nstages = ["lead", "won"]\n')
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    args = parser.parse_args(
        [str(PIPELINE_CSV), "--config", str(config), "--broker", "kafka://127.0.0.1:1"]
    )
    assert import_command(args) == 2
    assert "has no pipeline 'opportunities'" in capsys.readouterr().err


def test_an_unknown_export_needs_a_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "other.csv"
    export.write_text("id,owner\n1,anna\n")
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    assert import_command(parser.parse_args([str(export), "--dry-run"])) == 2
    assert "--mapping PATH" in capsys.readouterr().err
    assert (
        import_command(
            parser.parse_args([str(export), "--dry-run", "--builtin", "crm-sales-opportunities"])
        )
        == 2
    )
    assert "lacks the columns" in capsys.readouterr().err


def small_export(folder: Path) -> Path:
    """Three rows of the sample's shape: one open, one won, one undated Prospecting."""
    export = folder / "pipeline.csv"
    export.write_text(
        ",".join(HEADER) + "\n"
        "A1,Moses Frase,GTX Basic,Acme,Engaging,2017-03-01,,\n"
        "A2,Moses Frase,GTX Basic,Acme,Won,2017-03-01,2017-03-20,550\n"
        "A3,Darcel Schlecht,MG Special,,Prospecting,,,\n"
    )
    return export


def test_a_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = small_export(tmp_path)
    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    args = parser.parse_args([str(export), "--dry-run", "--config", str(SAMPLE_COMPANY_CONFIG)])
    assert import_command(args) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.csv"]
    assert "rows rejected" in out
    assert "dry run: no rejects file" in out
    # Asked for by name, the rejects file is written on a dry run too.
    named = tmp_path / "named.csv"
    assert (
        import_command(parser.parse_args([str(export), "--dry-run", "--rejects", str(named)])) == 0
    )
    assert named.read_text().count("no_date") == 1
    assert f"-> {named}" in capsys.readouterr().out


def test_undated_open_deals_are_created_on_the_day_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mapping: Mapping
) -> None:
    export = small_export(tmp_path)
    with export.open("a") as handle:
        handle.write("A4,Moses Frase,GTX Basic,,Won,,2017-03-20,550\n")  # closed: stays rejected
    header, rows = read_rows(export)
    conversion = convert_rows(mapping, header, rows, undated_at=date(2017, 12, 31))
    assert conversion.undated == 1
    assert [(r.line, r.reason) for r in conversion.rejects] == [(5, "no_date")]
    created = [json.loads(e.value) for e in conversion.events if e.event_id.endswith("A3:created")]
    assert created == [
        {
            "event_id": "import:crm-sales-opportunities:A3:created",
            "type": "deal.created",
            "occurred_at": "2017-12-31T12:00:00-05:00",
            "manager_id": "darcel-schlecht",
            "source": "crm-sales-opportunities",
            "deal_id": "A3",
            "pipeline": "opportunities",
            "stage": "prospecting",  # where it is, not the stage dated deals are first known in
            "product": "MG Special",
        }
    ]
    assert not [
        e
        for e in conversion.events
        if e.event_id.startswith("import:crm-sales-opportunities:A3:stage")
    ]

    parser = argparse.ArgumentParser()
    add_import_arguments(parser)
    plain = parser.parse_args([str(export), "--dry-run"])
    assert import_command(plain) == 0
    assert "open ones: --undated-at DATE" in capsys.readouterr().out
    dated = parser.parse_args([str(export), "--dry-run", "--undated-at", "2017-12-31"])
    assert import_command(dated) == 0
    report = capsys.readouterr().out
    assert "open deals undated    1   (created on 2017-12-31)" in report
    assert "rows rejected         1" in report


def test_a_custom_mapping_with_times_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "crm.toml"
    path.write_text(
        'source = "acme-crm"\n'
        '[pipeline]\nname = "default"\nstages = ["lead", "offer", "won"]\n'
        '[columns]\nrecord_id = "id"\nmanager = "owner_id"\nstage = "status"\n'
        'created = "created"\nclosed = "closed"\namount = "value"\nchannel = "source"\n'
        '[stages]\nnew = "lead"\noffer = "offer"\nwon = "won"\nlost = "lost"\n'
        '[dates]\nformats = ["iso", "%d.%m.%Y %H:%M"]\ntimezone = "Europe/Berlin"\n'
        '[manager_ids]\nstyle = "verbatim"\n'
    )
    custom = load_mapping(path)
    export = tmp_path / "export.csv"
    export.write_text(
        "id,owner_id,status,created,closed,value,source\n"
        "7,m-017,offer,01.03.2026 09:30,,1200,web\n"
        "8,m-017,won,2026-03-01T08:00:00+00:00,2026-03-04,900,\n"
    )
    header, rows = read_rows(export)
    conversion = convert_rows(custom, header, rows)
    assert conversion.rejects == []
    events = [json.loads(e.value) for e in conversion.events]
    assert [(e["event_id"], e["occurred_at"]) for e in events] == [
        ("import:acme-crm:8:created", "2026-03-01T08:00:00+00:00"),
        ("import:acme-crm:7:created", "2026-03-01T09:30:00+01:00"),
        ("import:acme-crm:7:stage:offer", "2026-03-01T09:30:00+01:00"),
        ("import:acme-crm:8:stage:won", "2026-03-04T12:00:00+01:00"),
    ]
    assert events[1]["stage"] == "lead"
    assert events[1]["amount"] == 1200.0  # an open deal's value goes with its creation
    assert events[1]["channel"] == "web"
    assert "amount" not in events[0]
    assert events[3]["amount"] == 900.0
    assert {e["manager_id"] for e in events} == {"m-017"}


# -- publishing ------------------------------------------------------------------------


async def test_publish_sends_keyed_in_order_with_acks_all(
    mapping: Mapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensured: list[Settings] = []

    async def ensure(settings: Settings) -> None:
        ensured.append(settings)

    FakeProducer.instances = []
    monkeypatch.setattr(kafka_client, "AIOKafkaProducer", FakeProducer)
    monkeypatch.setattr(publish_module, "ensure_topics", ensure)
    conversion = convert_file(mapping, PIPELINE_CSV)
    events = conversion.events[:5000]
    stream = io.StringIO()
    settings = Settings(broker="kafka://h1:9092;h2:9092", topic_deals="crm.deals.test")
    sent = await publish(settings, events, Progress(len(events), stream, tty=True))
    assert sent == 5000
    assert ensured
    assert ensured[0].broker == settings.broker
    (producer,) = FakeProducer.instances
    assert producer.config["acks"] == "all"
    assert producer.config["bootstrap_servers"] == ["h1:9092", "h2:9092"]
    assert producer.stopped
    assert [(t, k, v) for t, k, v in producer.sent] == [
        ("crm.deals.test", e.manager_id.encode(), e.value) for e in events
    ]
    for _, key, value in producer.sent[:50]:
        assert json.loads(value)["manager_id"].encode() == key
    shown = stream.getvalue()
    assert shown.startswith("\r[")
    assert shown.endswith("\n")
    assert "5,000/5,000 events" in shown
    assert "done in" in shown


async def test_publish_needs_a_broker() -> None:
    with pytest.raises(ConfigurationError, match="needs a broker"):
        await publish(Settings(), [])


async def test_a_refusing_broker_is_reported_with_what_got_through(
    mapping: Mapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiokafka.errors import KafkaError

    class Refusing(FakeProducer):
        async def send(self, topic: str, *, value: bytes, key: bytes) -> asyncio.Future[None]:
            if len(self.sent) >= publish_module.WINDOW + 10:
                raise KafkaError("gone")
            return await super().send(topic, value=value, key=key)

    async def ensure(settings: Settings) -> None:
        return None

    monkeypatch.setattr(kafka_client, "AIOKafkaProducer", Refusing)
    monkeypatch.setattr(publish_module, "ensure_topics", ensure)
    events = convert_file(mapping, PIPELINE_CSV).events
    with pytest.raises(PublishError, match="after 2,010 acknowledged events") as caught:
        await publish(Settings(broker="kafka://h:1"), events)
    assert "importing again is safe" in str(caught.value)
    assert caught.value.published == publish_module.WINDOW + 10  # what it sent before the refusal


async def test_an_event_the_broker_never_acknowledges_fails_the_import(
    mapping: Mapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    """send() took it, but its delivery failed later: the import must not report success."""
    from aiokafka.errors import KafkaTimeoutError

    class Unacknowledged(FakeProducer):
        async def send(self, topic: str, *, value: bytes, key: bytes) -> asyncio.Future[None]:
            future = await super().send(topic, value=value, key=key)
            if len(self.sent) == publish_module.WINDOW + 5:
                future = asyncio.get_running_loop().create_future()
                future.set_exception(KafkaTimeoutError())
            return future

    async def ensure(settings: Settings) -> None:
        return None

    monkeypatch.setattr(kafka_client, "AIOKafkaProducer", Unacknowledged)
    monkeypatch.setattr(publish_module, "ensure_topics", ensure)
    events = convert_file(mapping, PIPELINE_CSV).events
    with pytest.raises(PublishError, match="after 3,999 acknowledged") as caught:
        await publish(Settings(broker="kafka://h:1"), events)
    assert caught.value.published == 2 * publish_module.WINDOW - 1  # all the rest got through


def test_progress_line() -> None:
    clock = iter([0.0, 10.0, 12.0, 20.0]).__next__
    stream = io.StringIO()
    progress = Progress(1000, stream, tty=False, every_seconds=5, clock=clock)
    progress.update(250)  # at 10 s: 25/s, 30 s to go
    progress.update(300)  # at 12 s: too soon for another line
    progress.update(1000)  # all done: the last line is finish()'s
    progress.finish()  # at 20 s
    first, last = stream.getvalue().splitlines()
    assert "25.0%" in first
    assert "250/1,000 events" in first
    assert "25/s" in first
    assert "ETA 30s" in first
    assert "100.0%" in last
    assert "1,000/1,000 events" in last
    assert "done in 20s" in last
    assert "\r" not in stream.getvalue()


def test_arguments_fit_beside_the_common_ones() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    parser.add_argument("--broker")
    add_import_arguments(parser)  # no conflict with what the CLI already adds
    args = parser.parse_args(["x.csv", "--builtin", "crm-sales-opportunities", "--broker", "b"])
    assert (args.file, args.builtin, args.broker, args.dry_run) == (
        Path("x.csv"),
        "crm-sales-opportunities",
        "b",
        False,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["x.csv", "--builtin", "crm-sales-opportunities", "--mapping", "m"])
