"""Printed result objects carry no summation-order noise; the stored numbers are untouched.

Issue #18 item 5: ``AccountMargin(... equity_usd=3684250.0000000005 ...)`` in the Python API.
The basis trader's equity is 40 x 91,250 + 80,000 + 40 x (91,250 - 90,100)... summed in float;
the repr shows floats at 13 significant digits (the JSON's rule for USD figures), the fields
keep the kernel's exact values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pytest

from crossmargin.book.io import load_demo_book
from crossmargin.display import REPR_DIGITS, clean_repr, display_float, rounded_repr
from crossmargin.margin.arrays import MAINT
from crossmargin.margin.engine import MarginEngine

#: a run of 6+ zeros or nines after the decimal point, then a nonzero digit: summation noise
NOISE = re.compile(r"\.\d*?(?:0{6,}|9{6,})[1-9]")


def test_the_pattern_catches_the_reported_noise() -> None:
    assert NOISE.search("equity_usd=3684250.0000000005")
    assert NOISE.search("513749.99999999994")
    assert not NOISE.search("3684250.0, 0.1, 1.25e-07, 1000000.0")


def test_demo_book_reports_print_without_noise() -> None:
    book = load_demo_book()
    engine = MarginEngine(book)
    reports = engine.margin()
    printed = repr(reports) + str(reports[0])
    assert not NOISE.search(printed), NOISE.search(printed)
    # every account's equity, as printed, is the stored figure rounded to 13 digits...
    for report in reports:
        assert f"equity_usd={display_float(report.equity_usd)!r}" in repr(report)
    # ... and the stored figures are the kernel's, bit for bit (display only was rounded)
    arrays = engine.evaluate()
    for i, report in enumerate(reports):
        groups = arrays.arrays.account_group_start
        g0, g1 = int(groups[i]), int(groups[i + 1])
        if report.mode == "cross":  # one group
            assert g1 - g0 == 1
            assert report.equity_usd == float(arrays.equity[g0])
            assert report.maint.weighted_assets_usd == float(arrays.weighted_assets[MAINT, g0])


def test_other_results_of_the_demo_book_print_without_noise() -> None:
    from crossmargin.risk.hedge import hedge_scenarios, suggest_hedges
    from crossmargin.risk.stress import builtin_scenarios, run_stress

    book = load_demo_book()
    engine = MarginEngine(book)
    printed = [
        repr(engine.compare()),
        repr(engine.what_if("eth-levered", [], {"USDC": 1000.0})),
        repr(run_stress(book, builtin_scenarios())),
    ]
    scenarios, symbols, mapping, _ = hedge_scenarios(book, "eth-levered", None)
    printed.append(repr(suggest_hedges(book, "eth-levered", scenarios, symbols, mapping=mapping)))
    for text in printed:
        assert not NOISE.search(text), NOISE.search(text)


@rounded_repr
@dataclass(frozen=True)
class _Example:
    x_usd: float
    parts: tuple[float, ...]
    by_name: dict[str, float]


def test_clean_repr_rounds_floats_only_in_the_display() -> None:
    value = _Example(0.1 + 0.2, (1e6 - 1e-10,), {"a": math.inf, "b": math.nan})
    assert value.x_usd == 0.30000000000000004  # stored as computed
    assert repr(value) == "_Example(x_usd=0.3, parts=(1000000.0,), by_name={'a': inf, 'b': nan})"
    assert str(value) == repr(value)
    # 13 significant digits: a real figure keeps them
    assert clean_repr(1234567.891234567) == "1234567.891235"
    assert REPR_DIGITS == 13
    assert clean_repr([1, True, None, "s", 2.5]) == "[1, True, None, 's', 2.5]"


@pytest.mark.parametrize("value", [0.0, -0.0, 1e-300, 1e300, -123.456])
def test_display_float_keeps_round_numbers(value: float) -> None:
    assert display_float(value) == value
