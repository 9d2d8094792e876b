r"""The risk report: every analysis of one account, and a self-contained HTML page.

:func:`analyze_account` runs, on the same return data, the VaR/ES of all methods
(:mod:`crossmargin.risk.var`), the rolling backtests (:mod:`crossmargin.risk.backtest`), the
wrong-way figures (:mod:`crossmargin.risk.wrongway`), a spot x vol scenario grid and the
shipped stress scenarios, all revalued through the kernel. :func:`render_html` writes one HTML
file with the figures inlined as base64 PNG (matplotlib's object API): no external file, no
script, no network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.book.schema import Book
from crossmargin.errors import InputError
from crossmargin.htmlpage import STYLE, figure_png, html_table, usd_axis
from crossmargin.risk.backtest import BacktestResult, backtest_account
from crossmargin.risk.pool import PoolRisk
from crossmargin.risk.returns import MIN_OBSERVATIONS, ReturnData
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import (
    DEFAULT_PATHS,
    DEFAULT_SEED,
    AccountRisk,
    account_returns,
    risk_of_returns,
)
from crossmargin.risk.wrongway import WrongWayRisk, wrong_way_risk

FloatArray = npt.NDArray[np.float64]

#: spot moves (relative, every non-stable asset together) and option-vol moves of the grid
SPOT_SHOCKS = (-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.5)
VOL_SHOCKS = (-0.5, -0.25, 0.0, 0.25, 0.5, 1.0)


@dataclass(frozen=True, eq=False)
class AccountReport:
    """Everything the risk report shows for one account."""

    risk: AccountRisk
    backtests: list[BacktestResult]
    wrong_way: WrongWayRisk
    deposits_usd: dict[str, float]
    spot_shocks: tuple[float, ...]
    vol_shocks: tuple[float, ...]
    grid_health_usd: FloatArray  # [n_vol, n_spot] maint health
    stress_names: tuple[str, ...]
    stress_health_usd: FloatArray  # [n_scenarios] maint health

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.risk.to_dict(),
            "backtests": [b.to_dict() for b in self.backtests],
            "wrong_way": self.wrong_way.to_dict(),
            "deposits_usd": self.deposits_usd,
            "stress_maint_health_usd": dict(
                zip(self.stress_names, self.stress_health_usd.tolist(), strict=True)
            ),
            "spot_vol_grid": {
                "spot_shocks": list(self.spot_shocks),
                "vol_shocks": list(self.vol_shocks),
                "maint_health_usd": self.grid_health_usd.tolist(),
            },
        }


def spot_vol_grid(
    revaluer: ScenarioRevaluer,
    risky: npt.NDArray[np.bool_],
    spot_shocks: Sequence[float] = SPOT_SHOCKS,
    vol_shocks: Sequence[float] = VOL_SHOCKS,
) -> FloatArray:
    """Maint health ``[n_vol, n_spot]`` with every ``risky`` asset moved by the spot shock and
    every option vol by the vol shock (one kernel batch)."""
    for s in spot_shocks:
        if not s > -1.0:
            raise InputError("spot_shocks", s, "a price cannot fall 100 % or more")
    spot = np.log1p(np.asarray(spot_shocks, dtype=np.float64))
    vols = np.asarray(vol_shocks, dtype=np.float64)
    r = np.repeat(spot[None, :], vols.size, axis=0).reshape(-1)
    scen = np.outer(r, risky.astype(np.float64))
    out = revaluer.revalue(scen, vol_shock=np.repeat(vols, spot.size))
    return out.health_usd.reshape(vols.size, spot.size)


def stress_health(book: Book, revaluer: ScenarioRevaluer) -> tuple[tuple[str, ...], FloatArray]:
    """Maint health under each shipped stress scenario (:mod:`crossmargin.risk.stress`)."""
    from crossmargin.risk.stress import builtin_scenarios

    library = builtin_scenarios()
    names = tuple(library.scenarios)
    scen = np.zeros((len(names), revaluer.n_assets))
    for i, name in enumerate(names):
        prices = library.prices(book, name)
        for k, symbol in enumerate(revaluer.asset_symbols):
            scen[i, k] = math.log(prices[symbol] / book.assets[symbol].price)
    return names, revaluer.revalue(scen).health_usd


def analyze_account(
    book: Book,
    account_id: str,
    data: ReturnData,
    *,
    proxies: dict[str, str] | None = None,
    n_paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    window: int = 250,
    min_obs: int = MIN_OBSERVATIONS,
    progress: Callable[[int], Any] | None = None,
) -> AccountReport:
    """VaR/ES (all methods), backtests, wrong-way risk, spot x vol grid and stress of one
    account on the same return data."""
    revaluer = ScenarioRevaluer.from_book(book, account_id)
    returns, mapping = account_returns(revaluer, data, proxies)
    risk = risk_of_returns(
        revaluer,
        returns,
        account_id=account_id,
        n_paths=n_paths,
        seed=seed,
        min_obs=min_obs,
        progress=progress,
        sources=mapping.source,
        gaps_dropped=data.gaps_dropped,
    )
    backtests = (
        backtest_account(revaluer, returns, window=window)
        if returns.shape[0] >= window + 30
        else []
    )
    wrong_way = wrong_way_risk(revaluer, returns, account_id=account_id)
    risky = np.array([c >= 0 for c in mapping.column])
    grid = spot_vol_grid(revaluer, risky)
    names, stressed = stress_health(book, revaluer)
    return AccountReport(
        risk=risk,
        backtests=backtests,
        wrong_way=wrong_way,
        deposits_usd=revaluer.deposits_usd(),
        spot_shocks=SPOT_SHOCKS,
        vol_shocks=VOL_SHOCKS,
        grid_health_usd=grid,
        stress_names=names,
        stress_health_usd=stressed,
    )


# --- HTML -------------------------------------------------------------------------------------


_png = figure_png

#: the columns every VaR/ES row starts with (account and pool; HTML and the CLI's tables)
VAR_COLUMNS = ("method", "horizon", "conf.", "equity VaR", "equity ES", "health VaR", "health ES")


def var_cells(f: Any) -> list[str]:
    """The cells of :data:`VAR_COLUMNS` for one VaR/ES figure (whole USD)."""
    return [
        f.method,
        f"{f.horizon_days}d",
        f"{f.confidence:.1%}",
        *(
            f"{x:,.0f}"
            for x in (f.equity_var_usd, f.equity_es_usd, f.health_var_usd, f.health_es_usd)
        ),
    ]


def _figures(report: AccountReport) -> list[tuple[str, str]]:
    # the object API (no pyplot): no global figure state, no backend switch
    from matplotlib.figure import Figure

    def subplots(height: float) -> tuple[Any, Any]:
        fig = Figure(figsize=(6.4, height))
        return fig, fig.subplots()

    out: list[tuple[str, str]] = []
    risk = report.risk
    method = "monte-carlo" if "monte-carlo" in risk.samples else next(iter(risk.samples), None)
    if method is not None:
        pnl = risk.samples[method][0]
        fig, ax = subplots(3.2)
        ax.hist(pnl, bins=80, color="#4477aa", alpha=0.85)
        for c, style in ((0.99, "-"), (0.975, "--")):
            f = risk.figure(method, 1, c)
            ax.axvline(-f.equity_var_usd, color="#cc3311", ls=style, label=f"VaR {c:.1%}")
            ax.axvline(-f.equity_es_usd, color="#222222", ls=style, label=f"ES {c:.1%}")
        usd_axis(ax.xaxis, "1-day equity PnL")
        ax.set_ylabel("scenarios")
        ax.set_title(f"PnL distribution ({method})")
        ax.legend(fontsize=7)
        out.append(("PnL distribution with VaR and ES", _png(fig)))
    fig, ax = subplots(3.2)
    grid = report.grid_health_usd
    limit = float(np.max(np.abs(grid))) or 1.0
    image = ax.imshow(grid, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
    ax.set_xticks(
        range(len(report.spot_shocks)),
        [f"{s:+.0%}" for s in report.spot_shocks],
        rotation=45,
        fontsize=8,
    )
    ax.set_yticks(range(len(report.vol_shocks)), [f"{v:+.0%}" for v in report.vol_shocks])
    ax.set_xlabel("spot move (all non-stable assets)")
    ax.set_ylabel("option vol move")
    ax.set_title("Maint health")
    usd_axis(fig.colorbar(image, ax=ax).ax.yaxis, "maint health")
    out.append(("Scenario heatmap: spot x vol", _png(fig)))
    if report.deposits_usd:
        fig, ax = subplots(2.6)
        items = sorted(report.deposits_usd.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="#228833")
        ax.set_xlim(0.0, max(v for _, v in items) * 1.05)
        usd_axis(ax.xaxis, "value at book prices")
        ax.set_title("Collateral composition (deposits at book prices)")
        out.append(("Collateral composition", _png(fig)))
    fig, ax = subplots(3.2)
    colors = ["#cc3311" if h < 0 else "#4477aa" for h in report.stress_health_usd]
    ax.barh(list(report.stress_names), report.stress_health_usd, color=colors)
    ax.axvline(0.0, color="black", lw=0.8)
    usd_axis(ax.xaxis, "maint health")
    ax.set_title("Health under stress scenarios")
    out.append(("Health under stress", _png(fig)))
    return out


_table = html_table


def _usd(x: float) -> str:
    return f"{x:,.0f}"


_STYLE = STYLE


def render_html(
    title: str,
    reports: Sequence[AccountReport],
    skipped: dict[str, str] | None = None,
    pool: PoolRisk | None = None,
) -> str:
    """One self-contained HTML page for the accounts' reports (and the pool's figures)."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p>Losses are positive USD. VaR and ES of equity and of maint health; simulation "
        "methods revalue every scenario through the margin kernel. Methods: "
        "docs/risk-analytics.md.</p>",
    ]
    if pool is not None:
        parts.append(
            f"<h2>Pool of {len(pool.accounts)} accounts</h2><p>Equity USD "
            f"{_usd(pool.equity_usd)}, maint health USD {_usd(pool.health_usd)}, bad debt USD "
            f"{_usd(pool.bad_debt_usd)} (sum of negative equities).</p>"
        )
        parts.append(
            _table(
                [*VAR_COLUMNS, "bad-debt VaR", "bad-debt ES", "mean liquidatable"],
                [
                    [
                        *var_cells(f),
                        _usd(f.bad_debt_var_usd),
                        _usd(f.bad_debt_es_usd),
                        f"{f.mean_liquidatable:.2f}",
                    ]
                    for f in pool.figures
                ],
            )
        )
    for report in reports:
        risk = report.risk
        parts.append(f"<h2>Account {html.escape(risk.account_id)}</h2>")
        parts.append(
            f"<p>Equity USD {_usd(risk.equity_usd)}, maint health USD {_usd(risk.health_usd)}; "
            f"{risk.n_obs} daily returns ({risk.gaps_dropped} spanning a gap dropped); "
            "returns: "
            + html.escape(
                ", ".join(f"{a}={s}" for a, s in zip(risk.assets, risk.sources, strict=True))
            )
            + f"; t-copula nu = {risk.nu:g}.</p>"
        )
        parts.append(
            _table(
                [*VAR_COLUMNS, "P(liquidation)"],
                [
                    [
                        *var_cells(f),
                        "-" if f.prob_liquidation is None else f"{f.prob_liquidation:.2%}",
                    ]
                    for f in risk.figures
                ],
            )
        )
        if report.backtests:
            parts.append("<h3>Backtests (rolling window, 1-day equity VaR)</h3>")
            parts.append(
                _table(
                    [
                        "method",
                        "confidence",
                        "days",
                        "exceptions",
                        "expected",
                        "Kupiec p",
                        "independence p",
                        "cond. coverage p",
                    ],
                    [
                        [
                            b.method,
                            f"{b.confidence:.1%}",
                            str(b.days),
                            str(b.exceptions),
                            f"{b.expected:.1f}",
                            f"{b.kupiec.p_value:.3f}",
                            f"{b.independence.p_value:.3f}",
                            f"{b.conditional.p_value:.3f}",
                        ]
                        for b in report.backtests
                    ],
                )
            )
        w = report.wrong_way
        flag = "<span class='flag'>FLAGGED</span>" if w.flagged else "not flagged"
        parts.append(
            f"<h3>Wrong-way risk: {flag}</h3><p>correlation(collateral, positions) = "
            f"{w.correlation:.2f}; joint {w.tail:.0%} tail probability {w.joint_tail_prob:.2%} "
            f"(independence {w.tail**2:.2%}); mean equity loss there USD "
            f"{_usd(w.joint_tail_loss_usd)}.</p>"
        )
        if w.reasons:
            parts.append(
                "<ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in w.reasons) + "</ul>"
            )
        for caption, image in _figures(report):
            parts.append(f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>")
    for account, reason in (skipped or {}).items():
        parts.append(f"<p class='flag'>{html.escape(account)} skipped: {html.escape(reason)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
