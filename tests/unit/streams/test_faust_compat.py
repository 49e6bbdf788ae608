"""The private parts of Faust and aiokafka the worker relies on are where it expects them.

Everything the worker touches is named in streams.faust_compat. After an
upgrade of faust-streaming, aiokafka or mode-streaming these tests fail
first, each with the full list of what moved, not only the first thing.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
from collections.abc import Callable, Iterator, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from faust.exceptions import NotReady
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams import faust_compat
from streams.faust_compat import ACCESSED, OVERRIDDEN, Kind, Private

ROOT = Path(__file__).resolve().parents[3]
COMPAT_MODULE = ROOT / "streams" / "faust_compat.py"
# Every package of the product (tests may reach into what they test).
PRODUCT_PACKAGES = ("streams", "salespulse", "metrics", "bench", "schemas", "deploy")
# Packages whose classes may subclass Faust's, mode's or aiokafka's (imported to look).
SUBCLASSING_PACKAGES = ("streams", "metrics", "salespulse")
LIBRARIES = ("faust", "mode", "aiokafka")
FENCED = {private.name for private in (*ACCESSED, *OVERRIDDEN)}
# Private names of other libraries the product uses, with where and whose.
OTHER_LIBRARIES_PRIVATE = {
    "_option_string_actions": "argparse's, in salespulse/importer/command.py",
}
TP0 = TP("crm.calls", 0)
FETCH_WAIT_MS = 123


def fail_with_all(failures: list[str], what: str) -> None:
    if failures:
        pytest.fail(f"{len(failures)} {what}:\n  " + "\n  ".join(failures), pytrace=False)


def test_the_installed_versions_are_the_ones_checked_on() -> None:
    """A new version may move any of them: check it, then update CHECKED_ON."""
    installed = {name: metadata.version(name) for name in faust_compat.CHECKED_ON}
    assert installed == dict(faust_compat.CHECKED_ON)


def qualified(private: Private) -> str:
    return f"{private.owner.__module__}.{private.owner.__qualname__}.{private.name}"


def method_failures(private: Private, found: Any) -> list[str]:
    where = qualified(private)
    if not callable(found):
        return [f"{where}: expected a {private.kind.value}, found {type(found).__name__}"]
    failures = []
    if inspect.iscoroutinefunction(found) != (private.kind is Kind.COROUTINE):
        failures.append(f"{where}: expected a {private.kind.value}")
    parameters = tuple(inspect.signature(found).parameters)
    if parameters != private.parameters:
        failures.append(f"{where}: expected parameters {private.parameters}, found {parameters}")
    return failures


def instance_probes(
    kafka_consumer: aiokafka.AIOKafkaConsumer,
) -> dict[tuple[type, str], tuple[Any, Callable[[Any], bool], str]]:
    """(owner, name) -> (an instance of the owner, a check of the value, what it expects)."""
    consumer = faust.App("compat-check", broker="kafka://127.0.0.1:1").consumer
    assert type(consumer) is faust_aiokafka.Consumer

    def mapping_of(default: Callable[[Any], bool]) -> Callable[[Any], bool]:
        return lambda value: isinstance(value, MutableMapping) and default(value[TP0])

    start = inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    return {
        (faust_aiokafka.Consumer, "_buffered_partitions"): (
            consumer,
            lambda value: isinstance(value, set),
            "a set of partitions",
        ),
        (faust_aiokafka.Consumer, "_acked"): (
            consumer,
            mapping_of(lambda offsets: offsets == []),
            "a mapping whose missing partitions read as an empty list",
        ),
        (faust_aiokafka.Consumer, "_committed_offset"): (
            consumer,
            mapping_of(lambda offset: offset is None),
            "a mapping whose missing partitions read as None",
        ),
        (faust_aiokafka.Consumer, "_read_offset"): (
            consumer,
            mapping_of(lambda offset: offset is None),
            "a mapping whose missing partitions read as None",
        ),
        (faust_aiokafka.Consumer, "_gap"): (
            consumer,
            mapping_of(
                lambda ranges: (
                    callable(getattr(ranges, "addi", None))
                    and callable(getattr(ranges, "merge_overlaps", None))
                )
            ),
            "a mapping whose missing partitions read as an interval tree",
        ),
        (aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms"): (
            kafka_consumer,
            lambda value: value == FETCH_WAIT_MS and "=self._fetch_max_wait_ms" in start,
            "the fetch_max_wait_ms given, read by start() when it builds the fetcher",
        ),
    }


async def test_every_private_name_used_is_there_with_its_shape() -> None:
    kafka_consumer = aiokafka.AIOKafkaConsumer(
        bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=FETCH_WAIT_MS
    )
    try:
        probes = instance_probes(kafka_consumer)
    finally:
        await kafka_consumer.stop()
    failures: list[str] = []
    for private in ACCESSED:
        where = qualified(private)
        if private.kind is Kind.INSTANCE_ATTRIBUTE:
            if (private.owner, private.name) not in probes:
                failures.append(f"{where}: no probe for this attribute in this test")
                continue
            instance, expected, expectation = probes[(private.owner, private.name)]
            if not hasattr(instance, private.name):
                failures.append(f"{where}: missing on an instance")
            elif not expected(getattr(instance, private.name)):
                failures.append(f"{where}: expected {expectation}")
        elif not hasattr(private.owner, private.name):
            failures.append(f"{where}: missing")
        else:
            failures.extend(method_failures(private, getattr(private.owner, private.name)))
    for private in OVERRIDDEN:
        where = qualified(private)
        if not hasattr(private.owner, private.name):
            failures.append(f"{where}: missing (overridden in streams.batching)")
        else:
            failures.extend(method_failures(private, getattr(private.owner, private.name)))
    fail_with_all(failures, "private names of Faust or aiokafka moved")


async def test_the_producer_under_faust_is_not_there_before_it_starts() -> None:
    app = faust.App("compat-producer", broker="kafka://127.0.0.1:1")
    with pytest.raises(NotReady):
        faust_compat.running_producer(app.producer)


def library_subclasses() -> Iterator[type]:
    """The product's classes with a Faust, mode or aiokafka class among their bases."""
    for package_name in SUBCLASSING_PACKAGES:
        package = importlib.import_module(package_name)
        modules = [package] + [
            importlib.import_module(info.name)
            for info in pkgutil.walk_packages(package.__path__, f"{package_name}.")
            if not info.name.endswith("__main__")
        ]
        for module in modules:
            for cls in vars(module).values():
                if (
                    inspect.isclass(cls)
                    and cls.__module__ == module.__name__
                    and library_bases(cls)
                ):
                    yield cls


def library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__ if base.__module__.split(".")[0] in LIBRARIES]


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def known_to(bases: list[type], name: str) -> bool:
    """Whether a library class has *name*: on the class, or declared for its instances."""
    return any(name in vars(base) or name in getattr(base, "__annotations__", {}) for base in bases)


def names_of_our_own(cls: type) -> tuple[set[str], set[str]]:
    """What the class's source defines: (in its body, as attributes of self).

    From the source, not ``vars(cls)``: Faust's and mode's metaclasses add
    private names of their own to every subclass.
    """
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(definition, ast.ClassDef)
    in_body: set[str] = set()
    for statement in definition.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            in_body.add(statement.name)
        elif isinstance(statement, ast.Assign | ast.AnnAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            in_body.update(target.id for target in targets if isinstance(target, ast.Name))
    on_self: set[str] = set()
    for node in ast.walk(definition):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            on_self.update(
                target.attr
                for target in targets
                if isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            )
    return in_body, on_self


def test_every_private_override_is_listed_and_nothing_of_ours_shadows_the_libraries() -> None:
    """An override not in OVERRIDDEN escapes the shape check above; a private name of our
    own that a library class also has would silently replace the library's."""
    failures: list[str] = []
    overridden: set[tuple[type, str]] = set()
    for cls in library_subclasses():
        bases = library_bases(cls)
        where = f"{cls.__module__}.{cls.__qualname__}"
        in_body, on_self = names_of_our_own(cls)
        for name in sorted(in_body):
            if not is_private(name) or not known_to(bases, name):
                continue
            listed = [p for p in OVERRIDDEN if p.name == name and issubclass(cls, p.owner)]
            if not listed:
                failures.append(f"{where}.{name}: overrides a library's, not in OVERRIDDEN")
                continue
            overridden.add((listed[0].owner, name))
            parameters = tuple(inspect.signature(vars(cls)[name]).parameters)
            if parameters != listed[0].parameters:
                failures.append(
                    f"{where}.{name}: parameters {parameters}, the base's are "
                    f"{listed[0].parameters}"
                )
        for name in sorted(on_self):
            if is_private(name) and known_to(bases, name):
                failures.append(f"{where}: sets self.{name}, which a library class has")
    for private in OVERRIDDEN:
        if (private.owner, private.name) not in overridden:
            failures.append(f"{private.owner.__qualname__}.{private.name}: listed, not overridden")
    fail_with_all(failures, "problems with overrides of library classes")


def product_sources() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(), str(path))
        for package in PRODUCT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def assigned_names(target: ast.expr) -> Iterator[str]:
    """Names a target of an assignment defines: variables, and attributes of self or cls."""
    if isinstance(target, ast.Name):
        yield target.id
    elif (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id in ("self", "cls")
    ):
        yield target.attr
    elif isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from assigned_names(element)
    elif isinstance(target, ast.Starred):
        yield from assigned_names(target.value)


def names_defined(trees: dict[Path, ast.Module]) -> set[str]:
    defined: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    defined.update(assigned_names(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                defined.update(assigned_names(node.target))
    return defined


def base_calls_in_overrides(tree: ast.Module) -> set[int]:
    """ids of ``super().<name>`` nodes inside the override ``def <name>`` of a listed method."""
    allowed: set[int] = set()
    overridden = {private.name for private in OVERRIDDEN}
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if function.name not in overridden:
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == function.name
                and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "super"
            ):
                allowed.add(id(node))
    return allowed


def private_names_touched(tree: ast.Module) -> Iterator[tuple[ast.expr, str]]:
    """``x._name``, and ``getattr(x, "_name")`` and its siblings, with the name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            yield node, node.attr
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            yield node, node.args[1].value


def test_only_the_compat_module_touches_private_names_of_faust_or_aiokafka() -> None:
    """Fenced names nowhere else (but an override calling its base); and any private name
    the product uses without defining it is someone else's, so it must be fenced too."""
    trees = product_sources()
    defined = names_defined(trees)
    failures: list[str] = []
    for path, tree in trees.items():
        if path == COMPAT_MODULE:
            continue
        allowed = base_calls_in_overrides(tree)
        for node, name in private_names_touched(tree):
            if id(node) in allowed:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}"
            if name in FENCED:
                failures.append(f"{where} (go through streams.faust_compat)")
            elif name not in defined and name not in OTHER_LIBRARIES_PRIVATE:
                failures.append(f"{where} (a library's private name: fence it)")
    fail_with_all(failures, "private names touched outside streams/faust_compat.py")


def test_the_compat_module_touches_exactly_the_names_it_lists() -> None:
    tree = ast.parse(COMPAT_MODULE.read_text(), str(COMPAT_MODULE))
    touched = {name for _, name in private_names_touched(tree)}
    assert touched == {private.name for private in ACCESSED}
