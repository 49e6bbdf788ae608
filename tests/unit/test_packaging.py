"""The wheel holds the whole product, and building it warns about nothing.

pyproject.toml lists the packages by hand: a package left out works in the
checkout (and in an editable install) but is missing from the wheel and the
Docker image, and a data folder not declared as a package makes setuptools
warn on every install. The wheel is built from a copy of the sources with the
build backend already installed (no network), so the checkout stays clean.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("salespulse", "streams", "schemas", "metrics")
SKIPPED = ("__pycache__",)


def product_files() -> list[str]:
    """Every file of the product's packages, as a path inside the wheel."""
    tracked = subprocess.run(
        ["git", "ls-files", "--", *PACKAGES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(path for path in tracked if not any(part in SKIPPED for part in path.split("/")))


def build_wheel(workdir: Path) -> tuple[Path, str]:
    source = workdir / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for path in product_files():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, source / path)
    out = workdir / "wheel"
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v"]
    built = subprocess.run(
        [*pip, "--wheel-dir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = built.stdout + built.stderr
    assert built.returncode == 0, log
    (wheel,) = out.glob("salespulse-*.whl")
    return wheel, log


def test_the_wheel_holds_every_module_and_data_file_and_builds_without_warnings(
    tmp_path: Path,
) -> None:
    wheel, log = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        inside = set(archive.namelist())
        metadata = next(
            archive.read(name).decode() for name in inside if name.endswith(".dist-info/METADATA")
        )
    missing = [path for path in product_files() if path not in inside]
    assert missing == []
    # The ones a newcomer reaches first: the mapping examples and the JSON Schemas.
    assert "salespulse/ingest/mappings/hubspot.example.toml" in inside
    assert "schemas/json/deal.created.json" in inside
    assert "License-Expression: Apache-2.0" in metadata
    warnings = [line for line in log.splitlines() if "Warning" in line or "deprecated" in line]
    assert warnings == []
