"""The lock file matches pyproject.toml, so `./dev` installs what the project declares.

`./dev` installs requirements/dev.lock in pip's hash-checking mode and then
the project without its dependencies: a dependency added to pyproject.toml, or
a specifier narrowed there, would otherwise never reach a fresh machine. These
checks read both files only; they need no network and no resolver.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "dev.lock"
PYPROJECT = REPO / "pyproject.toml"
REFRESH = "refresh it with ./dev lock"

# The platform the lock is resolved for (./dev lock): CPython 3.11 on Linux x86_64.
TARGET_ENVIRONMENT = {
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def lock_entries(text: str) -> list[str]:
    """Each requirement of a pip requirements file as one line, continuations joined."""
    entries: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        entries.append(" ".join((pending + line).split()))
        pending = ""
    assert not pending, f"the lock file ends inside a continued line: {pending!r}"
    return entries


def declared_requirements() -> list[Requirement]:
    """The runtime dependencies, the dev extra and the build backend of pyproject.toml."""
    pyproject = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    specs = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["dev"],
        *pyproject["build-system"]["requires"],
    ]
    return [Requirement(spec) for spec in specs]


ENTRIES = lock_entries(LOCK.read_text(encoding="utf-8"))


def locked_versions() -> dict[NormalizedName, Version]:
    versions: dict[NormalizedName, Version] = {}
    for entry in ENTRIES:
        requirement = Requirement(entry.split(" ", 1)[0])
        (pin,) = requirement.specifier
        versions[canonicalize_name(requirement.name)] = Version(pin.version)
    return versions


def test_the_lock_file_has_entries() -> None:
    assert len(ENTRIES) >= len(declared_requirements())


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.split(" ", 1)[0])
def test_every_locked_package_is_pinned_exactly_with_hashes(entry: str) -> None:
    requirement_text, _, options = entry.partition(" ")
    requirement = Requirement(requirement_text)
    specifiers = list(requirement.specifier)

    assert len(specifiers) == 1, f"{entry!r} is not one exact pin"
    assert specifiers[0].operator == "==", f"{entry!r} is not an exact pin"
    assert "*" not in specifiers[0].version, f"{entry!r} pins a wildcard"
    assert requirement.url is None, f"{entry!r} installs from a URL"
    assert HASH.search(options), f"{entry!r} has no --hash=sha256:"
    assert HASH.sub("", options).strip() == "", f"{entry!r} carries options besides hashes"


def test_no_package_is_locked_twice() -> None:
    names = [canonicalize_name(Requirement(entry.split(" ", 1)[0]).name) for entry in ENTRIES]

    assert sorted(names) == sorted(set(names))


@pytest.mark.parametrize("requirement", declared_requirements(), ids=str)
def test_every_declared_dependency_is_locked_within_its_specifier(
    requirement: Requirement,
) -> None:
    if requirement.marker is not None and not requirement.marker.evaluate(TARGET_ENVIRONMENT):
        pytest.skip(f"{requirement} does not apply to CPython 3.11 on Linux x86_64")
    locked = locked_versions()
    name = canonicalize_name(requirement.name)

    assert name in locked, f"{requirement} is declared but not in {LOCK.name}; {REFRESH}"
    assert requirement.specifier.contains(locked[name], prereleases=True), (
        f"{LOCK.name} has {name}=={locked[name]}, outside {requirement}; {REFRESH}"
    )
