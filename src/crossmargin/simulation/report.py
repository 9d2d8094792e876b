"""The simulation report: one self-contained HTML page with plots.

Price path and liquidated volume per cascade round, the mode comparison, the bad-debt
distribution over Monte Carlo paths, and the calibration frontier.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from crossmargin.htmlpage import figure_png, html_table, metric_rows, page_head, usd_axis
from crossmargin.simulation.calibrate import Calibration
from crossmargin.simulation.cascade import CascadeResult
from crossmargin.simulation.modes import ModeOutcome
from crossmargin.simulation.montecarlo import MonteCarloResult


def _usd(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:,.0f}"


def cascade_figures(result: CascadeResult) -> list[str]:
    rounds = [r.round for r in result.rounds]
    moved = [
        s
        for s in result.rounds[0].price_usd
        if any(
            abs(r.price_usd[s] / result.rounds[0].price_usd[s] - 1.0) > 1e-9 for r in result.rounds
        )
    ]
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    for symbol in moved or list(result.rounds[0].price_usd)[:3]:
        start = result.rounds[0].price_usd[symbol]
        ax.plot(rounds, [100.0 * r.price_usd[symbol] / start for r in result.rounds], label=symbol)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("price, % of the shocked price")
    ax.set_title("Price path")
    ax.legend(fontsize=7)
    fig2 = Figure(figsize=(6, 3.2))
    ax2 = fig2.add_subplot()
    ax2.bar(rounds, [r.liquidated_notional_usd for r in result.rounds], color="#cc3311")
    ax2.set_xlabel("round")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    usd_axis(ax2.yaxis, "forced flow")
    ax2.set_title("Liquidated volume per round")
    return [figure_png(fig), figure_png(fig2)]


def monte_carlo_figure(mc: MonteCarloResult) -> str:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.hist(mc.bad_debt_usd, bins=50, color="#4477aa")
    metrics = mc.metrics()
    for tag, style in (("95", "--"), ("99", "-")):
        ax.axvline(
            metrics[f"bad_debt_var{tag}_usd"], color="#cc3311", ls=style, label=f"VaR {tag} %"
        )
    ax.set_yscale("log")
    usd_axis(ax.xaxis, "bad debt per path")
    ax.set_ylabel("paths (log scale)")
    ax.set_title(f"Bad debt over {mc.n_paths:,} paths")
    ax.legend(fontsize=7)
    return figure_png(fig)


def frontier_figure(calibration: Calibration) -> str:
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    xs = [p.capital_required_usd for p in calibration.frontier]
    ys = [p.bad_debt_var99_usd for p in calibration.frontier]
    ax.plot(xs, ys, "o", color="#bbbbbb", label="grid")
    efficient = sorted(
        (x, y) for p, x, y in zip(calibration.frontier, xs, ys, strict=True) if p.efficient
    )
    ax.plot(*zip(*efficient, strict=True), "o-", color="#4477aa", label="efficient")
    for p, x, y in zip(calibration.frontier, xs, ys, strict=True):
        ax.annotate(f"x{p.label}", (x, y), fontsize=7)
    ax.axhline(calibration.target_var99_usd, color="#cc3311", ls="--", label="target")
    usd_axis(ax.xaxis, "capital required")
    usd_axis(ax.yaxis, "bad-debt VaR 99 %")
    ax.set_title("Efficient frontier of the margin scale")
    ax.legend(fontsize=7)
    return figure_png(fig)


def render_simulation_html(
    title: str,
    cascade: CascadeResult | None = None,
    modes: Sequence[ModeOutcome] = (),
    mc: MonteCarloResult | None = None,
    calibration: Calibration | None = None,
) -> str:
    parts = [page_head(title), "<p>Methods and assumptions: docs/simulation.md.</p>"]
    if cascade is not None:
        parts.append(
            f"<h2>Cascade ({len(cascade.rounds)} rounds, converged: {cascade.converged})</h2>"
        )
        parts.append(
            html_table(
                [
                    "round",
                    "liquidatable",
                    "liquidated notional $",
                    "bad debt $",
                    "insurance fund $",
                ],
                [
                    [
                        str(r.round),
                        f"{r.liquidatable_groups:,}",
                        _usd(r.liquidated_notional_usd),
                        _usd(r.bad_debt_usd),
                        _usd(r.insurance_fund_usd),
                    ]
                    for r in cascade.rounds
                ],
            )
        )
        parts.extend(f"<figure>{img}</figure>" for img in cascade_figures(cascade))
    if modes:
        parts.append("<h2>Isolated vs cross vs portfolio</h2>")
        parts.append(
            html_table(
                [
                    "mode",
                    "capital required $",
                    "top-up $",
                    "liquidated",
                    "notional $",
                    "bad debt $",
                    "rounds",
                    "liquidation",
                ],
                [
                    [
                        m.mode,
                        _usd(m.capital_required_usd),
                        _usd(m.top_up_usd),
                        f"{m.liquidated_accounts:,}",
                        _usd(m.liquidated_notional_usd),
                        _usd(m.bad_debt_usd),
                        str(m.rounds),
                        m.liquidation,
                    ]
                    for m in modes
                ],
            )
        )
    if mc is not None:
        parts.append("<h2>Monte Carlo</h2>")
        parts.append(
            html_table(["metric", "value"], [list(row) for row in metric_rows(mc.metrics())])
        )
        parts.append(f"<figure>{monte_carlo_figure(mc)}</figure>")
    if calibration is not None:
        rec = calibration.recommended
        parts.append("<h2>Calibration</h2>")
        parts.append(
            "<p>"
            + html.escape(
                f"target bad-debt VaR99 {_usd(calibration.target_var99_usd)} USD; recommended "
                + ("none on the grid" if rec is None else f"scale x{rec.label}")
            )
            + "</p>"
        )
        parts.append(
            html_table(
                ["scale", "capital $", "bad-debt VaR99 $", "ES99 $", "P(bad debt)"],
                [
                    [
                        p.label + ("" if p.efficient else " (dominated)"),
                        _usd(p.capital_required_usd),
                        _usd(p.bad_debt_var99_usd),
                        _usd(p.bad_debt_es99_usd),
                        f"{p.prob_bad_debt:.3f}",
                    ]
                    for p in calibration.frontier
                ],
            )
        )
        parts.append(f"<figure>{frontier_figure(calibration)}</figure>")
    parts.append("</body></html>")
    return "".join(parts)
