"""Report charts read well (issue #18 item 5): USD axes in USD, thousand or million USD chosen
from each chart's own range, no "-0" ticks, few enough ticks not to overlap, human labels."""

from __future__ import annotations

import pytest

from crossmargin.htmlpage import metric_rows, tick_text, usd_axis, usd_scale


@pytest.mark.parametrize(
    ("largest", "unit"),
    [(450.0, "USD"), (9_999.0, "USD"), (40_000.0, "thousand USD"), (2_500_000.0, "million USD")],
)
def test_usd_scale_fits_the_data(largest: float, unit: str) -> None:
    assert usd_scale(largest)[1] == unit


def test_tick_text_has_separators_and_no_negative_zero() -> None:
    assert tick_text(-0.2, 0) == "0"
    assert tick_text(-1234567.0, 0) == "-1,234,567"
    assert tick_text(0.25, 1) == "0.2"  # banker's rounding of the float, as Python formats


def _labels(values: list[float]) -> tuple[list[str], str]:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.barh([str(i) for i in range(len(values))], values)
    usd_axis(ax.xaxis, "maint health")
    fig.canvas.draw()
    low, high = ax.get_xlim()
    texts = [t.get_text() for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high]
    return texts, ax.xaxis.get_label().get_text()


def test_a_small_account_reads_in_usd_without_minus_zero() -> None:
    """Losses of hundreds of USD: the old axis in thousands printed "-0 -0 0 0"."""
    texts, label = _labels([-180.0, 120.0, 260.0])
    assert label == "maint health, USD"
    assert len(set(texts)) == len(texts) and "-0" not in texts


def test_a_stress_chart_of_hundreds_of_thousands_has_few_separated_ticks() -> None:
    """The old chart printed "-400000-350000-300000..." run together."""
    texts, label = _labels([-420_000.0, 1_900_000.0, 350_000.0])
    assert label == "maint health, million USD"
    assert 3 <= len(texts) <= 7


def test_metric_rows_use_human_labels() -> None:
    rows = dict(metric_rows({"bad_debt_var95_usd": 25_910.4, "prob_bad_debt": 0.229, "paths": 1e3}))
    assert rows == {
        "bad debt VaR 95 %, USD": "25,910",
        "probability of bad debt": "22.90 %",
        "paths": "1,000",
    }
