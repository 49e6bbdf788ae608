"""Sample values in the exposition are written exactly as prometheus_client writes them.

``metrics.exposition.number`` keeps each value's text once formatted (a scrape
repeats few values many times); these values are where a cache keyed by the
float could give another value's text: 0.0 and -0.0 are one dict key, NaN is
never found again, an int and its float are one key.
"""

from __future__ import annotations

import math

import pytest
from prometheus_client.utils import floatToGoString

from metrics import exposition
from metrics.exposition import number

TRICKY = [
    0.0,
    -0.0,
    0.0,
    1.0,
    1,
    True,
    42.0,
    -3.0,
    1e21,
    1e22,
    123456789.0,
    1234567.0,
    999999.0,
    1e-7,
    -1e-7,
    5e-324,
    1.7976931348623157e308,
    0.1 + 0.2,
    0.3,
    1 / 3,
    float("nan"),
    math.nan,
    float("inf"),
    float("-inf"),
    2.0**53,
    2.0**53 + 2,
    18_446_744_073_709_551_616.0,
    1_234_567_890_123.0,
    -1e21,
]


def expected(value: float) -> str:
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("order", ["forward", "backward"])
def test_every_value_is_written_as_prometheus_client_writes_it(order: str) -> None:
    values = TRICKY if order == "forward" else TRICKY[::-1]
    for _ in range(2):  # the second time from the cache
        assert [number(value) for value in values] == [expected(value) for value in values]


def test_zero_keeps_its_sign_whichever_came_first() -> None:
    assert [number(0.0), number(-0.0), number(0.0)] == ["0.0", "-0.0", "0.0"]
    assert [number(-0.0), number(0.0), number(-0.0)] == ["-0.0", "0.0", "-0.0"]


def test_nan_does_not_fill_the_cache() -> None:
    before = len(exposition._NUMBER_TEXT)
    assert {number(float("nan")) for _ in range(1000)} == {"NaN"}
    assert len(exposition._NUMBER_TEXT) == before
