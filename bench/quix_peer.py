"""A peer from outside Faust: Quix Streams counting events per manager in a one-day window.

    .venv-quix/bin/python -m bench.quix_peer BOOTSTRAP EXPECTED PARTITIONS STATE_DIR RESULT TOPIC...

The throughput section (bench.throughput) runs this after its other
consumers, on the same event set, through ``interpreter`` and ``run``.
Quix Streams pins its own dependencies (confluent-kafka, pydantic, ...), so
it lives in a virtual environment of its own, ``.venv-quix`` at the
repository root, made on first use with ``python -m venv`` and
``pip install quixstreams==3.28.1`` and reused while it holds that version;
the project's environment never sees it. Without a package index the
section says why and goes on without this peer. This module therefore
imports nothing but the standard library at its top: it runs in both
interpreters.

The consumer (``consume``) is what a Quix user writes for a per-manager
count: the three CRM topics as dataframes keyed by manager_id, values
parsed as JSON, concatenated (so Quix aligns the topics by timestamp), and
a tumbling window of one day on the event's ``occurred_at`` counting
events, its state in RocksDB with a changelog topic, as Quix keeps state by
default; the window's result is taken for every event (``.current()``).
Once every event of the set has come out of the window (or been dropped as
late, which a one-day grace over a two-hour set never does), the app stops
and commits its final checkpoint: state flushed to RocksDB, changelog
produced, offsets committed. It then writes JSON to RESULT: ``events``,
``seconds`` from its first event to the end of that checkpoint,
``cpu_seconds`` the process used in that time (librdkafka's threads
included), and ``windows``, ``counted`` and ``late``: the (manager, day)
windows seen and the sum of their last counts, which must equal the events.

Two things the embedded broker (tansu) needs: it answers DescribeConfigs
with no entries, and Quix derives its changelog topic's retention from the
source topics' configuration, so each source topic's configuration is
declared here and put in place of what the broker did not report; and the
source topics must exist already (``auto_create_topics`` stays on only for
Quix's own changelog topic).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

QUIXSTREAMS = "quixstreams==3.28.1"
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-quix"
INSTALL_TIMEOUT = 900.0
DAY = timedelta(days=1)
# The source topics' retention as declared to Quix, which gives its changelog the same.
RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}


class QuixUnavailableError(RuntimeError):
    """Quix Streams' own environment could not be made (no package index, no venv)."""


# --- in Quix Streams' own environment -------------------------------------------------


def occurred_at_ms(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    """Event time for the window: the event's own ``occurred_at``, as the worker uses it."""
    return int(datetime.fromisoformat(value["occurred_at"]).timestamp() * 1000)


def consume(
    bootstrap: str,
    expected: int,
    partitions: int,
    topics: Sequence[str],
    state_dir: Path,
    result: Path,
) -> None:
    """Count *expected* events per manager and day, then write the result file."""
    from quixstreams import Application  # type: ignore[import-not-found]
    from quixstreams.models import TopicConfig  # type: ignore[import-not-found]

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{os.getpid()}",
        auto_offset_reset="earliest",
        state_dir=str(state_dir),
        loglevel="WARNING",
        # As the Faust peers and the worker run against the embedded broker.
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    declared = TopicConfig(
        num_partitions=partitions, replication_factor=1, extra_config=dict(RETENTION)
    )
    frames = []
    for name in topics:
        topic = app.topic(
            name,
            key_deserializer="str",
            value_deserializer="json",
            config=declared,
            timestamp_extractor=occurred_at_ms,
        )
        reported = topic.broker_config
        if reported.num_partitions != partitions:
            raise SystemExit(f"{name} has {reported.num_partitions} partitions, not {partitions}")
        topic.broker_config = TopicConfig(
            num_partitions=reported.num_partitions,
            replication_factor=reported.replication_factor,
            extra_config={**RETENTION, **reported.extra_config},
        )
        frames.append(app.dataframe(topic))
    events = frames[0]
    for frame in frames[1:]:
        events = events.concat(frame)

    tally = {"seen": 0, "late": 0, "first": 0.0, "cpu": 0.0}
    last_counts: dict[tuple[str, int], int] = {}

    def seen_one() -> None:
        if tally["seen"] == 0:
            tally["first"], tally["cpu"] = time.perf_counter(), time.process_time()
        tally["seen"] += 1
        if tally["seen"] == expected:
            app.stop()  # the loop ends after this event and commits the final checkpoint

    def counted(window: dict[str, Any], key: str, timestamp: int, headers: Any) -> None:
        last_counts[key, window["start"]] = window["value"]
        seen_one()

    def late(*_: Any) -> bool:
        tally["late"] += 1
        seen_one()
        return False

    windows = events.tumbling_window(DAY, grace_ms=DAY, on_late=late).count().current()
    windows.update(counted, metadata=True)
    app.run()
    seconds = time.perf_counter() - tally["first"]
    cpu = time.process_time() - tally["cpu"]
    outcome = {
        "events": tally["seen"],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "windows": len(last_counts),
        "counted": sum(last_counts.values()),
        "late": tally["late"],
    }
    scratch = result.with_suffix(".tmp")
    scratch.write_text(json.dumps(outcome))
    scratch.rename(result)


# --- in the harness -------------------------------------------------------------------


def interpreter(log: Callable[[str], None] = print) -> Path:
    """Python of Quix Streams' own environment, made on first use; raises QuixUnavailableError."""
    python = VENV / "bin" / "python"
    marker = VENV / f"{QUIXSTREAMS}.installed"
    if marker.exists() and python.exists():
        return python
    log(f"quix: making {VENV.name} with {QUIXSTREAMS} (once)")
    try:
        venv.EnvBuilder(clear=True, with_pip=True).create(VENV)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise QuixUnavailableError(f"python -m venv {VENV} failed: {exc}") from exc
    try:
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                QUIXSTREAMS,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise QuixUnavailableError(
            f"pip install {QUIXSTREAMS} took over {INSTALL_TIMEOUT:.0f}s"
        ) from exc
    if install.returncode != 0:
        errors = [line for line in install.stderr.splitlines() if "ERROR" in line]
        raise QuixUnavailableError(
            f"pip install {QUIXSTREAMS} failed ({install.returncode}): "
            + ("; ".join(errors[-3:]) or install.stderr[-500:].strip())
        )
    marker.write_text(QUIXSTREAMS + "\n")
    return python


def run(
    python: Path,
    bootstrap: str,
    topics: Sequence[str],
    partitions: int,
    expected: int,
    workdir: Path,
    timeout: float,
) -> dict[str, float]:
    """Run the consumer in *python* until it reports; its result, checked."""
    result = workdir / "quix.json"
    log_path = workdir / "quix.log"
    args = [bootstrap, str(expected), str(partitions), str(workdir / "quix-state"), str(result)]
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [str(python), "-m", "bench.quix_peer", *args, *topics],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + timeout
        while not result.exists():
            if child.poll() is not None and not result.exists():
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Quix peer exited with {child.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Quix peer did not finish within {timeout:.0f}s")
            time.sleep(0.05)
        outcome: dict[str, float] = json.loads(result.read_text())
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
    if outcome["counted"] + outcome["late"] != expected:
        raise RuntimeError(f"the Quix peer counted {outcome}, not {expected} events")
    return outcome


def main() -> None:
    bootstrap, expected, partitions, state_dir, result, *topics = sys.argv[1:]
    consume(bootstrap, int(expected), int(partitions), topics, Path(state_dir), Path(result))


if __name__ == "__main__":
    main()
