r"""Cross-venue cascades (issue #17): a bridge halting mid-crash, and AMM vs order-book depth.

Both simulations run the real liquidation engine (:class:`~crossmargin.liquidation.
LiquidationEngine`) on a generated book round by round; every health figure is the kernel's.

**Bridge halt.** ETH falls linearly by ``crash_frac`` over ``steps`` steps. Each account holds
ETH partly at home and partly on a remote chain (``arbitrum``, bridge haircut
``haircut_frac``) and borrows USDC at home. From ``halt_step`` on the bridge is halted: the
remote ETH gets no credit and cannot be sold (:class:`~crossmargin.locations.execution.
LocatedExecution`), so liquidations must sell home ETH only; stranded accounts fall to bankruptcy
and their deficits become bad debt (insurance fund, then socialized). The same book with every
lot at home ("one chain") is the comparison.

**AMM vs book.** The oracle is the venue's own price (an on-chain market). An exogenous move
takes the outside price down by ``crash_frac`` over ``crash_rounds`` rounds; every round the
liquidations sell ETH into the venue (each order against the venue as it stands; their joint
impact is then applied to the venue), and arbitrage pulls the venue back toward the outside
price with half-life ``half_life_rounds``: :math:`p \leftarrow p_{out} + (p - p_{out})
2^{-1/h}`. Venues with **equal quoted depth at the mid** - the same base per unit price change,
:math:`\partial x / \partial P = L / (2 P^{3/2})` - are compared:

* constant product (``x y = L^2``; Uniswap v2 with fee),
* concentrated liquidity (Uniswap v3) of the same ``L`` on +-``range_frac`` around the mid,
* a flat order book: the same depth per USD at every price down to -``book_span_frac``.

Value is conserved each round (the engine's identity; the venue's gain is the makers').
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from crossmargin.amm.execution import AmmExecution
from crossmargin.amm.pools import (
    ConcentratedPool,
    ConstantProductPool,
    Swap,
    SwapVenue,
    tick_at_price,
)
from crossmargin.book.io import book_from_data
from crossmargin.book.schema import Book
from crossmargin.errors import InputError
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.locations.execution import LocatedExecution
from crossmargin.locations.view import located_view, source_from_compiled

ETH_WEIGHTS = {
    "init_asset_weight": 0.8,
    "maint_asset_weight": 0.9,
    "init_liab_weight": 1.2,
    "maint_liab_weight": 1.1,
}
USDC_WEIGHTS = dict.fromkeys(ETH_WEIGHTS, 1.0)


def generate_located_book(
    n_accounts: int,
    seed: int,
    *,
    eth_usd: float = 3000.0,
    remote_share: float = 0.5,
    haircut_frac: float = 0.05,
    one_chain: bool = False,
) -> Book:
    """``n_accounts`` ETH-collateral accounts borrowing USDC at maint health ratios spread
    between 3 % and 40 % of collateral; a ``remote_share`` of each one's ETH sits on
    ``arbitrum`` (``one_chain``: all at home, same quantities)."""
    if n_accounts < 1:
        raise InputError("n_accounts", n_accounts, "must be >= 1")
    rng = np.random.default_rng(seed)
    qty = np.round(rng.lognormal(math.log(20.0), 1.0, n_accounts), 4) + 0.1
    cushion = rng.uniform(0.03, 0.40, n_accounts)
    accounts = []
    for i in range(n_accounts):
        # maint credit with the bridge haircut on the remote part, less a cushion, borrowed
        credit_frac = 0.9 * ((1 - remote_share) + remote_share * (1 - haircut_frac))
        debt = float(qty[i] * eth_usd * credit_frac * (1.0 - cushion[i]))
        remote = float(qty[i] * remote_share)
        home = float(qty[i]) - remote
        eth: Any = (
            float(qty[i]) if one_chain else [{"qty": home}, {"qty": remote, "location": "arbitrum"}]
        )
        accounts.append({"id": f"acct-{i:05d}", "balances": {"ETH": eth, "USDC": -debt}})
    data = {
        "assets": {
            "USDC": {"price": 1.0, **USDC_WEIGHTS},
            "ETH": {"price": eth_usd, **ETH_WEIGHTS},
        },
        "locations": {"arbitrum": {"bridge_haircut_frac": haircut_frac, "finality_s": 900.0}},
        "accounts": accounts,
    }
    return book_from_data(data)


@dataclass(frozen=True)
class HaltStep:
    step: int
    eth_usd: float
    halted: bool
    liquidated: int
    bankrupt: int
    eth_sold: float
    stranded_usd: float  # remote ETH of liquidatable accounts while halted, at the step price
    bad_debt_usd: float  # cumulative: insurance paid + socialized
    underwater_usd: float  # negative equity not yet resolved, after the step


@dataclass(frozen=True)
class HaltResult:
    cross_chain: list[HaltStep]
    one_chain: list[HaltStep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cross_chain": [asdict(s) for s in self.cross_chain],
            "one_chain": [asdict(s) for s in self.one_chain],
        }


def underwater_usd(book: Book, prices: dict[str, float]) -> float:
    """Sum of negative equity over the accounts (deficits not yet resolved), USD - the
    kernel's equity of the (located) book at ``prices``."""
    from crossmargin.margin.engine import MarginEngine

    view = located_view(book)
    result = MarginEngine(view.book).evaluate(prices=view.prices(prices))
    equity = result.per_account(result.equity)
    return float(np.maximum(-equity, 0.0).sum())


def _set_state(book: Book, state: str) -> Book:
    locations = {k: v.model_copy(update={"state": state}) for k, v in book.locations.items()}
    return book.model_copy(update={"locations": locations})


def run_bridge_halt(
    n_accounts: int = 300,
    seed: int = 7,
    *,
    crash_frac: float = 0.35,
    steps: int = 8,
    halt_step: int = 3,
    insurance_fund_usd: float = 50_000.0,
) -> HaltResult:
    """The crash with the bridge halting at ``halt_step``, and the same book on one chain."""
    if not 0.0 < crash_frac < 1.0:
        raise InputError("crash_frac", crash_frac, "must be in (0, 1)")
    out: dict[bool, list[HaltStep]] = {}
    for one_chain in (False, True):
        book = generate_located_book(n_accounts, seed, one_chain=one_chain)
        fund, bad_debt, rows = insurance_fund_usd, 0.0, []
        for step in range(1, steps + 1):
            price = 3000.0 * (1.0 - crash_frac * step / steps)
            halted = not one_chain and step >= halt_step
            book = _set_state(book, "halted" if halted else "open")
            view = located_view(book)
            config = LiquidationConfig.preset("generic", insurance_fund_usd=fund)
            engine = LiquidationEngine(
                view.book, config, LocatedExecution(view), prices=view.prices({"ETH": price})
            )
            result = engine.liquidate()
            assert result.book_after is not None
            flows = result.flows
            fund = flows.insurance_fund_usd
            bad_debt += flows.insurance_paid_usd + flows.socialized_usd
            liquidated = [o for o in result.outcomes if o.status != "healthy"]
            stranded = 0.0
            if halted:
                ids = {o.account for o in liquidated}
                stranded = sum(
                    lot.qty * price
                    for a in book.accounts
                    if a.id in ids
                    for lot in a.remote_balances
                )
            sold = sum(a.balances.get("ETH", 0.0) for a in view.book.accounts) - sum(
                a.balances.get("ETH", 0.0) for a in result.book_after.accounts
            )
            sold += sum(
                v for a in view.book.accounts for s, v in a.balances.items() if "@" in s
            ) - sum(
                v for a in result.book_after.accounts for s, v in a.balances.items() if "@" in s
            )
            rows.append(
                HaltStep(
                    step,
                    price,
                    halted,
                    len(liquidated),
                    sum(o.status == "bankrupt" for o in result.outcomes),
                    sold,
                    stranded,
                    bad_debt,
                    0.0,
                )
            )
            book = source_from_compiled(view, result.book_after)
            rows[-1] = replace(rows[-1], underwater_usd=underwater_usd(book, {"ETH": price}))
        out[one_chain] = rows
    return HaltResult(out[False], out[True])


@dataclass(frozen=True)
class FlatBook:
    """An order book with the same depth ``depth_qty_per_usd`` (base per USD of price) at
    every price from ``mid`` down to ``mid (1 - span_frac)`` (and up as far): selling ``q``
    moves the price to ``mid - q / D`` at an average ``mid - q / (2 D)``."""

    mid: float
    depth_qty_per_usd: float
    span_frac: float = 0.5

    @property
    def price(self) -> float:
        return self.mid

    def swap(self, base_qty: float) -> Swap:
        cap = self.depth_qty_per_usd * self.mid * self.span_frac  # the book's whole side
        q = max(min(base_qty, cap), -cap)
        move = q / self.depth_qty_per_usd
        quote = q * self.mid - q * move / 2.0  # sells receive less, buys pay more
        after = FlatBook(self.mid - move, self.depth_qty_per_usd, self.span_frac)
        return Swap(quote, q, 0.0, after)

    def with_price(self, price: float) -> FlatBook:
        """Market makers re-quote the same depth around ``price``."""
        return replace(self, mid=price)


Venue = SwapVenue


def equal_depth_venues(
    mid: float, liquidity: float, range_frac: float, fee_frac: float = 0.003
) -> dict[str, Venue]:
    """Three venues with the same quoted depth at ``mid``: dx/dP = L / (2 mid^1.5)."""
    cp = ConstantProductPool(liquidity / math.sqrt(mid), liquidity * math.sqrt(mid), fee_frac)
    lo = math.floor(tick_at_price(mid * (1.0 - range_frac)) / 60) * 60
    hi = math.ceil(tick_at_price(mid * (1.0 + range_frac)) / 60) * 60
    v3 = ConcentratedPool.from_ranges([(lo, hi, liquidity)], mid, fee_frac)
    book = FlatBook(mid, liquidity / (2.0 * mid**1.5))
    return {"constant product": cp, "concentrated": v3, "order book": book}


def slippage_table(venues: dict[str, Venue], sizes: list[float]) -> list[dict[str, Any]]:
    """Selling each size of base into each fresh venue: filled quantity, average price and
    slippage below the mid (fraction)."""
    rows = []
    for name, venue in venues.items():
        for size in sizes:
            swap = venue.swap(size)
            average = swap.quote_usd / swap.base_filled if swap.base_filled > 0 else math.nan
            rows.append(
                {
                    "venue": name,
                    "size": size,
                    "filled": swap.base_filled,
                    "average_usd": average,
                    "slippage_frac": 1.0 - average / venue.price if swap.base_filled > 0 else None,
                }
            )
    return rows


def equal_capital_venues(
    mid: float, liquidity: float, range_frac: float, fee_frac: float = 0.003
) -> dict[str, Venue]:
    """Venues holding the same capital at ``mid`` as a constant-product pool of liquidity
    ``L`` (value ``2 L sqrt(mid)``): the concentrated pool puts it all within +-``range_frac``
    (a larger ``L``), the book spreads the same quote on bids down to -``range_frac``."""
    cp = ConstantProductPool(liquidity / math.sqrt(mid), liquidity * math.sqrt(mid), fee_frac)
    lo = math.floor(tick_at_price(mid * (1.0 - range_frac)) / 60) * 60
    hi = math.ceil(tick_at_price(mid * (1.0 + range_frac)) / 60) * 60
    sa, sb, s = math.sqrt(1.0001**lo), math.sqrt(1.0001**hi), math.sqrt(mid)
    # value of one unit of liquidity at the mid: (1/s - 1/sb) mid + (s - sa)
    unit_value = (1.0 / s - 1.0 / sb) * mid + (s - sa)
    v3 = ConcentratedPool.from_ranges([(lo, hi, 2.0 * liquidity * s / unit_value)], mid, fee_frac)
    quote = liquidity * s  # the CP pool's quote reserve, on bids across the range
    depth = quote / (mid * range_frac * mid * (1.0 - range_frac / 2.0))
    book = FlatBook(mid, depth, range_frac)
    return {"constant product": cp, "concentrated": v3, "order book": book}


@dataclass(frozen=True)
class VenueRound:
    round: int
    outside_usd: float
    venue_usd: float
    liquidated: int
    eth_sold: float
    slippage_usd: float
    bad_debt_usd: float  # cumulative
    stuck: int  # liquidatable accounts the venue could not fill
    underwater_usd: float  # negative equity not yet resolved, at the outside price


@dataclass(frozen=True)
class VenueResult:
    rounds: dict[str, list[VenueRound]] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """Per venue: lowest price, ETH sold, slippage and bad debt over the run."""
        rows = []
        for name, rs in self.rounds.items():
            rows.append(
                {
                    "venue": name,
                    "min_price_usd": min(r.venue_usd for r in rs),
                    "liquidations": sum(r.liquidated for r in rs),
                    "eth_sold": sum(r.eth_sold for r in rs),
                    "slippage_usd": sum(r.slippage_usd for r in rs),
                    "bad_debt_usd": rs[-1].bad_debt_usd,
                    "underwater_usd": rs[-1].underwater_usd,
                    "bad_debt_and_underwater_usd": rs[-1].bad_debt_usd + rs[-1].underwater_usd,
                }
            )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "rounds": {k: [asdict(r) for r in v] for k, v in self.rounds.items()},
            "summary": self.summary(),
        }


def run_amm_vs_book(
    n_accounts: int = 300,
    seed: int = 7,
    *,
    crash_frac: float = 0.25,
    crash_rounds: int = 5,
    rounds: int = 12,
    half_life_rounds: float = 2.0,
    liquidity: float = 2.0e5,
    range_frac: float = 0.15,
    insurance_fund_usd: float = 50_000.0,
    venues: dict[str, Venue] | None = None,
    on_round: Callable[[str, VenueRound], None] | None = None,
) -> VenueResult:
    """The same crash liquidated into each venue (all collateral at home)."""
    start = 3000.0
    chosen = venues or equal_depth_venues(start, liquidity, range_frac)
    decay = 2.0 ** (-1.0 / half_life_rounds)
    result = VenueResult()
    for name, venue in chosen.items():
        book = generate_located_book(n_accounts, seed, one_chain=True)
        fund, bad_debt, rows = insurance_fund_usd, 0.0, []
        for r in range(1, rounds + 1):
            outside = start * (1.0 - crash_frac * min(r, crash_rounds) / crash_rounds)
            # arbitrage toward the outside price (half-life), then the oracle reads the venue
            target = outside + (venue.price - outside) * decay
            venue = venue.with_price(target)
            price = venue.price
            config = LiquidationConfig.preset("generic", insurance_fund_usd=fund)
            engine = LiquidationEngine(
                book,
                config,
                AmmExecution({"ETH": venue}),
                prices={"ETH": price},
            )
            liq = engine.liquidate()
            assert liq.book_after is not None
            sold = sum(a.balances.get("ETH", 0.0) for a in book.accounts) - sum(
                a.balances.get("ETH", 0.0) for a in liq.book_after.accounts
            )
            if sold > 0.0:  # the round's joint impact on the venue
                venue = venue.swap(sold).pool
            fund = liq.flows.insurance_fund_usd
            bad_debt += liq.flows.insurance_paid_usd + liq.flows.socialized_usd
            row = VenueRound(
                r,
                outside,
                price,
                sum(o.status != "healthy" for o in liq.outcomes),
                sold,
                liq.flows.makers_usd,
                bad_debt,
                sum(o.status in ("stopped", "partial", "spiral") for o in liq.outcomes),
                underwater_usd(liq.book_after, {"ETH": outside}),
            )
            rows.append(row)
            if on_round is not None:
                on_round(name, row)
            book = liq.book_after
        result.rounds[name] = rows
    return result
