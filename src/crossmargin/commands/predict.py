"""Prediction commands (issue #16): ``crossmargin predict`` and ``crossmargin train``.

Heavy modules (scikit-learn, pandas, matplotlib) are imported inside the commands, so that the
rest of the CLI starts as fast as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from crossmargin.commands.common import (
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
    stage,
)
from crossmargin.errors import InputError

HtmlOpt = Annotated[
    Path | None, typer.Option("--html", metavar="FILE", help="Write an HTML report with plots.")
]
SeedOpt = Annotated[
    int, typer.Option("--seed", metavar="N", help="Seed of the simulation / the paths.")
]


def _p(x: float | None) -> str:
    if x is None:
        return "-"
    if 0.0 < x < 1e-12:
        return "<1e-12"
    return f"{x:.2e}" if 0.0 < x < 1e-3 else f"{x:.4f}"


def _accounts_table(result: dict[str, Any]) -> Table:
    accounts = result["accounts"]
    has_mc = any("monte_carlo" in a for a in accounts)
    has_model = any("learned" in a for a in accounts)
    table = Table(title=f"Probability of liquidation within {result['horizon']}")
    columns = ["account", "baseline", "factor", "liq. price", "move", "dist. (sd)"]
    if has_mc:
        columns.append("Monte Carlo ± se")
    if has_model:
        columns += ["learned", "drivers"]
    for name in columns:
        table.add_column(
            name, justify="left" if name in ("account", "factor", "drivers") else "right"
        )
    for a in accounts:
        b = a["baseline"]
        move = b.get("move_to_liquidation_pct")
        price = b.get("liquidation_price_usd")
        row = [
            escape(a["account"]),
            _p(b["probability"]),
            f"{b['asset']} {b['direction']}" if b.get("asset") else "-",
            "-" if price is None else f"{price:,.2f}",
            "-" if move is None else f"{move:+.1f}%",
            "-" if b.get("distance_sd") is None else f"{b['distance_sd']:.2f}",
        ]
        if has_mc:
            mc = a["monte_carlo"]
            row.append(f"{_p(mc['probability'])} ± {_p(mc['stderr'])}")
        if has_model:
            learned = a["learned"]
            flag = " !" if learned.get("outside_training_range") else ""
            row.append(_p(learned["probability"]) + flag)
            row.append(
                escape(", ".join(f"{d['feature']} {d['effect']:+.2g}" for d in learned["drivers"]))
            )
        table.add_row(*row)
    return table


def _wave_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"Liquidation wave in the next {result['minutes_ahead']} min "
        f"(> {result['threshold_usd']:,.0f} USD liquidated; training rate "
        f"{result['base_rate_train']:.3f})"
    )
    for name in ("minute (UTC)", "learned", "analytic", "drivers"):
        table.add_column(name, justify="right" if name in ("learned", "analytic") else "left")
    for row in result["rows"]:
        table.add_row(
            row["time"],
            _p(row["probability"]),
            _p(row["analytic"]),
            escape(", ".join(f"{d['feature']} {d['effect']:+.2g}" for d in row["drivers"])),
        )
    return table


def _scores_rich(evaluation: Any) -> Table:
    from crossmargin.predict.training import SCORE_HEADER, scores_table

    split = evaluation.split
    table = Table(
        title=f"Held-out scores ({evaluation.kind}; test rows {split.test[1] - split.test[0]:,})"
    )
    for name in SCORE_HEADER:
        table.add_column(name, justify="left" if name == "model" else "right")
    for row in scores_table(evaluation):
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command("predict", epilog=examples("crossmargin predict book.yaml --horizon 1d"))
    @one_line_errors
    def predict_command(
        file: Annotated[
            Path | None,
            typer.Argument(
                metavar="FILE", help="Portfolio file (omit with --market).", show_default=False
            ),
        ] = None,
        horizon: Annotated[
            str | None,
            typer.Option(
                "--horizon",
                metavar="DURATION",
                help="e.g. 15min, 1h, 1d (default 1h; with --model: the model's).",
            ),
        ] = None,
        returns: Annotated[
            list[Path] | None,
            typer.Option(
                "--returns",
                metavar="FILE",
                help="Daily price history for EWMA vols and correlation.",
            ),
        ] = None,
        proxy: Annotated[
            list[str] | None,
            typer.Option(
                "--proxy",
                metavar="ASSET=ASSET",
                help="Use another asset's returns for an asset without any, e.g. SOL=ETH.",
            ),
        ] = None,
        model_file: Annotated[
            Path | None, typer.Option("--model", help="A model file from crossmargin train.")
        ] = None,
        market: Annotated[
            Path | None,
            typer.Option(
                "--market",
                metavar="FILE",
                help="Minute file: liquidation-wave probability (needs a "
                "market --model) instead of a book.",
            ),
        ] = None,
        last: Annotated[
            int, typer.Option("--last", metavar="MINUTES", help="With --market: minutes shown.")
        ] = 5,
        paths: Annotated[
            int,
            typer.Option(
                "--paths", metavar="N", help="Monte Carlo paths of the whole portfolio (0: none)."
            ),
        ] = 0,
        steps: Annotated[
            int, typer.Option("--steps", metavar="N", help="Monte Carlo steps per path.")
        ] = 24,
        seed: SeedOpt = 0,
        account: Annotated[
            list[str] | None,
            typer.Option("--account", metavar="ID", help="Only this account (repeatable)."),
        ] = None,
        html_out: HtmlOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Probability of liquidation within a horizon, per account (or a market's wave).

        First-passage baseline, optional Monte Carlo and learned model, with drivers; with
        --market, the probability of a liquidation wave in the next minutes."""
        from crossmargin.commands.risk import parse_proxies
        from crossmargin.predict.api import parse_horizon, predict_book, predict_wave
        from crossmargin.predict.model import load_model

        days = parse_horizon(horizon) if horizon is not None else None
        if paths < 0:
            raise InputError("--paths", paths, "must be >= 0")
        if market is not None:
            if file is not None:
                raise InputError("--market", str(market), "give a portfolio file or --market")
            if model_file is None:
                raise InputError("--model", None, "--market needs a market model (train market)")
            from crossmargin.predict.market import load_minutes

            wave_model = load_model(model_file, kind="market")
            result = predict_wave(load_minutes(market), wave_model, last)
            if as_json:
                emit_json(result)
            else:
                console.print(_wave_table(result))
            return
        if file is None:
            raise InputError("BOOK", None, "give a portfolio file (or --market FILE)")
        from crossmargin.book.io import load_book

        model = load_model(model_file, kind="accounts") if model_file is not None else None
        book = load_book(file)
        with stage("predicting" + (f" ({paths:,} Monte Carlo paths)" if paths else "")):
            result = predict_book(
                book,
                days,
                [str(r) for r in returns or []],
                parse_proxies(proxy),
                model,
                paths,
                steps,
                seed,
                account,
            )
        if html_out is not None:
            from crossmargin.predict.report import render_predict_html

            html_out.write_text(
                render_predict_html(f"crossmargin predict: {file.name}", result), "utf-8"
            )
        if as_json:
            emit_json({**result, "html": None if html_out is None else str(html_out)})
            return
        console.print(_accounts_table(result))
        for note in result["notes"]:
            console.print(note, markup=False, highlight=False, soft_wrap=True)
        if html_out is not None:
            console.print(f"HTML report written to {html_out}", markup=False)

    @app.command("train", epilog=examples("crossmargin train accounts --out model.json"))
    @one_line_errors
    def train_command(
        target: Annotated[
            str,
            typer.Argument(
                metavar="market|accounts",
                help="market (liquidation wave) or accounts (simulated book).",
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", metavar="FILE", help="Model file: .json or .pkl.")
        ],
        data: Annotated[
            Path | None,
            typer.Option("--data", metavar="FILE", help="market: the Binance minute file."),
        ] = None,
        minutes: Annotated[
            int, typer.Option("--minutes", metavar="MINUTES", help="market: minutes ahead (k).")
        ] = 15,
        quantile: Annotated[
            float,
            typer.Option(
                "--quantile", metavar="PROB", help="market: wave threshold quantile (train)."
            ),
        ] = 0.95,
        epochs: Annotated[
            int, typer.Option("--epochs", metavar="N", help="accounts: epochs (time).")
        ] = 400,
        accounts: Annotated[
            int, typer.Option("--accounts", metavar="N", help="accounts: accounts per epoch.")
        ] = 200,
        horizon: Annotated[
            str,
            typer.Option("--horizon", metavar="DURATION", help="accounts: horizon, e.g. 1d or 1h."),
        ] = "1d",
        steps: Annotated[
            int,
            typer.Option("--steps", metavar="N", help="accounts: monitoring times per horizon."),
        ] = 24,
        calibration: Annotated[
            str, typer.Option("--calibration", metavar="METHOD", help="auto, isotonic or sigmoid.")
        ] = "auto",
        seed: SeedOpt = 0,
        html_out: HtmlOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Retrain a liquidation model and save it with its provenance and hash.

        Time-ordered split, calibrated; held-out scores are reported against the analytic
        baseline and the base rate."""
        from crossmargin.predict.api import parse_horizon
        from crossmargin.predict.training import train_accounts, train_market

        if out.suffix not in (".json", ".pkl"):
            raise InputError("--out", str(out), "the model file must end in .json or .pkl")
        if calibration not in ("auto", "isotonic", "sigmoid"):
            raise InputError("--calibration", calibration, "must be auto, isotonic or sigmoid")
        if target == "market":
            if data is None:
                raise InputError("--data", None, "train market needs the minute file (--data)")
            from crossmargin.predict.market import load_minutes

            with stage("training the market model"):
                model, evaluation = train_market(
                    load_minutes(data), minutes, quantile, calibration, seed
                )
        elif target == "accounts":
            from crossmargin.predict.accounts import simulate_accounts

            with stage(f"simulating {epochs:,} epochs x {accounts:,} accounts"):
                history = simulate_accounts(epochs, accounts, parse_horizon(horizon), steps, seed)
            with stage("training the accounts model"):
                model, evaluation = train_accounts(history, calibration, seed)
        else:
            raise InputError("TARGET", target, "must be market or accounts")
        digest = model.save(out)
        if html_out is not None:
            from crossmargin.predict.report import render_training_html

            html_out.write_text(
                render_training_html(f"crossmargin train {target}", evaluation, model), "utf-8"
            )
        if as_json:
            emit_json(
                {
                    "model": str(out),
                    "content_sha256": digest,
                    "evaluation": evaluation.to_dict(),
                    "html": None if html_out is None else str(html_out),
                }
            )
            return
        console.print(_scores_rich(evaluation))
        verdict = "beats" if evaluation.learned_beats_baseline_brier else "does NOT beat"
        console.print(
            f"learned {verdict} the analytic baseline's Brier score; calibration "
            f"{evaluation.calibration}; model written to {out} (sha256 {digest[:16]}...)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        if html_out is not None:
            console.print(f"HTML report written to {html_out}", markup=False)


__all__ = ["register"]
