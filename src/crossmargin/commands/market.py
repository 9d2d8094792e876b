"""Market-data commands: ``haircuts`` and ``download``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossmargin.commands.common import (
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
)
from crossmargin.errors import InputError


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin haircuts prices.csv --vol garch",
            "crossmargin haircuts prices.csv --assets BTC,ETH --confidence 0.995 --size-usd"
            " 5000000",
        )
    )
    @one_line_errors
    def haircuts(
        data: Annotated[
            Path,
            typer.Argument(metavar="FILE", help="Price history CSV (shared layouts or OHLCV)."),
        ],
        assets: Annotated[
            str | None,
            typer.Option("--assets", metavar="ASSET,...", help="Comma-separated assets to keep."),
        ] = None,
        method: Annotated[
            str,
            typer.Option("--vol", metavar="METHOD", help="ewma, garch, parkinson or garman-klass."),
        ] = "ewma",
        horizon_days: Annotated[
            float, typer.Option("--horizon-days", metavar="DAYS", help="Maint liquidation horizon.")
        ] = 1.0,
        confidence: Annotated[
            float, typer.Option("--confidence", metavar="PROB", help="Maint confidence.")
        ] = 0.99,
        init_horizon_days: Annotated[
            float,
            typer.Option("--init-horizon-days", metavar="DAYS", help="Init liquidation horizon."),
        ] = 3.0,
        init_confidence: Annotated[
            float, typer.Option("--init-confidence", metavar="PROB", help="Init confidence.")
        ] = 0.995,
        size_usd: Annotated[
            float,
            typer.Option("--size-usd", metavar="USD", help="Position size charged for liquidity."),
        ] = 1_000_000.0,
        as_json: JsonOpt = False,
    ) -> None:
        """Recommended init/maint asset and liability weights from volatility and liquidity."""
        from typing import cast

        from pydantic import ValidationError
        from rich.console import Console
        from rich.progress import Progress

        from crossmargin.book.io import input_error_from_validation
        from crossmargin.haircuts.dynamic import (
            DynamicHaircutConfig,
            VolatilityMethod,
            recommend_from_history,
        )
        from crossmargin.market.loaders import load_history
        from crossmargin.report import haircut_table

        if method not in ("ewma", "garch", "parkinson", "garman-klass"):
            raise InputError("--vol", method, "must be ewma, garch, parkinson or garman-klass")
        history = load_history(data)
        if assets:
            wanted = [a.strip() for a in assets.split(",") if a.strip()]
            unknown = [a for a in wanted if a not in history]
            if unknown:
                raise InputError("--assets", unknown[0], f"not in the file (has {sorted(history)})")
            history = {a: history[a] for a in wanted}
        try:
            config = DynamicHaircutConfig(
                maint_horizon_days=horizon_days,
                maint_confidence=confidence,
                init_horizon_days=init_horizon_days,
                init_confidence=init_confidence,
            )
        except ValidationError as exc:
            raise input_error_from_validation(exc) from None
        recommendations = []
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            task = progress.add_task("estimating", total=len(history))
            for asset, frame in history.items():
                recommendations.append(
                    recommend_from_history(
                        asset,
                        frame,
                        config,
                        method=cast(VolatilityMethod, method),
                        position_usd=size_usd,
                    )
                )
                progress.advance(task)
        if as_json:
            emit_json({"method": method, "assets": [r.to_dict() for r in recommendations]})
        else:
            console.print(haircut_table(recommendations, method))

    @app.command(
        epilog=examples(
            "crossmargin download binance BTC/USDT --out btc.csv",
            "crossmargin download binance ETH/USDT --timeframe 1h --since 2025-01-01 --out eth.csv",
        )
    )
    @one_line_errors
    def download(
        exchange: Annotated[
            str, typer.Argument(metavar="EXCHANGE", help="ccxt exchange id, e.g. binance.")
        ],
        symbol: Annotated[
            str, typer.Argument(metavar="SYMBOL", help="Market symbol, e.g. BTC/USDT.")
        ],
        out: Annotated[Path, typer.Option("--out", metavar="FILE", help="CSV file to write.")],
        timeframe: Annotated[
            str, typer.Option("--timeframe", metavar="TIMEFRAME", help="1m, 1h, 1d, ...")
        ] = "1d",
        since: Annotated[
            str | None, typer.Option("--since", metavar="DATE", help="First date (UTC).")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--until", metavar="DATE", help="Last date (UTC).")
        ] = None,
    ) -> None:
        """Download OHLCV candles through ccxt.

        Needs the network and the optional extra: pip install 'crossmargin\\[download]'."""
        from crossmargin.market.download import ccxt_exchange, download_ohlcv, save_ohlcv

        frame = download_ohlcv(ccxt_exchange(exchange), symbol, timeframe, since, until)
        path = save_ohlcv(frame, out)
        console.print(f"{len(frame)} candles of {symbol} {timeframe} written to {path}")
