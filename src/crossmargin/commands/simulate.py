"""Simulation commands (issue #7): ``crossmargin simulate`` and ``crossmargin calibrate``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from crossmargin.commands.common import (
    JsonOpt,
    ShockOpt,
    console,
    emit_json,
    examples,
    few_paths_warning,
    one_line_errors,
    parse_pairs,
    progress_run,
    stage,
)
from crossmargin.errors import InputError
from crossmargin.htmlpage import metric_rows
from crossmargin.report import usd0

if TYPE_CHECKING:
    from crossmargin.margin.arrays import FloatArray, MarketTables
    from crossmargin.simulation.cascade import CascadeConfig

#: ``--scales``' default: crossmargin.simulation.calibrate.DEFAULT_SCALES (a test checks they
#: agree; the command line does not import the simulation to print its help)
DEFAULT_SCALES_TEXT = "0.5,0.75,1,1.25,1.5,2,2.5,3"

BookArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="FILE", help="Portfolio file; omit with --generate N.", show_default=False
    ),
]
GenerateOpt = Annotated[
    int | None,
    typer.Option(
        "--generate", metavar="N", help="Simulate N generated accounts instead of a file."
    ),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", metavar="N", help="Seed of the generated book and the paths.")
]
PathsOpt = Annotated[int, typer.Option("--paths", metavar="N", help="Monte Carlo paths (0: none).")]
HorizonOpt = Annotated[
    int, typer.Option("--horizon-days", metavar="DAYS", help="Path horizon, days.")
]
ReturnsOpt = Annotated[
    Path | None,
    typer.Option(
        "--returns",
        metavar="FILE",
        help="Daily price history: block-bootstrap paths instead of GBM.",
    ),
]
ProxyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--proxy",
        metavar="ASSET=ASSET",
        help="Use another asset's returns for an asset without any, e.g. SOL=ETH.",
    ),
]
ExecutorOpt = Annotated[
    str, typer.Option("--executor", metavar="serial|threads|dask", help="serial, threads or dask.")
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="Dask scheduler tcp://HOST:PORT (implies dask).",
    ),
]
HtmlOpt = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Write an HTML report with plots.")
]
FundOpt = Annotated[
    float, typer.Option("--insurance-fund", metavar="USD", help="Insurance fund, USD.")
]
#: quantiles of the Monte Carlo metrics (crossmargin.simulation.montecarlo.LEVELS)
MC_LEVELS = (0.95, 0.99)
CORRELATION = 0.7  # between risky assets in GBM paths (stated in docs/simulation.md)


def _source(file: Path | None, generate: int | None, seed: int) -> tuple[Any, MarketTables, Any]:
    """(book or generated book, tables, arrays)."""
    from crossmargin.book.io import load_book
    from crossmargin.margin.arrays import compile_accounts, compile_market
    from crossmargin.simulation.generate import generate_book

    if generate is not None:
        if file is not None:
            raise InputError(
                "--generate", generate, "give a portfolio file or --generate, not both"
            )
        generated = generate_book(generate, seed)
        return generated, generated.tables, generated.to_arrays()
    if file is None:
        raise InputError("BOOK", None, "give a portfolio file or --generate N")
    from crossmargin.locations.view import refuse_located

    book = load_book(file)
    # the cascade moves each asset alone: a remote lot would not move with its asset
    refuse_located(
        book,
        "simulate does not model collateral at other locations; "
        "the cross-chain cascade is 'crossmargin crossvenue'",
    )
    tables = compile_market(book)
    return book, tables, compile_accounts(tables, book.accounts, settle_rows=True)


def _paths(
    tables: MarketTables,
    config: CascadeConfig,
    n_paths: int,
    horizon_days: int,
    returns: Path | None,
    proxies: list[str] | None,
    seed: int,
) -> FloatArray:
    if n_paths < 1:
        raise InputError("--paths", n_paths, "must be >= 1")
    import numpy as np

    from crossmargin.simulation.cascade import impact_params
    from crossmargin.simulation.paths import block_bootstrap_returns, gbm_jump_returns

    if returns is None:
        sigma, _ = impact_params(tables, config)
        n = sigma.size
        corr = np.where(np.eye(n) == 1.0, 1.0, CORRELATION)
        return gbm_jump_returns(sigma, corr, n_paths, float(horizon_days), seed=seed)
    from crossmargin.risk.returns import load_returns, map_assets, mapped_returns

    data = load_returns(returns)
    proxy = {k: v for k, v in (p.split("=", 1) for p in proxies or [] if "=" in p)}
    mapping = map_assets(tables.asset_symbols, data, proxies=proxy)
    matrix = mapped_returns(data, mapping)
    return block_bootstrap_returns(matrix, n_paths, horizon_days, seed=seed)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin simulate --generate 2000 --shock ETH=-25% --paths 1000 --html sim.html",
            "crossmargin simulate book.yaml --shock ETH=-25% --modes isolated,cross,portfolio",
        )
    )
    @one_line_errors
    def simulate(
        file: BookArg = None,
        generate: GenerateOpt = None,
        seed: SeedOpt = 0,
        shock: ShockOpt = None,
        paths: PathsOpt = 0,
        horizon_days: HorizonOpt = 1,
        returns: ReturnsOpt = None,
        proxy: ProxyOpt = None,
        modes: Annotated[
            str | None,
            typer.Option(
                "--modes", metavar="MODE,...", help="Compare modes, e.g. isolated,cross,portfolio."
            ),
        ] = None,
        model: Annotated[
            str,
            typer.Option(
                "--model",
                metavar="engine|closeout",
                help="engine (partial liquidation) or closeout (fast).",
            ),
        ] = "engine",
        insurance_fund: FundOpt = 0.0,
        executor: ExecutorOpt = "serial",
        scheduler: SchedulerOpt = None,
        html_out: HtmlOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Liquidation cascade after a shock, modes side by side, Monte Carlo of paths."""
        from crossmargin.liquidation import LiquidationConfig
        from crossmargin.simulation.cascade import CascadeConfig, run_cascade, shocked_prices
        from crossmargin.simulation.executors import make_executor
        from crossmargin.simulation.generate import GeneratedBook
        from crossmargin.simulation.modes import compare_modes
        from crossmargin.simulation.montecarlo import run_monte_carlo
        from crossmargin.simulation.report import render_simulation_html

        if model not in ("engine", "closeout"):
            raise InputError("--model", model, "must be engine or closeout")
        with stage("building the book"):
            source, tables, arrays = _source(file, generate, seed)
        config = CascadeConfig(
            model=model,
            liquidation=LiquidationConfig(insurance_fund_usd=insurance_fund),
        )
        shocks = parse_pairs("--shock", shock)
        out: dict[str, Any] = {}
        cascade = None
        if shocks:
            with stage("liquidation cascade"):
                cascade = run_cascade(tables, arrays, shocked_prices(tables, shocks), config)
        wanted = [m.strip() for m in modes.split(",")] if modes else []
        mode_rows = []
        if wanted:
            if isinstance(source, GeneratedBook) and source.n_accounts > 100_000:
                raise InputError(
                    "--modes", generate, "mode comparison takes at most 100,000 accounts"
                )
            with stage(f"comparing modes: {', '.join(wanted)}"):
                mode_rows = compare_modes(source, shocks, config, wanted)
        mc = None
        if paths:
            with stage(f"drawing {paths:,} paths"):
                log_returns = _paths(tables, config, paths, horizon_days, returns, proxy, seed)
            ex = make_executor(executor, scheduler)
            try:
                mc = progress_run(
                    paths,
                    f"{paths} paths ({ex.name})",
                    lambda step: run_monte_carlo(
                        tables, arrays, log_returns, config, ex, progress=step
                    ),
                )
            finally:
                ex.close()
        if cascade is not None:
            out["cascade"] = cascade.to_dict()
        if mode_rows:
            out["modes"] = [m.to_dict() for m in mode_rows]
        if mc is not None:
            out["monte_carlo"] = mc.to_dict()
            warning = few_paths_warning(paths, MC_LEVELS, "bad-debt VaR and ES", show=not as_json)
            if warning:
                out["warnings"] = [warning]
        if not out:
            raise InputError(
                "--shock", None, "nothing to simulate: give --shock, --modes or --paths"
            )
        if html_out is not None:
            html_out.write_text(
                render_simulation_html("crossmargin simulation", cascade, mode_rows, mc)
            )
        if as_json:
            emit_json(out)
            return
        if cascade is not None:
            console.print(_cascade_table(cascade))
        if mode_rows:
            console.print(_modes_table(mode_rows))
        if mc is not None:
            console.print(_metrics_table(mc.metrics()))
        if html_out is not None:
            console.print(f"HTML report written to {html_out}")

    @app.command(
        "calibrate",
        epilog=examples(
            "crossmargin calibrate --generate 20000 --paths 1000 --target-var99 5000000"
        ),
    )
    @one_line_errors
    def calibrate_command(
        file: BookArg = None,
        generate: GenerateOpt = None,
        seed: SeedOpt = 0,
        paths: PathsOpt = 500,
        horizon_days: HorizonOpt = 1,
        returns: ReturnsOpt = None,
        proxy: ProxyOpt = None,
        target_var99: Annotated[
            float,
            typer.Option(
                "--target-var99", metavar="USD", help="Largest acceptable bad-debt VaR99, USD."
            ),
        ] = 1_000_000.0,
        scales: Annotated[
            str,
            typer.Option(
                "--scales", metavar="X,...", help="Comma-separated scales of margins and haircuts."
            ),
        ] = DEFAULT_SCALES_TEXT,
        haircut_scales: Annotated[
            str | None,
            typer.Option(
                "--haircut-scales",
                metavar="X,...",
                help="Comma-separated haircut scales: a grid with --scales (then margin "
                "fractions only); default: haircuts follow --scales.",
            ),
        ] = None,
        executor: ExecutorOpt = "threads",
        scheduler: SchedulerOpt = None,
        html_out: HtmlOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Scale margins and haircuts: least capital with bad-debt VaR99 <= target; frontier."""
        from crossmargin.book.io import load_book
        from crossmargin.simulation.calibrate import calibrate
        from crossmargin.simulation.cascade import CascadeConfig
        from crossmargin.simulation.executors import make_executor
        from crossmargin.simulation.generate import generate_book
        from crossmargin.simulation.report import render_simulation_html

        grid = _numbers("--scales", scales)
        haircut_grid = (
            None if haircut_scales is None else _numbers("--haircut-scales", haircut_scales)
        )
        n_points = len(grid) * (1 if haircut_grid is None else len(haircut_grid))
        if generate is None and file is not None:
            from crossmargin.locations.view import refuse_located

            book = load_book(file)
            refuse_located(
                book,
                "calibrate does not model collateral at other locations; "
                "the cross-chain cascade is 'crossmargin crossvenue'",
            )
            raise InputError(
                "BOOK",
                str(file),
                f"calibrate runs on generated books (--generate N), not on a file of "
                f"{len(book.accounts)} accounts",
            )
        with stage("generating the book and the paths"):
            generated = generate_book(generate or 10_000, seed)
            config = CascadeConfig(model="closeout")
            log_returns = _paths(
                generated.tables, config, paths, horizon_days, returns, proxy, seed
            )
        warning = few_paths_warning(paths, (0.99,), "bad-debt VaR and ES", show=not as_json)
        ex = make_executor(executor, scheduler)
        try:
            result = progress_run(
                n_points,
                f"{n_points} parameter sets x {paths} paths",
                lambda step: calibrate(
                    generated, log_returns, target_var99, grid, config, ex, step, haircut_grid
                ),
            )
        finally:
            ex.close()
        if html_out is not None:
            html_out.write_text(
                render_simulation_html("crossmargin calibration", calibration=result)
            )
        if as_json:
            emit_json({**result.to_dict(), **({"warnings": [warning]} if warning else {})})
            return
        table = Table(title=f"Margin scale vs bad-debt VaR99 (target {usd0(target_var99)} USD)")
        for name in ("scale", "capital $", "VaR99 $", "ES99 $", "P(bad debt)", "efficient"):
            table.add_column(name, justify="right")
        for p in result.frontier:
            mark = " <" if p == result.recommended else ""
            table.add_row(
                f"{p.label}{mark}",
                usd0(p.capital_required_usd),
                usd0(p.bad_debt_var99_usd),
                usd0(p.bad_debt_es99_usd),
                f"{p.prob_bad_debt:.3f}",
                "yes" if p.efficient else "no",
            )
        console.print(table)
        rec = result.recommended
        console.print(
            "recommended: none on the grid meets the target"
            if rec is None
            else f"recommended: scale x{rec.label} (capital {usd0(rec.capital_required_usd)} USD)"
        )


def _numbers(option: str, text: str) -> list[float]:
    """Comma-separated numbers of ``option``; errors name the option and the text."""
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise InputError(option, text, "expected comma-separated numbers") from None


def _cascade_table(result: Any) -> Table:
    table = Table(title=f"Cascade: {len(result.rounds)} rounds, converged {result.converged}")
    for name in ("round", "liquidatable", "notional $", "bad debt $", "insurance fund $", "prices"):
        table.add_column(name, justify="left" if name == "prices" else "right")
    first = result.rounds[0].price_usd
    for r in result.rounds:
        moved = ", ".join(
            f"{s} {100 * (p / first[s] - 1):+.1f}%"
            for s, p in r.price_usd.items()
            if abs(p / first[s] - 1) > 5e-4
        )
        table.add_row(
            str(r.round),
            f"{r.liquidatable_groups:,}",
            usd0(r.liquidated_notional_usd),
            usd0(r.bad_debt_usd),
            usd0(r.insurance_fund_usd),
            moved or "-",
        )
    return table


def _modes_table(rows: list[Any]) -> Table:
    table = Table(title="Isolated vs cross vs portfolio: capital required and risk under the shock")
    for name in (
        "mode",
        "capital $",
        "top-up $",
        "liquidated",
        "notional $",
        "bad debt $",
        "rounds",
        "liquidation",
    ):
        table.add_column(name, justify="left" if name == "mode" else "right")
    for m in rows:
        table.add_row(
            m.mode,
            usd0(m.capital_required_usd),
            usd0(m.top_up_usd),
            f"{m.liquidated_accounts:,}",
            "-"
            if not math.isfinite(m.liquidated_notional_usd)
            else usd0(m.liquidated_notional_usd),
            usd0(m.bad_debt_usd),
            str(m.rounds),
            m.liquidation,
        )
    return table


def _metrics_table(metrics: dict[str, float]) -> Table:
    table = Table(title="Monte Carlo")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in metric_rows(metrics):
        table.add_row(label, value)
    return table


__all__ = ["register"]
