r"""Full revaluation of one account under many price (and vol) scenarios through the one kernel.

The kernel (:func:`crossmargin.margin.kernel.evaluate_groups`) values a batch of margin groups
at one price vector. To value ``S`` scenarios in one call the account is *tiled*: the market
tables restricted to the assets and markets the account touches are repeated ``C`` times (a
chunk of scenarios), each copy with its own asset ids, market ids and therefore its own prices
and option vols, and the account's rows are repeated once per copy pointing at that copy's
ids. One kernel call over the tiled arrays then returns equity and weighted assets/liabilities
of every scenario: balances, perps and futures (marks follow the underlying through
``market_basis``) and options (Black-76 premium at the scenario's underlying price and vol).

Scenarios are given as log returns :math:`r_{s,a}` of the account's assets:
:math:`P_{s,a} = P_{0,a} e^{r_{s,a}}`, and optionally a relative option-vol shock
:math:`\sigma_{s,m} = \sigma_{0,m}(1 + v_s)`. Time to expiry is not advanced (no theta over the
horizon; stated in ``docs/risk-analytics.md``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin._threads import idle_threads
from crossmargin.book.schema import Account, Book
from crossmargin.errors import InputError
from crossmargin.margin.arrays import (
    MAINT,
    MarketTables,
    PortfolioArrays,
    compile_accounts,
    compile_market,
)
from crossmargin.margin.kernel import evaluate_groups

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: scenarios per kernel call: large enough to amortize the call, small enough for the cache
DEFAULT_CHUNK = 1024
#: upper bound of the rows of one tiled chunk (scenarios x rows of the accounts)
MAX_TILED_ROWS = 2_000_000


@dataclass(frozen=True, eq=False)
class Revaluation:
    """Per scenario: account equity and maint health (USD), and whether any group is < 0."""

    equity_usd: FloatArray  # [S] summed over the accounts
    health_usd: FloatArray  # [S] maint (or the requested level) health summed over groups
    liquidatable: BoolArray  # [S] some group's health < 0
    #: with ``per_account=True``: [S, n_accounts] equity, health, liquidatable; else None
    account_equity_usd: FloatArray | None = None
    account_health_usd: FloatArray | None = None
    account_liquidatable: BoolArray | None = None


def _restrict(
    tables: MarketTables, arrays: PortfolioArrays
) -> tuple[MarketTables, PortfolioArrays, IntArray]:
    """Tables with only the assets and markets the rows use, rows re-pointed at them.

    Returns ``(tables, arrays, global_asset_ids)``.
    """
    markets = np.unique(arrays.pos_market)
    assets = np.unique(
        np.concatenate(
            [
                arrays.bal_asset,
                tables.market_underlying[markets],
                tables.market_settle[markets],
            ]
        )
    ).astype(np.int64)
    sub = tables.take(assets, markets)
    asset_new = np.full(tables.n_assets, -1, dtype=np.int64)
    asset_new[assets] = np.arange(assets.size)
    market_new = np.full(tables.n_markets, -1, dtype=np.int64)
    market_new[markets] = np.arange(markets.size)
    rows = replace(
        arrays, bal_asset=asset_new[arrays.bal_asset], pos_market=market_new[arrays.pos_market]
    )
    return sub, rows, assets


def _tile_arrays(a: PortfolioArrays, n_assets: int, n_markets: int, copies: int) -> PortfolioArrays:
    """The accounts' rows once per copy; copy ``c`` holds pseudo-accounts
    ``c*n_accounts ...``."""
    ng, nb, npos, na = a.n_groups, a.bal_qty.size, a.pos_qty.size, a.n_accounts
    c = np.arange(copies, dtype=np.int64)[:, None]

    def rows(x: Any, offset: int) -> Any:
        return (x[None, :] + c * offset).reshape(-1)

    def same(x: Any) -> Any:
        return np.tile(x, copies)

    settle_row = np.where(a.pos_settle_row[None, :] >= 0, a.pos_settle_row[None, :] + c * nb, -1)
    group_position = np.where(
        a.group_position[None, :] >= 0, a.group_position[None, :] + c * npos, -1
    )
    group_account = rows(a.group_account, na)
    return PortfolioArrays(
        account_ids=a.account_ids * copies,
        account_mode=a.account_mode * copies,
        group_account=group_account,
        group_position=group_position.reshape(-1),
        account_group_start=np.searchsorted(group_account, np.arange(copies * na + 1)).astype(
            np.int64
        ),
        bal_group=rows(a.bal_group, ng),
        bal_asset=rows(a.bal_asset, n_assets),
        bal_qty=same(a.bal_qty),
        pos_group=rows(a.pos_group, ng),
        pos_market=rows(a.pos_market, n_markets),
        pos_qty=same(a.pos_qty),
        pos_entry=same(a.pos_entry),
        pos_funding=same(a.pos_funding),
        pos_settle_row=settle_row.reshape(-1),
    )


class ScenarioRevaluer:
    """Accounts (usually one; a whole pool for :func:`crossmargin.risk.pool.pool_risk`),
    compiled once, revalued under batches of scenarios by the kernel.

    ``assets`` (the account's risk assets, :attr:`asset_symbols`) are the columns of the
    scenario matrices passed to :meth:`revalue`. Chunks of ``chunk`` scenarios are spread over
    ``threads`` worker threads (default: the idle cores, up to 2; the kernel releases the GIL).
    """

    def __init__(
        self,
        tables: MarketTables,
        arrays: PortfolioArrays,
        chunk: int = DEFAULT_CHUNK,
        level: int = MAINT,
        threads: int | None = None,
    ) -> None:
        if arrays.n_accounts < 1:
            raise InputError("accounts", arrays.n_accounts, "need at least one account")
        if chunk < 1:
            raise InputError("chunk", chunk, "must be >= 1")
        self.full_tables = tables
        self.tables, self.arrays, self.global_assets = _restrict(tables, arrays)
        self.level = level
        # bound a chunk's tiled rows (memory) for large pools
        rows = max(1, arrays.bal_qty.size + arrays.pos_qty.size)
        self.chunk = max(1, min(chunk, MAX_TILED_ROWS // rows))
        # threads only where they pay: idle cores (bench_threads.py, crossmargin._threads)
        self.threads = threads if threads is not None else idle_threads(cap=2)
        self._tiled: dict[int, tuple[MarketTables, PortfolioArrays]] = {}
        base = evaluate_groups(self.tables, self.arrays, level)
        self.base_equity_usd = float(base[2].sum())
        self.base_health_usd = float((base[0] - base[1]).sum())
        starts = arrays.account_group_start[:-1]
        self.base_account_equity_usd: FloatArray = np.add.reduceat(base[2], starts)
        self.base_account_health_usd: FloatArray = np.add.reduceat(base[0] - base[1], starts)

    @classmethod
    def from_book(
        cls, book: Book, account: str | Account, chunk: int = DEFAULT_CHUNK
    ) -> ScenarioRevaluer:
        """Compile ``account`` (an id of the book, or an :class:`Account`) of ``book``."""
        tables = compile_market(book)
        acc = book.account(account) if isinstance(account, str) else account
        # a portfolio-mode account is one cross pool for the kernel (see compile_accounts)
        return cls(tables, compile_accounts(tables, [acc]), chunk)

    @classmethod
    def from_accounts(
        cls, book: Book, accounts: list[Account] | None = None, chunk: int = DEFAULT_CHUNK
    ) -> ScenarioRevaluer:
        """Compile several accounts of ``book`` (default: all) as one pool."""
        tables = compile_market(book)
        return cls(
            tables, compile_accounts(tables, book.accounts if accounts is None else accounts), chunk
        )

    @property
    def asset_symbols(self) -> tuple[str, ...]:
        return self.tables.asset_symbols

    @property
    def price_usd(self) -> FloatArray:
        return self.tables.price_usd

    @property
    def n_assets(self) -> int:
        return self.tables.n_assets

    def _tiles(self, copies: int) -> tuple[MarketTables, PortfolioArrays]:
        if copies not in self._tiled:
            t = self.tables.tile(copies)
            a = _tile_arrays(self.arrays, self.tables.n_assets, self.tables.n_markets, copies)
            self._tiled[copies] = (t, a)
        return self._tiled[copies]

    def revalue(
        self,
        log_returns: FloatArray,
        vol_shock: FloatArray | None = None,
        progress: Any = None,
        per_account: bool = False,
    ) -> Revaluation:
        """Equity and health under ``log_returns[S, n_assets]`` (columns: :attr:`asset_symbols`).

        ``vol_shock[S]`` multiplies every option vol by ``1 + vol_shock``. ``progress`` is an
        optional callable receiving the number of scenarios done after each chunk. With
        ``per_account`` the figures of each account are kept too (``[S, n_accounts]``).
        """
        r = np.asarray(log_returns, dtype=np.float64)
        if r.ndim != 2 or r.shape[1] != self.n_assets:
            raise InputError("log_returns", r.shape, f"expected [S, {self.n_assets}]")
        if not np.all(np.isfinite(r)):
            raise InputError("log_returns", "non-finite", "scenario returns must be finite")
        n = r.shape[0]
        if vol_shock is not None and (np.shape(vol_shock) != (n,) or np.any(vol_shock <= -1.0)):
            raise InputError("vol_shock", np.shape(vol_shock), f"need [{n}] values > -1")
        equity = np.empty(n)
        health = np.empty(n)
        liquidatable = np.empty(n, dtype=bool)
        n_acc = self.arrays.n_accounts
        acc_eq = np.empty((n, n_acc)) if per_account else None
        acc_h = np.empty((n, n_acc)) if per_account else None
        acc_liq = np.empty((n, n_acc), dtype=bool) if per_account else None
        group_starts = self.arrays.account_group_start[:-1]
        copies = min(self.chunk, max(n, 1))
        tiled_tables, tiled_arrays = self._tiles(copies)
        ng = self.arrays.n_groups
        base_price = self.tables.price_usd
        base_vol = self.tables.option_vol

        def work(starts: range) -> None:
            # own buffers per worker; the kernel releases the GIL (nogil), so workers overlap
            out = (np.empty(copies * ng), np.empty(copies * ng), np.empty(copies * ng))
            prices = np.empty((copies, self.n_assets))
            for start in starts:
                stop = min(start + copies, n)
                k = stop - start
                np.exp(r[start:stop], out=prices[:k])
                prices[:k] *= base_price
                prices[k:] = base_price
                tables = tiled_tables
                if vol_shock is not None:
                    mult = np.ones(copies)
                    mult[:k] = 1.0 + vol_shock[start:stop]
                    vols = (base_vol[None, :] * mult[:, None]).reshape(-1)
                    tables = replace(tiled_tables, option_vol=vols)
                wa, wl, eq = evaluate_groups(
                    tables, tiled_arrays, self.level, prices.reshape(-1), out=out
                )
                h = (wa - wl).reshape(copies, ng)[:k]
                equity[start:stop] = eq.reshape(copies, ng)[:k].sum(axis=1)
                health[start:stop] = h.sum(axis=1)
                liquidatable[start:stop] = (h < 0.0).any(axis=1)
                if acc_eq is not None and acc_h is not None and acc_liq is not None:
                    g_eq = eq.reshape(copies, ng)[:k]
                    acc_eq[start:stop] = np.add.reduceat(g_eq, group_starts, axis=1)
                    acc_h[start:stop] = np.add.reduceat(h, group_starts, axis=1)
                    acc_liq[start:stop] = np.add.reduceat(h < 0.0, group_starts, axis=1) > 0
                if progress is not None:
                    progress(k)

        starts = range(0, n, copies)
        workers = max(1, min(self.threads, len(starts)))
        if workers == 1:
            work(starts)
        else:
            with ThreadPoolExecutor(workers) as pool:
                # strided split: worker w takes chunks w, w + workers, ...
                list(pool.map(work, [starts[w::workers] for w in range(workers)]))
        return Revaluation(equity, health, liquidatable, acc_eq, acc_h, acc_liq)

    def collateral_usd(self, log_returns: FloatArray) -> FloatArray:
        r"""Value of the deposits (balances > 0) per scenario, USD: :math:`\sum_b q_b P_{s,a_b}`.

        Plain value (no weights); the wrong-way analysis compares it with the positions' PnL.
        """
        deposit = self.arrays.bal_qty > 0.0
        qty = np.zeros(self.n_assets)
        np.add.at(qty, self.arrays.bal_asset[deposit], self.arrays.bal_qty[deposit])
        value: FloatArray = (np.exp(log_returns) * self.tables.price_usd) @ qty
        return value

    def deposits_usd(self) -> dict[str, float]:
        """Deposits by asset at book prices, USD (the collateral composition)."""
        out: dict[str, float] = {}
        for asset, qty in zip(self.arrays.bal_asset, self.arrays.bal_qty, strict=True):
            if qty > 0.0:
                sym = self.tables.asset_symbols[int(asset)]
                out[sym] = out.get(sym, 0.0) + float(qty * self.tables.price_usd[int(asset)])
        return out
