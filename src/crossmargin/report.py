"""Rich rendering of margin reports for the terminal.

Names, account ids and every other user string are rendered verbatim, as :class:`Text` (never
parsed as rich markup or emoji codes: an id ``[b]whale[/b]`` shows its brackets and ``[/]``
does not crash). Every table first checks that the figures it shows are finite
(:func:`crossmargin.errors.check_finite`): a NaN or infinite figure is an error naming the
account, never a printed ``inf``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from crossmargin.errors import check_finite

if TYPE_CHECKING:  # types only: the margin command must not import scipy/pandas to print
    from rich.console import Console

    from crossmargin.haircuts.dynamic import HaircutRecommendation
    from crossmargin.margin.results import (
        AccountMargin,
        BucketMargin,
        CapitalComparison,
        Contribution,
        LevelFigures,
        LiquidationPrice,
        WhatIf,
    )
    from crossmargin.portfolio.engine import PortfolioMarginResult
    from crossmargin.risk.stress import ScenarioLibrary, StressResult


def usd(value: float | None, decimals: int = 2) -> str:
    """Format USD with thousands separators; '-' for missing, '∞' for infinite."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "∞"
    return f"{value:,.{decimals}f}"


def usd0(value: float | None) -> str:
    """Whole USD, for wide tables."""
    return usd(value, 0)


def price(value: float | None) -> str:
    if value is None:
        return "-"
    digits = 2 if abs(value) >= 100 else 4 if abs(value) >= 1 else 6
    return f"{value:,.{digits}f}"


def ratio(value: float) -> str:
    """Health ratio WA / WL to 3 decimals; "no debt" where WL is 0 (the ratio is unbounded)."""
    return "no debt" if math.isinf(value) else f"{value:.3f}"


def plain(text: str, style: str = "") -> Text:
    """A user string (name, id, label) shown verbatim: no markup, no emoji codes."""
    return Text(text, style=style)


def _title(text: str) -> Text:
    """A table title holding user strings (rich styles ``str`` titles as ``table.title``)."""
    return Text(text, style="table.title")


def _health(level: LevelFigures) -> Text:
    style = "red" if level.health_usd < 0 else "green"
    return Text(usd(level.health_usd), style=style)


def margin_table(reports: Sequence[AccountMargin], title: str = "Margin") -> Table:
    """One row per account (and per isolated bucket): equity, health at both levels, status."""
    check_finite([r.to_dict() for r in reports])
    table = Table(title=_title(title), header_style="bold")
    table.add_column("account / bucket")
    table.add_column("equity $", justify="right")
    table.add_column("init health $", justify="right")
    table.add_column("maint WA $", justify="right")
    table.add_column("maint WL $", justify="right")
    table.add_column("maint health $", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column("status")
    for report in reports:
        label = report.account_id + ("" if report.mode == "cross" else f" ({report.mode})")
        rows: list[tuple[str, AccountMargin | BucketMargin]] = [(label, report)]
        if report.mode == "isolated":
            rows += [(f"  └ {b.name}", b) for b in report.buckets]
        for name, figures in rows:
            table.add_row(
                plain(name),
                usd(figures.equity_usd),
                _health(figures.init),
                usd(figures.maint.weighted_assets_usd),
                usd(figures.maint.weighted_liabilities_usd),
                _health(figures.maint),
                ratio(figures.maint.health_ratio),
                _status(figures),
            )
    return table


def _status(figures: AccountMargin | BucketMargin) -> Text:
    """An isolated account is liquidatable (or reduce-only) if any of its buckets is."""
    from crossmargin.margin.results import AccountMargin

    if isinstance(figures, AccountMargin):
        liquidatable, reduce_only = figures.liquidatable, not figures.can_open_risk
    else:
        liquidatable, reduce_only = figures.liquidatable, figures.init.health_usd < 0
    if liquidatable:
        return Text("LIQUIDATABLE", style="bold red")
    if reduce_only:
        return Text("reduce only", style="yellow")
    return Text("ok", style="green")


def liquidation_table(reports: Sequence[AccountMargin]) -> Table:
    """Per account (and isolated bucket) and asset: prices where maint health reaches zero."""
    check_finite([r.to_dict() for r in reports])
    table = Table(title="Liquidation prices (maint health = 0, other prices fixed)")
    table.add_column("account / bucket")
    table.add_column("asset")
    table.add_column("price $", justify="right")
    table.add_column("liq. below $", justify="right")
    table.add_column("liq. above $", justify="right")
    table.add_column("move to nearest", justify="right")
    for report in reports:
        groups: list[tuple[str, dict[str, LiquidationPrice], bool]] = [
            (report.account_id, report.liquidation_prices, report.liquidatable)
        ]
        if report.mode == "isolated":
            groups = [
                (f"{report.account_id} └ {b.name}", b.liquidation_prices, b.liquidatable)
                for b in report.buckets
            ]
        for name, prices, underwater in groups:
            for symbol, lp in prices.items():
                nearest = lp.nearest_usd
                move = "-" if nearest is None else f"{nearest / lp.price_usd - 1.0:+.1%}"
                # a crossing is where health changes sign: for an account liquidatable now, a
                # crossing above means "liquidatable below it" (and below: "above it")
                below, above = (
                    (lp.above_usd, lp.below_usd)
                    if underwater
                    else (
                        lp.below_usd,
                        lp.above_usd,
                    )
                )
                if underwater:
                    move = "now" if nearest is None else f"now; {move} restores"
                table.add_row(
                    plain(name),
                    plain(symbol),
                    price(lp.price_usd),
                    price(below),
                    price(above),
                    move,
                )
                name = ""
    return table


def explain_table(rows: Sequence[Contribution], level: str) -> Table:
    """Each balance's and position's contribution to health, largest first within a bucket."""
    check_finite([r.to_dict() for r in rows])
    table = Table(title=f"Why: contributions to {level} health (USD)", header_style="bold")
    table.add_column("account / bucket")
    table.add_column("row")
    table.add_column("qty", justify="right")
    table.add_column("contribution $", justify="right")
    last = None
    ordered = sorted(rows, key=lambda c: (c.account_id, c.bucket, -abs(c.contribution_usd)))
    for row in ordered:
        key = (row.account_id, row.bucket)
        label = f"{row.account_id} └ {row.bucket}" if key != last else ""
        last = key
        style = "red" if row.contribution_usd < 0 else "green"
        table.add_row(
            plain(label),
            plain(f"{row.kind} {row.name}"),
            f"{row.qty:,.6g}",
            Text(usd(row.contribution_usd), style=style),
        )
    return table


def compare_table(rows: Sequence[CapitalComparison]) -> Table:
    """Collateral required under isolated vs cross margin, and what cross frees."""
    check_finite([r.to_dict() for r in rows])
    table = Table(
        title="Capital to add to pass the init check: isolated vs cross vs portfolio margin",
        header_style="bold",
    )
    table.add_column("account")
    for name in (
        "collateral $",
        "add: isolated $",
        "add: cross $",
        "cross frees $",
        "cross/iso",
        "add: portfolio $",
        "IM cross $",
        "IM portfolio $",
    ):
        table.add_column(name, justify="right")
    total_iso = total_cross = total_portfolio = 0.0
    for row in rows:
        total_iso += row.isolated_required_usd
        total_cross += row.cross_required_usd
        share = row.cross_to_isolated
        table.add_row(
            plain(row.account_id),
            usd0(row.collateral_usd),
            usd0(row.isolated_required_usd),
            usd0(row.cross_required_usd),
            Text(usd0(row.freed_usd), style="green" if row.freed_usd > 0 else ""),
            "-" if share is None else f"{share:.1%}",
            "-" if row.portfolio_required_usd is None else usd0(row.portfolio_required_usd),
            usd0(row.cross_requirement_usd),
            "-" if row.portfolio_requirement_usd is None else usd0(row.portfolio_requirement_usd),
        )
        total_portfolio += row.portfolio_required_usd or 0.0
    if len(rows) > 1:
        share_total = total_cross / total_iso if total_iso > 0 else None
        table.add_row(
            Text("total", style="bold"),
            "",
            usd0(total_iso),
            usd0(total_cross),
            usd0(total_iso - total_cross),
            "-" if share_total is None else f"{share_total:.1%}",
            usd0(total_portfolio),
            "",
            "",
        )
    higher = [
        r.account_id
        for r in rows
        if r.portfolio_requirement_usd is not None
        and r.portfolio_requirement_usd > r.cross_requirement_usd
    ]
    if higher:
        table.caption = Text(
            f"IM portfolio > IM cross for {', '.join(higher)}: portfolio margin charges each "
            "underlying's worst loss on the profile's grid (generic: spot +-15 %, vol up, tail "
            "moves damped), summed over underlyings with no offset between them, plus "
            "contingencies on perps, options and collateral; cross charges each asset its "
            "haircut (1 - init weight) on net value and each perp its initial margin fraction, "
            "often less than a 15 % move (docs/portfolio-margin.md, section 10)"
        )
    return table


def print_what_if(console: Console, result: WhatIf) -> None:
    check_finite(result.to_dict())
    console.print(margin_table([result.before], title="Before"))
    console.print(margin_table([result.after], title="After"))
    if result.allowed:
        console.print("Change [green]allowed[/]")
        return
    reasons = [] if result.after.can_open_risk else ["init health < 0 after the change"]
    reasons += list(result.blocked)
    console.print(Text("Change ").append("refused", style="red").append(": " + "; ".join(reasons)))
    console.print("(exit status 3)", style="dim")


def haircut_table(rows: Sequence[HaircutRecommendation], method: str) -> Table:
    """Recommended weights and the components behind them."""
    check_finite([r.to_dict() for r in rows])
    table = Table(title=_title(f"Recommended weights (volatility: {method})"), header_style="bold")
    for name in ("asset", "vol/yr", "maint fall", "init fall", "liquidity"):
        table.add_column(name, justify="left" if name == "asset" else "right")
    for name in ("init AW", "maint AW", "maint LW", "init LW"):
        table.add_column(name, justify="right")
    table.add_column("bound by")
    for rec in rows:
        w = rec.weights
        table.add_row(
            plain(rec.asset),
            f"{rec.volatility_annual:.1%}",
            f"{rec.maint_price_risk_down:.2%}",
            f"{rec.init_price_risk_down:.2%}",
            f"{rec.liquidity_frac:.2%}",
            f"{w.init_asset_weight:.4f}",
            f"{w.maint_asset_weight:.4f}",
            f"{w.maint_liab_weight:.4f}",
            f"{w.init_liab_weight:.4f}",
            plain("; ".join(rec.binding) or "-"),
        )
    return table


def stress_table(
    results: Sequence[StressResult],
    library: ScenarioLibrary,
    baseline: Sequence[AccountMargin],
) -> Table:
    """Each account's maint health now and after each scenario (one block per scenario)."""
    check_finite([r.to_dict() for r in results])
    check_finite([a.to_dict() for a in baseline])
    table = Table(title="Stress: maint health after each scenario", header_style="bold")
    table.add_column("scenario")
    table.add_column("date")
    table.add_column("account")
    table.add_column("maint health now $", justify="right")
    table.add_column("after $", justify="right")
    table.add_column("status")
    from crossmargin.risk.stress import failing_buckets

    now = {a.account_id: a for a in baseline}
    composed: list[str] = []
    for result in results:
        scenario = library.scenarios[result.scenario]
        label = result.scenario + (" *" if scenario.measured else "")
        date = scenario.date.isoformat() if scenario.date else "-"
        for i, after in enumerate(result.accounts):
            table.add_row(
                plain(label if i == 0 else ""),
                date if i == 0 else "",
                plain(after.account_id),
                _health(now[after.account_id].maint),
                _health(after.maint),
                _stress_status(after),
                end_section=i == len(result.accounts) - 1,
            )
        for symbol, move in result.extra_shocks.items():
            composed.append(
                f"{result.scenario}: {symbol} {100 * move.scenario_frac:+.1f} % x --shock "
                f"{100 * move.shock_frac:+.1f} % = {100 * move.total_frac:+.1f} %"
            )
    notes = ["* measured from data; the others cite sources in crossmargin/risk/scenarios.yaml"]
    if composed:
        notes.append("--shock compounds with the scenario: (1 + scenario) x (1 + shock) - 1")
        notes.extend(composed)
    if any(failing_buckets(a) and a.maint.health_usd >= 0 for r in results for a in r.accounts):
        notes.append(
            "an isolated account with a positive total is liquidated bucket by bucket: "
            "the failing buckets are named"
        )
    table.caption = "\n".join(notes)
    return table


def _stress_status(after: AccountMargin) -> Text:
    """The status; an isolated account names its buckets below maint."""
    from crossmargin.risk.stress import failing_buckets

    status = _status(after)
    failing = failing_buckets(after)
    if failing:
        status.append(" (" + ", ".join(failing) + ")")
    return status


def liquidation_tables(result: Any) -> list[Table]:
    """The plan and fills (one row per step), then each liquidated account and the flows."""
    check_finite(result.to_dict())
    steps = Table(title="Liquidation steps")
    for column in ("#", "account", "step", "instrument", "qty", "price", "cost $", "maint $"):
        steps.add_column(column, justify="right" if column in _NUMERIC_STEP else "left")
    steps.add_column("reason", overflow="fold")
    for e, (before, after) in zip(result.events, _step_health(result.events), strict=True):
        where = e.account if e.bucket == "cross" else f"{e.account}/{e.bucket}"
        what = f"{e.instrument} <- {e.paid_with}" if e.kind == "repay" else e.instrument
        steps.add_row(
            str(e.seq),
            plain(where),
            plain(e.kind),
            plain(what),
            f"{e.qty:,.6g}",
            f"{e.price_usd:,.2f}",
            f"{e.slippage_usd + e.liquidator_fee_usd + e.insurance_fee_usd:,.2f}",
            f"{_whole(before)} -> {_whole(after)}",
            plain(e.reason),
        )
    accounts = Table(title="Accounts")
    for column in (
        "account",
        "status",
        "steps",
        "equity before",
        "equity after",
        "maint before",
        "maint after",
    ):
        accounts.add_column(column, justify="left" if column in ("account", "status") else "right")
    for o in result.outcomes:
        accounts.add_row(
            plain(o.account),
            plain(o.status),
            str(o.steps),
            f"{o.equity_before_usd:,.2f}",
            f"{o.equity_after_usd:,.2f}",
            f"{o.maint_health_before_usd:,.2f}",
            f"{o.maint_health_after_usd:,.2f}",
        )
    flows = Table(title="Where the value went (USD)")
    flows.add_column("flow")
    flows.add_column("USD", justify="right")
    for name, value in result.flows.to_dict().items():
        flows.add_row(plain(FLOW_LABELS.get(name, name)), f"{value:,.2f}")
    return [steps, accounts, flows]


#: human names of the liquidation flows (crossmargin.liquidation.engine.Flows)
FLOW_LABELS = {
    "liquidator_usd": "paid to liquidators (fees)",
    "insurance_fund_usd": "insurance fund balance at the end",
    "insurance_fees_usd": "insurance fees collected",
    "insurance_paid_usd": "insurance fund paid out",
    "makers_usd": "slippage gained by counterparties",
    "socialized_usd": "losses socialized",
    "socialized_external_usd": "  of which beyond the batch's depositors",
    "adl_usd": "losses of auto-deleveraged counterparties",
}

#: bankruptcy steps that cover part of a deficit, and the USD each covers
_COVERS = {
    "insurance": lambda e: -e.insurance_flow_usd,
    "socialize": lambda e: e.socialized_usd,
}


def _step_health(events: Sequence[Any]) -> list[tuple[float, float]]:
    """Maint health before -> after each step as shown: the engine gives every step of one
    bankruptcy the whole deficit -> 0; shown instead, each step covers its own part (the fund
    pays 20,000 of 48,708: -48,708 -> -28,708; then socialized: -28,708 -> 0)."""
    shown: list[tuple[float, float]] = []
    running: dict[tuple[str, str], float] = {}
    for e in events:
        before, after = e.maint_health_before_usd, e.maint_health_after_usd
        cover = _COVERS.get(e.kind)
        if cover is not None:
            key = (e.account, e.bucket)
            before = running.get(key, before)
            after = min(before + cover(e), after) if before < after else after
            running[key] = after
        shown.append((before, after))
    return shown


def _whole(value: float) -> str:
    """Whole USD with separators, never "-0"."""
    return f"{value + 0.0 if round(value) != 0 else 0.0:,.0f}"


_NUMERIC_STEP = {"#", "qty", "price", "cost $", "maint $"}


def portfolio_table(reports: Sequence[AccountMargin]) -> Table | None:
    """Why a portfolio account's margin is what it is: worst scenario and each component."""
    check_finite([r.to_dict() for r in reports])
    table = Table(title="Portfolio margin: worst scenario and components", header_style="bold")
    for name in ("account", "profile", "underlying", "worst scenario", "loss $"):
        table.add_column(name, justify="right" if name.endswith("$") else "left")
    for name in ("MM $", "IM $", "contingencies MM / IM $"):
        table.add_column(name, justify="right")
    rows = 0
    for report in reports:
        result = report.portfolio
        if result is None:
            continue
        for i, risk in enumerate(result.underlyings):
            first = i == 0
            table.add_row(
                plain(report.account_id if first else ""),
                plain(result.profile if first else ""),
                plain(risk.name),
                plain(risk.worst_label),
                usd(risk.loss_usd),
                usd(result.maint.requirement_usd) if first else "",
                usd(result.initial.requirement_usd) if first else "",
                f"{usd(result.maint.contingencies.total_usd)} / "
                f"{usd(result.initial.contingencies.total_usd)}"
                if first
                else "",
            )
            rows += 1
    return table if rows else None


def greeks_table(account_id: str, greeks: dict[str, Any]) -> Table:
    """Portfolio Greeks per underlying and expiry (delta in coin and USD)."""
    check_finite({"account_id": account_id, "greeks": greeks})
    table = Table(title=_title(f"Greeks of {account_id}"), header_style="bold")
    table.add_column("underlying / expiry")
    for name in ("delta (coin)", "delta $", "gamma $ per 1%", "vega $ per vol pt", "theta $/day"):
        table.add_column(name, justify="right")
    for name, g in greeks.items():
        table.add_row(
            plain(name, style="bold"),
            f"{g['delta_qty']:,.4f}",
            usd(g["delta_usd"]),
            usd(g["gamma_usd_per_1pct"]),
            usd(g["vega_usd_per_vol_point"]),
            usd(g["theta_usd_per_day"]),
        )
        for expiry, e in g["expiries"].items():
            table.add_row(
                plain(f"  └ {expiry}"),
                f"{e['delta_qty']:,.4f}",
                "",
                "",
                usd(e["vega_usd_per_vol_point"]),
                usd(e["theta_usd_per_day"]),
            )
    return table


def portfolio_summary_table(result: PortfolioMarginResult) -> Table:
    """One portfolio-margin result: MTM, MM and IM with their parts, worst scenario per
    underlying."""
    check_finite(result.to_dict())
    table = Table(title=_title(f"Portfolio margin ({result.profile})"), header_style="bold")
    table.add_column("figure")
    table.add_column("maint $", justify="right")
    table.add_column("initial $", justify="right")
    mm, im = result.maint, result.initial
    table.add_row("mark-to-market", usd(result.mtm_usd), usd(result.mtm_usd))
    table.add_row(
        f"scenario loss x factor ({mm.loss_factor:g} / {im.loss_factor:g})",
        usd(mm.scenario_requirement_usd),
        usd(im.scenario_requirement_usd),
    )
    for name in ("perp_usd", "option_usd", "collateral_usd", "confidence_usd"):
        table.add_row(
            f"  {name.removesuffix('_usd')} contingency",
            usd(getattr(mm.contingencies, name)),
            usd(getattr(im.contingencies, name)),
        )
    table.add_row("requirement", usd(mm.requirement_usd), usd(im.requirement_usd))
    table.add_row(
        Text("margin (MTM - requirement)", style="bold"),
        _signed(mm.margin_usd),
        _signed(im.margin_usd),
    )
    for risk in result.underlyings:
        table.add_row(plain(f"{risk.name}: worst = {risk.worst_label}"), usd(-risk.loss_usd), "")
    return table


def _signed(value: float) -> Text:
    return Text(usd(value), style="green" if value >= 0 else "bold red")
