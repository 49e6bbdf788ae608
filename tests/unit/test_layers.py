"""Layers point down: no module imports from a layer above its own.

The layers, bottom first (README, "Layout"): the contract and the company
configuration; the domain (what an event means for a manager's numbers,
asking for state through streams.repository); the state (how it is kept,
packed and written to the changelog); the exposition (Prometheus text read
from the state); the runtime (Faust, Kafka, the worker, which serves the
exposition); the applications people run. A module may import its own layer
and the ones below. Every module of the product must be placed here, so a
new one is placed on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "salespulse", "streams", "metrics")

# Bottom first. A path ending in "/" places every module under it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("contract", ("schemas/", "salespulse/__init__.py")),
    ("configuration", ("salespulse/settings.py", "salespulse/config/")),
    (
        "domain",
        (
            "streams/__init__.py",
            "streams/entities.py",
            "streams/repository.py",
            "streams/intake.py",
            "streams/periods.py",
            "streams/buckets.py",
            "streams/task_quality.py",
            "streams/aggregate.py",
            "streams/processor.py",
            "salespulse/forecast/__init__.py",
            "salespulse/forecast/model.py",
        ),
    ),
    (
        "state",
        (
            "streams/cells.py",
            "streams/items.py",
            "streams/rocks_items.py",
            "streams/schedule.py",
            "streams/state.py",
            "streams/store.py",
            "streams/heap.py",
            "streams/changelog.py",
            "streams/progress.py",
        ),
    ),
    ("exposition", ("metrics/",)),
    (
        "runtime",
        (
            "streams/app.py",
            "streams/batching.py",
            "streams/faust_compat.py",
            "streams/pipeline.py",
            "streams/outputs.py",
            "streams/gaps.py",
            "streams/tablestore.py",
            "salespulse/worker.py",
            "salespulse/broker.py",
            "salespulse/topics.py",
            "salespulse/kafka_security.py",
            "salespulse/kafka_client.py",
        ),
    ),
    (
        "applications",
        (
            "salespulse/__main__.py",
            "salespulse/cli.py",
            "salespulse/arguments.py",
            "salespulse/environment.py",
            "salespulse/kpis.py",
            "salespulse/top.py",
            "salespulse/ingest/",
            "salespulse/importer/",
            "salespulse/simulate/",
            "salespulse/report/",
            "salespulse/wall/",
            "salespulse/forecast/",
        ),
    ),
)


def layer_of(path: str) -> int | None:
    for number, (_, places) in enumerate(LAYERS):
        for place in places:
            if path == place or (place.endswith("/") and path.startswith(place)):
                return number
    return None


def module_path(module: str) -> str | None:
    """The source file of an imported module of the product (None: not ours)."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT / module.replace(".", "/")
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py").relative_to(ROOT).as_posix()
    if (base / "__init__.py").exists():
        return (base / "__init__.py").relative_to(ROOT).as_posix()
    return None


def imported_modules(path: Path) -> set[str]:
    """Every product module *path* imports (``from a.b import c`` names a.b.c when that
    is a module, else a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if module_path(candidate) else node.module)
    return found


def sources() -> list[str]:
    return sorted(
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    )


def test_every_module_has_a_layer() -> None:
    assert [path for path in sources() if layer_of(path) is None] == []


def test_every_listed_place_exists() -> None:
    """A place moved or renamed must move here too, not linger unchecked."""
    missing = [place for _, places in LAYERS for place in places if not (ROOT / place).exists()]
    assert missing == []


@pytest.mark.parametrize("path", sources())
def test_no_module_imports_from_a_layer_above_its_own(path: str) -> None:
    own = layer_of(path)
    assert own is not None
    upward = []
    for module in sorted(imported_modules(ROOT / path)):
        target = module_path(module)
        if target is None:
            continue
        layer = layer_of(target)
        assert layer is not None, f"{target} has no layer"
        if layer > own:
            upward.append(f"{module} ({LAYERS[layer][0]})")
    assert upward == [], f"{path} ({LAYERS[own][0]}) imports from above: {upward}"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The domain importing the store would be reported."""
    module = tmp_path / "probe.py"
    module.write_text("from streams.store import StateStore\nimport metrics.exposition\n")
    found = {module_path(name) for name in imported_modules(module)}
    assert found == {"streams/store.py", "metrics/exposition.py"}
    domain = layer_of("streams/aggregate.py")
    assert domain is not None
    assert all((layer_of(target) or 0) > domain for target in found if target)
