"""Risk-analytics commands (issue #6): ``crossmargin risk`` and ``crossmargin hedge``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    console,
    emit_json,
    examples,
    few_paths_warning,
    one_line_errors,
)
from crossmargin.errors import CrossmarginError, InputError, check_finite
from crossmargin.report import plain, usd0

ReturnsOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--returns",
        metavar="FILE",
        help="Price file(s) for daily returns: the Bitstamp ASSET:field layout or an OHLCV CSV "
        "(repeatable); intraday prices are aggregated to UTC days, coarser ones refused.",
    ),
]
AccountOpt = Annotated[
    str | None, typer.Option("--account", metavar="ID", help="Only this account.")
]
ProxyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--proxy",
        metavar="ASSET=ASSET",
        help="Use another asset's returns for an asset without any, e.g. SOL=ETH.",
    ),
]


def parse_proxies(pairs: list[str] | None) -> dict[str, str]:
    """``["SOL=ETH"]`` -> ``{"SOL": "ETH"}``."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, target = pair.partition("=")
        if not sep or not name or not target:
            raise InputError("--proxy", pair, "expected ASSET=ASSET_WITH_RETURNS")
        out[name.strip()] = target.strip()
    return out


_usd = usd0

#: Most Monte Carlo paths (memory grows as paths x assets x revaluations)
MAX_PATHS = 1_000_000
#: Largest hedge budget, USD notional
MAX_BUDGET_USD = 1e15


def _pvalue(p: float) -> Text:
    return Text(f"{p:.3f}", style="red" if p < 0.05 else "green")


def _risk_table(report: Any) -> Table:
    from crossmargin.risk.report import VAR_COLUMNS, var_cells

    risk = report.risk
    table = Table(
        title=Text(
            f"VaR / ES of {risk.account_id} (USD; equity {_usd(risk.equity_usd)}, "
            f"maint health {_usd(risk.health_usd)})",
            style="table.title",
        ),
        header_style="bold",
    )
    for name in (*VAR_COLUMNS, "P(liq.)"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for f in risk.figures:
        liq = "-" if f.prob_liquidation is None else f"{f.prob_liquidation:.2%}"
        table.add_row(*var_cells(f), liq)
    return table


def _pool_table(pool: Any) -> Table:
    from crossmargin.risk.report import VAR_COLUMNS, var_cells

    table = Table(
        title=f"Pool of {len(pool.accounts)} accounts (USD; equity {_usd(pool.equity_usd)}, "
        f"maint health {_usd(pool.health_usd)}, bad debt {_usd(pool.bad_debt_usd)})",
        header_style="bold",
    )
    for name in (*VAR_COLUMNS, "bad-debt VaR", "bad-debt ES", "liquidatable"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for f in pool.figures:
        table.add_row(
            *var_cells(f),
            _usd(f.bad_debt_var_usd),
            _usd(f.bad_debt_es_usd),
            f"{f.mean_liquidatable:.2f}",
        )
    return table


def _backtest_table(report: Any) -> Table:
    table = Table(
        title=Text(
            f"Backtests of {report.risk.account_id} (1-day equity VaR, rolling)",
            style="table.title",
        ),
        header_style="bold",
    )
    for name in (
        "method",
        "conf.",
        "days",
        "exceptions",
        "expected",
        "Kupiec p",
        "independence p",
        "cond. cov. p",
    ):
        table.add_column(name, justify="left" if name == "method" else "right")
    for b in report.backtests:
        table.add_row(
            b.method,
            f"{b.confidence:.1%}",
            str(b.days),
            str(b.exceptions),
            f"{b.expected:.1f}",
            _pvalue(b.kupiec.p_value),
            _pvalue(b.independence.p_value),
            _pvalue(b.conditional.p_value),
        )
    return table


def _wrong_way_table(reports: list[Any]) -> Table:
    table = Table(title="Wrong-way risk", header_style="bold")
    for name in ("account", "collateral", "corr.", "joint 5% tail", "tail loss", "flag"):
        table.add_column(name, justify="left" if name in ("account", "flag") else "right")
    for report in reports:
        w = report.wrong_way
        table.add_row(
            plain(w.account_id),
            _usd(w.collateral_usd),
            f"{w.correlation:+.2f}",
            f"{w.joint_tail_prob:.2%}",
            _usd(w.joint_tail_loss_usd),
            Text("; ".join(w.reasons), style="red") if w.flagged else Text("-"),
        )
    return table


def _hedge_table(plan: Any, label: str) -> Table:
    table = Table(
        title=Text(
            f"Hedges for {plan.account_id} ({label}, {plan.confidence:.0%} 1-day)",
            style="table.title",
        ),
        header_style="bold",
    )
    for name in (
        "",
        "trades",
        "maint health",
        "stressed health",
        "equity VaR",
        "health VaR",
        "liquidation prices",
    ):
        table.add_column(
            name, justify="left" if name in ("", "trades", "liquidation prices") else "right"
        )
    rows = [("before", plan.before), ("delta hedge", plan.delta_hedge)]
    if plan.budget_hedge is not None:
        rows.append((f"budget {_usd(plan.budget_usd)}", plan.budget_hedge))
    for name, state in rows:
        trades = ", ".join(f"{t.market} {t.qty:+,.4g}" for t in state.trades) or "-"
        prices = (
            ", ".join(f"{k} {v:,.6g}" for k, v in state.liquidation_prices.items() if v is not None)
            or "-"
        )
        table.add_row(
            plain(name),
            plain(trades),
            _usd(state.maint_health_usd),
            _usd(state.stressed_health_usd),
            _usd(state.equity_var_usd),
            _usd(state.health_var_usd),
            plain(prices),
        )
    return table


def _print_skipped(skipped: dict[str, str]) -> None:
    for account_id, reason in skipped.items():
        console.print(
            f"[yellow]skipped {escape(account_id)}:[/] {escape(reason)}",
            highlight=False,
            emoji=False,
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        "risk",
        epilog=examples(
            "crossmargin risk book.yaml --returns prices.csv --proxy SOL=ETH --html report.html",
            "crossmargin risk book.yaml --returns prices.csv --proxy SOL=ETH --account"
            " eth-levered --paths 5000",
        ),
    )
    @one_line_errors
    def risk_command(
        file: FileArg,
        returns: ReturnsOpt = None,
        account: AccountOpt = None,
        proxy: ProxyOpt = None,
        html_path: Annotated[
            Path | None,
            typer.Option("--html", metavar="FILE", help="Write a self-contained HTML report here."),
        ] = None,
        paths: Annotated[
            int, typer.Option("--paths", metavar="N", help="Monte Carlo paths.")
        ] = 20_000,
        seed: Annotated[
            int, typer.Option("--seed", metavar="N", help="Monte Carlo seed.")
        ] = 20_261_125,
        window: Annotated[
            int, typer.Option("--window", metavar="DAYS", help="Backtest window, days.")
        ] = 250,
        as_json: JsonOpt = False,
    ) -> None:
        """VaR / ES by five methods, backtests and wrong-way risk, per account and pool.

        99 % and 97.5 %, 1 and 10 days; without --account also the whole pool (equity, health
        and bad debt)."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.risk.pool import pool_risk
        from crossmargin.risk.report import analyze_account, render_html
        from crossmargin.risk.returns import load_returns

        if not returns:
            raise InputError("--returns", None, "give at least one price file for the returns")
        if not 0 <= seed < 2**63:
            raise InputError("--seed", seed, "must be from 0 to 2**63 - 1")
        if paths > MAX_PATHS:
            raise InputError("--paths", paths, f"at most {MAX_PATHS:,} Monte Carlo paths")
        book = located_view(load_book(file)).book  # remote lots take their asset's returns
        data = load_returns(returns)
        proxies = parse_proxies(proxy)
        ids = [book.account(account).id] if account else [a.id for a in book.accounts]
        warning = few_paths_warning(
            paths, (0.975, 0.99), "Monte Carlo VaR and ES", show=not as_json
        )
        reports, skipped = [], {}
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            task = progress.add_task("risk analytics", total=len(ids))
            for account_id in ids:
                progress.update(task, description=escape(f"risk analytics: {account_id}"))
                try:
                    reports.append(
                        analyze_account(
                            book,
                            account_id,
                            data,
                            proxies=proxies,
                            n_paths=paths,
                            seed=seed,
                            window=window,
                        )
                    )
                except CrossmarginError as exc:
                    if account:  # the one account asked for: a plain error
                        raise
                    skipped[account_id] = str(exc)
                progress.advance(task)
            pool = None
            if not account and len(ids) > 1:
                progress.update(task, description="risk analytics: the pool")
                try:
                    pool = pool_risk(book, data, proxies=proxies, n_paths=paths, seed=seed)
                except CrossmarginError as exc:
                    skipped["(pool)"] = str(exc)
        if html_path is not None:
            html_path.write_text(
                render_html(f"crossmargin risk report: {file.name}", reports, skipped, pool),
                "utf-8",
            )
        if not as_json:  # the tables show a subset of the JSON: the same finiteness check
            check_finite(
                {
                    "accounts": [r.to_dict() for r in reports],
                    "pool": None if pool is None else pool.to_dict(),
                }
            )
        if as_json:
            emit_json(
                {
                    "accounts": [r.to_dict() for r in reports],
                    "pool": None if pool is None else pool.to_dict(),
                    "skipped": skipped,
                    "html": None if html_path is None else str(html_path),
                    "sampling": data.sampling,
                    **({"warnings": [warning]} if warning else {}),
                }
            )
            return
        for symbol, how in data.sampling.items():
            if how != "1d":  # intraday prices aggregated to UTC days
                console.print(f"returns of {symbol}: {how}", markup=False, highlight=False)
        for report in reports:
            console.print(_risk_table(report))
            if report.backtests:
                console.print(_backtest_table(report))
        if reports:
            console.print(_wrong_way_table(reports))
        if pool is not None:
            console.print(_pool_table(pool))
        _print_skipped(skipped)
        if html_path is not None:
            console.print(f"HTML report written to {html_path}")

    @app.command(
        "hedge",
        epilog=examples("crossmargin hedge book.yaml --account eth-levered --budget-usd 250000"),
    )
    @one_line_errors
    def hedge_command(
        file: FileArg,
        account: AccountOpt = None,
        budget_usd: Annotated[
            float | None,
            typer.Option(
                "--budget-usd",
                metavar="USD",
                help="Trade-size budget (USD notional) for the health-maximizing hedge.",
            ),
        ] = None,
        returns: ReturnsOpt = None,
        proxy: ProxyOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Delta-neutral perp trades, and the trade maximizing stressed maint health."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.risk.hedge import hedge_scenarios, suggest_hedges
        from crossmargin.risk.returns import load_returns

        if budget_usd is not None and not abs(budget_usd) <= MAX_BUDGET_USD:
            raise InputError("--budget-usd", budget_usd, f"at most {MAX_BUDGET_USD:g} USD")
        book = located_view(load_book(file)).book  # remote lots are hedged as their asset
        data = load_returns(returns) if returns else None
        proxies = parse_proxies(proxy)
        ids = [book.account(account).id] if account else [a.id for a in book.accounts]
        plans, skipped = [], {}
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            task = progress.add_task("hedging", total=len(ids))
            for account_id in ids:
                try:
                    scen, symbols, mapping, label = hedge_scenarios(book, account_id, data, proxies)
                    plan = suggest_hedges(
                        book, account_id, scen, symbols, budget_usd=budget_usd, mapping=mapping
                    )
                    plans.append((plan, label))
                except CrossmarginError as exc:
                    if account:
                        raise
                    skipped[account_id] = str(exc)
                progress.advance(task)
        if not as_json:
            check_finite({"accounts": [p.to_dict() for p, _ in plans]})
        if as_json:
            emit_json(
                {
                    "accounts": [{**p.to_dict(), "scenarios": label} for p, label in plans],
                    "skipped": skipped,
                }
            )
            return
        for plan, label in plans:
            console.print(_hedge_table(plan, label))
        _print_skipped(skipped)
