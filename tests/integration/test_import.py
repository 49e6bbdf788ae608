"""The real CRM sample imported into a real worker: its numbers are the CSV's numbers.

``salespulse import`` runs as a process against the embedded broker; a worker
runs with the sample's company configuration. Every agent's won and lost
deals, won value and win rate on /metrics must equal what the test computes
from ``sales_pipeline.csv`` with nothing but the ``csv`` module. Importing the
file again must change no number: its events come back as duplicates (or, for
the creations older than the processor's dedupe horizon, as late repeats of
deals it still holds).
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

from salespulse.broker import EmbeddedBroker
from salespulse.importer import SAMPLE_COMPANY_CONFIG
from salespulse.importer.convert import convert_file
from salespulse.importer.mapping import load_builtin
from tests.support.ingest import read_event_ids
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration

SHARED = Path(
    os.environ.get("SALESPULSE_SHARED", Path(__file__).resolve().parents[2] / ".." / "shared")
)
SAMPLE = SHARED / "data" / "crm-sales-opportunities"
PIPELINE_CSV = SAMPLE / "sales_pipeline.csv"
TEAMS_CSV = SAMPLE / "sales_teams.csv"
BUILTIN = "crm-sales-opportunities"
STALL_SECONDS = 3.0

# Series that are the department's numbers (not the processor's own bookkeeping).
NUMBERS = (
    "salespulse_deals_",
    "salespulse_deal_",
    "salespulse_funnel_",
    "salespulse_segment_",
    "salespulse_open_",
    "salespulse_period_",
    "salespulse_manager_info",
    "salespulse_label_overflow_total",
)


@dataclass
class Agent:
    won: int = 0
    lost: int = 0
    won_value: float = 0.0
    created: int = 0
    engaging: int = 0
    newest: date = date.min
    engaged_on: list[date] = field(default_factory=list)


def from_csv() -> dict[str, Agent]:
    """Per sales agent, straight from the export."""
    agents: dict[str, Agent] = defaultdict(Agent)
    with PIPELINE_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            agent = agents[row["sales_agent"]]
            if row["deal_stage"] == "Won":
                agent.won += 1
                agent.won_value += float(row["close_value"])
            elif row["deal_stage"] == "Lost":
                agent.lost += 1
            elif row["deal_stage"] == "Engaging":
                agent.engaging += 1
            if row["engage_date"]:
                agent.created += 1
                agent.engaged_on.append(date.fromisoformat(row["engage_date"]))
            for cell in (row["engage_date"], row["close_date"]):
                if cell:
                    agent.newest = max(agent.newest, date.fromisoformat(cell))
    return agents


@pytest.fixture
def company_config() -> Path:
    """The worker runs with the sample's company configuration (overrides conftest's)."""
    return SAMPLE_COMPANY_CONFIG


def run_import(broker: EmbeddedBroker, rejects: Path) -> int:
    """``python -m salespulse.importer`` on the sample; returns the events it published."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "salespulse.importer",
            str(PIPELINE_CSV),
            "--broker",
            broker.url,
            "--config",
            str(SAMPLE_COMPANY_CONFIG),
            "--rejects",
            str(rejects),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = result.stdout
    assert re.search(r"rows read\s+8,800\n", report), report
    assert re.search(r"no_date\s+500\s", report), report
    published = re.search(r"events published\s+([\d,]+)\n", report)
    assert published, report
    return int(published.group(1).replace(",", ""))


def settled(worker: WorkerProcess, events: int) -> Samples:
    """Scrape once the worker has an outcome for *events* messages."""

    def probe() -> Samples | None:
        samples = scrape(worker.metrics_port)
        return samples if total(samples, "salespulse_events_total") >= events else None

    samples = wait_for(probe, timeout=90, what=f"{events} events consumed")
    assert total(samples, "salespulse_events_total") == events
    return samples


def numbers(samples: Samples) -> Samples:
    return {key: value for key, value in samples.items() if key[0].startswith(NUMBERS)}


def test_import_reproduces_every_agents_numbers_and_a_second_import_changes_none(
    broker: EmbeddedBroker, worker: WorkerProcess, tmp_path: Path
) -> None:
    assert PIPELINE_CSV.is_file(), f"sample not found at {SAMPLE} (set SALESPULSE_SHARED)"
    agents = from_csv()
    config = tomllib.loads(SAMPLE_COMPANY_CONFIG.read_text())
    ids = {manager["name"]: manager_id for manager_id, manager in config["managers"].items()}
    with TEAMS_CSV.open(newline="") as handle:
        roster = {row["sales_agent"]: row["regional_office"] for row in csv.DictReader(handle)}
    assert set(ids) == set(roster)
    assert set(agents) <= set(roster)
    expected_events = sum(a.created + a.won + a.lost for a in agents.values())

    worker.start().wait_ready()
    published = run_import(broker, tmp_path / "first.rejects.csv")
    assert published == expected_events
    first = settled(worker, published)

    assert total(first, "salespulse_events_total", outcome="processed") == published
    assert total(first, "salespulse_events_total", outcome="rejected") == 0
    assert total(first, "salespulse_label_overflow_total") == 0  # GTXPro arrived as GTX Pro
    for name, team in roster.items():
        manager = ids[name]
        agent = agents.get(name, Agent())
        won = total(first, "salespulse_deals_closed_total", manager=manager, outcome="won")
        lost = total(first, "salespulse_deals_closed_total", manager=manager, outcome="lost")
        value = total(first, "salespulse_deals_won_amount_total", manager=manager)
        assert (won, lost) == (agent.won, agent.lost), name
        assert value == pytest.approx(agent.won_value, abs=1e-6), name
        if agent.won + agent.lost:
            assert won / (won + lost) == pytest.approx(agent.won / (agent.won + agent.lost)), name
        assert total(first, "salespulse_deals_created_total", manager=manager) == agent.created
        assert total(first, "salespulse_open_deals", manager=manager) == agent.engaging, name
        assert total(first, "salespulse_manager_info", manager=manager, name=name, team=team) == 1
    assert total(first, "salespulse_deals_won_amount_total") == pytest.approx(
        sum(a.won_value for a in agents.values())
    )

    again = run_import(broker, tmp_path / "second.rejects.csv")
    assert again == published
    second = settled(worker, published + again)

    assert numbers(second) == numbers(first)
    # The processor remembers ids for dedupe_horizon_days of each manager's event
    # time; the sample company's horizon is longer than the sample spans, so every
    # event of the second import is a duplicate.
    horizon = timedelta(days=config["dedupe_horizon_days"])
    forgotten = sum(
        sum(1 for day in agent.engaged_on if day < agent.newest - horizon)
        for agent in agents.values()
    )
    duplicate = total(second, "salespulse_events_total", outcome="duplicate")
    late = total(second, "salespulse_events_total", outcome="late")
    assert forgotten == 0
    assert (duplicate, late) == (again, 0)
    assert total(second, "salespulse_events_total", outcome="processed") == published
    assert total(second, "salespulse_events_total", outcome="rejected") == 0
    assert Counter(
        row["reason"] for row in csv.DictReader((tmp_path / "second.rejects.csv").open())
    ) == {"no_date": 500}


def process_state(pid: int) -> str:
    """The state letter of /proc/PID/stat: ``T`` when stopped by a signal."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def test_an_import_that_succeeds_through_a_stalled_broker_left_every_event_on_it(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The broker is stopped (SIGSTOP) mid-import for a few seconds. An import that
    reports success must then have every converted event on the broker, read back from
    offset 0 of every partition by content."""
    assert broker.process is not None
    expected = {
        event.event_id for event in convert_file(load_builtin(BUILTIN), PIPELINE_CSV).events
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    command = [
        sys.executable,
        "-m",
        "tests.support.pausing_importer",
        str(PIPELINE_CSV),
        "--broker",
        broker.url,
        "--config",
        str(SAMPLE_COMPANY_CONFIG),
        "--rejects",
        str(tmp_path / "rejects.csv"),
    ]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as importer:
        # The importer stops itself once its first window is acknowledged, so the
        # stall below lands mid-import however fast this machine publishes.
        wait_for(
            lambda: importer.poll() is not None or process_state(importer.pid) == "T",
            timeout=120,
            what="the importer to stop after its first window",
        )
        assert importer.poll() is None, "the import ended before its first window was acknowledged"
        os.kill(broker.process.pid, signal.SIGSTOP)
        try:
            os.kill(importer.pid, signal.SIGCONT)
            # The stall itself: long enough for the importer's next window of 2,000
            # events to wait on it, well short of the producer's 40 s request timeout.
            time.sleep(STALL_SECONDS)
            assert importer.poll() is None, "the import ended while the broker was stopped"
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        out, err = importer.communicate(timeout=180)
    assert importer.returncode == 0, err
    published = re.search(r"events published\s+([\d,]+)\n", out)
    assert published, out
    assert int(published.group(1).replace(",", "")) == len(expected)
    found = read_event_ids(broker.bootstrap, ("crm.deals", "crm.tasks", "crm.calls"), expected)
    assert set(found) == expected
