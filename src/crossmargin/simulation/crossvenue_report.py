"""Tables and the HTML report of the cross-venue simulations (issue #17)."""

from __future__ import annotations

from typing import Any

from crossmargin.htmlpage import figure_png, html_table, page_head, usd_axis
from crossmargin.simulation.crossvenue import HaltResult, VenueResult


def _usd(x: float) -> str:
    return f"{x:,.0f}"


HALT_HEADER = (
    "step",
    "ETH $",
    "bridge",
    "liquidating",
    "bankrupt",
    "ETH sold",
    "stranded $",
    "bad debt $ (cum.)",
)


def halt_rows(result: HaltResult) -> dict[str, list[list[str]]]:
    """Rows per book ('cross-chain', 'one chain')."""
    out = {}
    for name, steps in (("cross-chain", result.cross_chain), ("one chain", result.one_chain)):
        out[name] = [
            [
                str(s.step),
                f"{s.eth_usd:,.2f}",
                "halted" if s.halted else "open",
                str(s.liquidated),
                str(s.bankrupt),
                f"{s.eth_sold:,.1f}",
                _usd(s.stranded_usd),
                _usd(s.bad_debt_usd),
            ]
            for s in steps
        ]
    return out


VENUE_HEADER = (
    "venue",
    "lowest oracle $",
    "liquidating acct-rounds",
    "ETH sold",
    "slippage $",
    "bad debt $",
    "underwater $",
    "bad debt + underwater $",
)


def venue_rows(result: VenueResult) -> list[list[str]]:
    return [
        [
            r["venue"],
            f"{r['min_price_usd']:,.2f}",
            str(r["liquidations"]),
            f"{r['eth_sold']:,.1f}",
            _usd(r["slippage_usd"]),
            _usd(r["bad_debt_usd"]),
            _usd(r["underwater_usd"]),
            _usd(r["bad_debt_and_underwater_usd"]),
        ]
        for r in result.summary()
    ]


SLIPPAGE_HEADER = ("venue", "ETH offered", "ETH filled", "average $", "slippage")


def slippage_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            r["venue"],
            f"{r['size']:,.0f}",
            f"{r['filled']:,.1f}",
            f"{r['average_usd']:,.2f}",
            "-" if r["slippage_frac"] is None else f"{100 * r['slippage_frac']:.2f} %",
        ]
        for r in rows
    ]


def render_crossvenue_html(
    halt: HaltResult,
    venues: dict[str, VenueResult],
    slippage: dict[str, list[dict[str, Any]]],
) -> str:
    """One offline page: the halt table and plot, the venue tables and price paths."""
    from matplotlib.figure import Figure

    parts = [page_head("crossmargin: collateral across chains, AMM vs order book")]
    parts.append("<h2>A bridge halts in the middle of a crash</h2>")
    for name, rows in halt_rows(halt).items():
        parts.append(f"<h3>{name}</h3>" + html_table(HALT_HEADER, rows))
    fig = Figure(figsize=(6.5, 3.2))
    ax = fig.add_subplot()
    for name, steps in (("cross-chain", halt.cross_chain), ("one chain", halt.one_chain)):
        ax.plot([s.step for s in steps], [s.bad_debt_usd for s in steps], marker="o", label=name)
    ax.set_xlabel("step")
    usd_axis(ax.yaxis, "cumulative bad debt")
    ax.legend()
    parts.append(f"<figure>{figure_png(fig)}</figure>")
    for label, result in venues.items():
        parts.append(f"<h2>Liquidated into each venue: {label}</h2>")
        parts.append(html_table(VENUE_HEADER, venue_rows(result)))
        parts.append(html_table(SLIPPAGE_HEADER, slippage_rows(slippage[label])))
        fig = Figure(figsize=(6.5, 3.2))
        ax = fig.add_subplot()
        for name, rounds in result.rounds.items():
            ax.plot([r.round for r in rounds], [r.venue_usd for r in rounds], label=name)
        first = next(iter(result.rounds.values()))
        ax.plot([r.round for r in first], [r.outside_usd for r in first], "k--", label="outside")
        ax.set_xlabel("round")
        usd_axis(ax.yaxis, "oracle (venue) price")
        ax.legend()
        parts.append(f"<figure>{figure_png(fig)}</figure>")
    parts.append("</body></html>")
    return "".join(parts)
