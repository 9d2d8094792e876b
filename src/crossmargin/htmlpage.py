"""Self-contained HTML pages: inline PNG figures (matplotlib's object API), tables, one style.

Shared by the risk report (``crossmargin risk --html``) and the simulation report
(``crossmargin simulate --html``): a page has no external file and renders offline.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import math
from collections.abc import Sequence
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
.flag{color:#cc3311;font-weight:bold}figure{display:inline-block;margin:0.5em}
img{max-width:100%}
"""


def figure_png(fig: Any) -> str:
    """An ``<img>`` holding the figure as base64 PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table, every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page_head(title: str) -> str:
    """Doctype, head with the style, and the title as ``<h1>``."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
    )


#: (smallest magnitude, divisor, unit) of a USD axis, largest first: an axis whose largest
#: |value| is 1,200,000 reads in million USD, 40,000 in thousand USD, 900 in USD
USD_SCALES = ((1e6, 1e6, "million USD"), (1e4, 1e3, "thousand USD"), (0.0, 1.0, "USD"))


def usd_scale(largest_abs_usd: float) -> tuple[float, str]:
    """(divisor, unit) for an axis whose largest magnitude is ``largest_abs_usd``."""
    for floor, divisor, unit in USD_SCALES:
        if largest_abs_usd >= floor:
            return divisor, unit
    return 1.0, "USD"  # pragma: no cover - the last floor is 0


def tick_text(value: float, decimals: int) -> str:
    """A tick label with thousands separators, an ASCII minus and never ``-0``."""
    if round(value, decimals) == 0:
        value = 0.0
    return f"{value:,.{decimals}f}"


def usd_axis(axis: Any, label: str, nbins: int = 6) -> None:
    """Label a matplotlib axis (``ax.xaxis``, ``ax.yaxis``, a colorbar's ``cbar.ax.yaxis``) in
    USD, thousand or million USD chosen from its own range (:data:`USD_SCALES`), at most
    ``nbins`` ticks (labels do not run into each other), decimals from the tick step, thousands
    separators. Call it after the data is drawn (it reads the view limits)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    low, high = sorted(axis.get_view_interval())
    divisor, unit = usd_scale(max(abs(low), abs(high)))
    axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
    ticks = [t for t in axis.get_major_locator().tick_values(low, high) if low <= t <= high]
    step = min((b - a for a, b in itertools.pairwise(ticks)), default=0.0) / divisor
    decimals = max(0, -math.floor(math.log10(step))) if 0.0 < step < 1.0 else 0
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: tick_text(x / divisor, decimals)))
    axis.set_label_text(f"{label}, {unit}")


#: human names of Monte Carlo metrics (crossmargin.simulation.montecarlo.MonteCarloResult)
METRIC_LABELS = {
    "paths": "paths",
    "bad_debt_var95_usd": "bad debt VaR 95 %, USD",
    "bad_debt_es95_usd": "bad debt ES 95 %, USD",
    "liquidations_at_risk95_usd": "liquidations at risk 95 %, USD",
    "bad_debt_var99_usd": "bad debt VaR 99 %, USD",
    "bad_debt_es99_usd": "bad debt ES 99 %, USD",
    "liquidations_at_risk99_usd": "liquidations at risk 99 %, USD",
    "bad_debt_mean_usd": "mean bad debt, USD",
    "prob_bad_debt": "probability of bad debt",
    "prob_insurance_fund_depleted": "probability the insurance fund is depleted",
}


def metric_rows(metrics: dict[str, float]) -> list[tuple[str, str]]:
    """(label, value) of Monte Carlo metrics: probabilities as %, paths as a count, USD whole
    with separators."""
    rows = []
    for key, value in metrics.items():
        if key.startswith("prob"):
            text = f"{100 * value:.2f} %"
        elif key == "paths":
            text = f"{value:,.0f}"
        else:
            text = tick_text(value, 0)
        rows.append((METRIC_LABELS.get(key, key.replace("_", " ")), text))
    return rows
