"""HTML reports of the prediction commands: held-out scores, reliability diagram, importances
(``crossmargin train --html``) and the per-account probabilities with their drivers
(``crossmargin predict --html``). Self-contained pages (:mod:`crossmargin.htmlpage`); figures are
drawn with matplotlib's object API (Agg, no display) and embedded as base64 PNG.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from crossmargin.htmlpage import figure_png, html_table, page_head
from crossmargin.predict.training import SCORE_HEADER, Evaluation, scores_table

COLORS = {
    "learned": "#228833",
    "analytic": "#cc3311",
    "analytic, recalibrated": "#ee7733",
    "base rate": "#4477aa",
}
FLOOR = 1e-4  # log axes: forecasts below are drawn at the floor


def reliability_figure(evaluation: Evaluation) -> Any:
    """Mean forecast against observed frequency per equal-count bin, log axes, diagonal."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.add_subplot()
    top = FLOOR
    for rel in evaluation.reliability:
        xs = [max(v, FLOOR) for v in rel.mean_forecast]
        ys = [max(v, FLOOR) for v in rel.observed]
        top = max(top, *xs, *ys)
        color = COLORS.get(rel.model, "#777777")
        style = "s" if rel.model == "base rate" else "o-"
        ax.plot(xs, ys, style, color=color, label=rel.model, ms=4)
        # bins with no event observed sit on the floor: hollow markers
        zero = [(x, FLOOR) for x, o in zip(xs, rel.observed, strict=True) if o == 0.0]
        if zero:
            ax.plot(*zip(*zero, strict=True), "o", mfc="white", color=color, ms=6)
    ax.plot([FLOOR, top * 1.3], [FLOOR, top * 1.3], color="#999999", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"mean forecast (decile bins; < {FLOOR:g} drawn at {FLOOR:g})")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"Reliability on held-out data ({evaluation.kind})")
    ax.legend(fontsize=7)
    return fig


def importance_figure(importance: Sequence[dict[str, Any]], top: int = 12) -> Any:
    from matplotlib.figure import Figure

    rows = list(importance)[:top][::-1]
    fig = Figure(figsize=(5.2, 0.28 * len(rows) + 1.0))
    ax = fig.add_subplot()
    ax.barh(
        [r["feature"] for r in rows],
        [r["log_loss_rise"] for r in rows],
        color="#228833",
        xerr=[r["std"] for r in rows],
    )
    ax.set_xlabel("held-out log loss rise when permuted")
    ax.set_title("Permutation importance")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def evaluation_html(evaluation: Evaluation, model: Any = None) -> str:
    """The body of a training report: table, reliability, importance, provenance."""
    parts = [
        "<h2>Held-out scores</h2>",
        html_table(SCORE_HEADER, scores_table(evaluation)),
        "<p>"
        + html.escape(
            "The learned model "
            + ("beats" if evaluation.learned_beats_baseline_brier else "does NOT beat")
            + " the analytic baseline's Brier score on held-out data. Calibration: "
            + evaluation.calibration
            + "."
        )
        + "</p>",
        "<h2>Reliability diagram</h2>",
        f"<figure>{figure_png(reliability_figure(evaluation))}</figure>",
        "<h2>Permutation importance (held-out log loss)</h2>",
        f"<figure>{figure_png(importance_figure(evaluation.importance))}</figure>",
        "<h2>Split</h2>",
        html_table(
            ("part", "rows", "period"),
            [
                [part, str(hi - lo), " .. ".join(map(str, evaluation.period.get(part, [])))]
                for part, (lo, hi) in (
                    ("train", evaluation.split.train),
                    ("calibration", evaluation.split.calibration),
                    ("test", evaluation.split.test),
                )
            ],
        ),
    ]
    if model is not None:
        info = [
            ["kind", model.kind],
            ["target", str(model.target.get("definition", ""))],
            ["horizon", str(model.horizon)],
            ["data", str({k: v for k, v in model.data.items() if k not in ("split",)})],
            ["created", model.created],
            ["versions", str(model.versions)],
        ]
        parts += ["<h2>Model</h2>", html_table(("field", "value"), info)]
    return "".join(parts)


def render_training_html(title: str, evaluation: Evaluation, model: Any = None) -> str:
    return page_head(title) + evaluation_html(evaluation, model) + "</body></html>"


def _p(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if 0.0 < x < 1e-12:
        return "<1e-12"
    return f"{x:.2e}" if 0.0 < x < 1e-3 else f"{x:.4f}"


def _v(x: float | None) -> str:
    return "missing" if x is None else f"{x:.3g}"


def render_predict_html(title: str, result: dict[str, Any]) -> str:
    """Per-account table (baseline, Monte Carlo, learned, drivers) and a bar chart."""
    from matplotlib.figure import Figure

    accounts = result["accounts"]
    header = ["account", "baseline", "factor", "move to liq.", "distance (sd)"]
    has_mc = any(a.get("monte_carlo") is not None for a in accounts)
    has_model = any(a.get("learned") is not None for a in accounts)
    if has_mc:
        header.append("Monte Carlo")
    if has_model:
        header += ["learned", "drivers (occlusion effect)"]
    rows = []
    for a in accounts:
        b = a["baseline"]
        move = b.get("move_to_liquidation_pct")
        row = [
            a["account"],
            _p(b["probability"]),
            f"{b['asset']} {b['direction']}" if b.get("asset") else "-",
            "-" if move is None else f"{move:+.1f} %",
            "-" if b.get("distance_sd") is None else f"{b['distance_sd']:.2f}",
        ]
        if has_mc:
            mc = a.get("monte_carlo") or {}
            row.append(f"{_p(mc.get('probability'))} ± {_p(mc.get('stderr'))}" if mc else "-")
        if has_model:
            learned = a.get("learned") or {}
            outside = learned.get("outside_training_range") or []
            row.append(
                _p(learned.get("probability"))
                + (f" (outside training range: {', '.join(outside)})" if outside else "")
            )
            row.append(
                ", ".join(
                    f"{d['feature']}={_v(d['value'])} ({d['effect']:+.2g})"
                    for d in learned.get("drivers", [])
                )
            )
        rows.append(row)
    fig = Figure(figsize=(6.5, 0.3 * len(accounts) + 1.2))
    ax = fig.add_subplot()
    names = [a["account"] for a in accounts][::-1]
    series = [("baseline", [a["baseline"]["probability"] for a in accounts][::-1])]
    if has_mc:
        series.append(
            (
                "Monte Carlo",
                [(a.get("monte_carlo") or {}).get("probability", 0.0) for a in accounts][::-1],
            )
        )
    if has_model:
        series.append(
            ("learned", [(a.get("learned") or {}).get("probability", 0.0) for a in accounts][::-1])
        )
    height = 0.8 / len(series)
    for k, (label, values) in enumerate(series):
        ax.barh(
            [i + k * height for i in range(len(names))],
            [max(v, FLOOR) for v in values],
            height=height,
            label=label,
            color={"baseline": COLORS["analytic"], "learned": COLORS["learned"]}.get(
                label, COLORS["base rate"]
            ),
        )
    ax.set_yticks(
        [i + (len(series) - 1) * height / 2 for i in range(len(names))], names, fontsize=7
    )
    ax.set_xscale("log")
    ax.set_xlabel(f"probability of liquidation within {result['horizon']}")
    ax.legend(fontsize=7)
    notes = "".join(f"<p>{html.escape(n)}</p>" for n in result.get("notes", []))
    return (
        page_head(title)
        + html_table(header, rows)
        + f"<figure>{figure_png(fig)}</figure>"
        + notes
        + "</body></html>"
    )


__all__ = [
    "evaluation_html",
    "importance_figure",
    "reliability_figure",
    "render_predict_html",
    "render_training_html",
]
