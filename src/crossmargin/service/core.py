"""The single-writer core of the live engine: prices in, re-margin, refuse, call, liquidate.

Every change of state goes through one lock (the single writer) and one ledger transaction:

* **ticks** enter the oracle layer (:class:`~crossmargin.market.OracleBook`: median,
  staleness, outliers, confidence, stable price, states); the touched assets' live prices and
  conservative weight factors are updated and only the accounts exposed to them are
  re-margined (exposure index), through the one kernel. Ticks that arrive while a re-margin
  runs are conflated into the next one: under load the latency stays one re-margin, not a
  queue;
* **money movements** (deposit, withdrawal, trade) are checked on the working set's own rows:
  the change is written, the account re-margined, and refused (rolled back) if any of its
  groups would end below init health 0 while the change adds risk - the refusal names the
  reason and the health it would leave; accepted changes are journaled with their row values;
* **margin calls** are journaled when an account enters ``margin_call``; accounts with maint
  health < 0 are liquidated by :func:`crossmargin.liquidation.liquidate_arrays` (the library's
  engine, the deployment's policy) when their prices allow it, and every account's fills,
  the insurance fund and socialized losses are journaled in one transaction.
"""

from __future__ import annotations

import gc
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crossmargin.book.io import book_from_data
from crossmargin.book.schema import Account, Book
from crossmargin.errors import CrossmarginError, InputError, UnknownNameError
from crossmargin.margin.arrays import (
    INIT,
    MAINT,
    SECONDS_PER_YEAR,
    FloatArray,
    IntArray,
    MarketTables,
    compile_accounts,
    compile_market,
)
from crossmargin.margin.engine import apply_changes
from crossmargin.margin.kernel import market_marks_usd
from crossmargin.margin.results import Trade
from crossmargin.market.oracle import AggregatedPrice, OracleBook, OracleState, Quote
from crossmargin.service import db
from crossmargin.service.config import ServiceConfig
from crossmargin.service.ledger import Change, Committed, Ledger, canonical_json
from crossmargin.service.state import (
    BANKRUPT,
    LIQUIDATABLE,
    MARGIN_CALL,
    STATUS_NAMES,
    StatusThresholds,
    WorkingSet,
    live_tables,
    market_book_of,
    option_expiries_s,
)
from crossmargin.service.ticks import Tick

#: the system figures the ledger keeps (USD)
SYSTEM_FIGURES = (
    "insurance_fund_usd",
    "liquidator_fees_usd",
    "makers_usd",
    "socialized_usd",
    "bad_debt_usd",
    "house_usd",
)
MAX_ABS_QTY = 1e12  # units: above this a quantity is a fat finger, not a trade
MAX_PRICE_USD = 1e12
SYSTEM_PUSH_S = 0.25  # the system stream is refreshed at most this often
HISTORY_SAMPLES = 1440  # per asset: a day of one-minute samples


class Refused(CrossmarginError):
    """A movement the engine will not make (HTTP 422): ``reason`` and the health it would leave."""

    def __init__(self, field: str, reason: str, detail: Mapping[str, Any] | None = None) -> None:
        self.field = field
        self.reason = reason
        self.detail = dict(detail or {})
        super().__init__(f"{field}: {reason}")


@dataclass(frozen=True)
class Published:
    """A message for the streams: ``channel`` is account, events, system or oracle."""

    channel: str
    account_id: str | None
    payload: dict[str, Any]


Subscriber = Callable[[list[Published]], None]


def _finite(field: str, value: float, low: float, high: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(field, value, "must be a number")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise InputError(field, value, what)
    return number


class MarginCore:
    """The live engine's state and its single writer."""

    def __init__(self, engine: Engine, config: ServiceConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ServiceConfig()
        self.ledger = Ledger(engine)
        self.lock = threading.RLock()
        self._oracle_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._subscribers: list[Subscriber] = []
        self._retry_after: dict[int, float] = {}
        self.thresholds = StatusThresholds(self.config.margin_call_ratio)
        self.system: dict[str, float] = {}
        self.ticks_accepted = 0
        self.ticks_rejected = 0
        self.remargins = 0
        self.last_remargin_ms = 0.0
        #: account indices someone streams: their health is pushed at every re-margin
        self.watched: set[int] = set()
        self._system_pushed_s = 0.0
        #: sampled aggregated prices per asset (epoch s, USD): the dynamic haircuts' input
        self.history: dict[str, deque[tuple[float, float]]] = {}
        self._distances: Any = None
        self._distances_version = -1
        self._called_at: dict[int, float] = {}
        self._load()

    # -- start-up -----------------------------------------------------------------------------
    @staticmethod
    def initialize(
        engine: Engine,
        book: Book,
        config: ServiceConfig | None = None,
        owners: Mapping[str, str] | None = None,
    ) -> None:
        """Write the genesis event: the book's assets, markets, accounts and the fund.

        Does nothing if the database already holds a genesis (the ledger is the truth then).
        """
        from crossmargin.locations.view import refuse_located

        refuse_located(  # the ledger has no located rows: never margin without them
            book,
            "the live service does not credit collateral at other locations yet; "
            "use 'crossmargin margin' / 'crossmargin transfer' for this book",
        )
        cfg = config or ServiceConfig()
        ledger = Ledger(engine)
        with engine.connect() as connection:
            exists = connection.execute(
                sa.select(db.events.c.seq).where(db.events.c.key == "genesis")
            ).first()
        if exists:
            return
        changes: list[Change] = [
            {
                "t": "settings",
                "name": "as_of",
                "value": book.as_of.isoformat() if book.as_of else "",
            },
            {"t": "settings", "name": "pnl_convention", "value": book.pnl_convention},
        ]
        for symbol, asset in book.assets.items():
            changes.append({"t": "assets", "symbol": symbol, "version": 1, "params": _dump(asset)})
        for symbol, market in book.markets.items():
            changes.append(
                {"t": "markets", "symbol": symbol, "version": 1, "params": _dump(market)}
            )
        for account in book.accounts:
            owner = (owners or {}).get(account.id, account.id)
            changes.extend(_account_changes(account, owner, None))
        for name in SYSTEM_FIGURES:
            value = cfg.insurance_fund_usd if name == "insurance_fund_usd" else 0.0
            changes.append({"t": "system", "name": name, "value": value})
        ledger.commit_inserts(
            "genesis",
            "genesis",
            {"accounts": len(book.accounts), "assets": list(book.assets)},
            changes,
            {"accounts": len(book.accounts)},
        )

    def _load(self) -> None:
        """Rebuild the working set from the database's state tables."""
        import json

        with self.engine.connect() as connection:
            settings = {r.name: r.value for r in connection.execute(sa.select(db.settings))}
            assets = {
                r.symbol: json.loads(r.params)
                for r in connection.execute(sa.select(db.assets).order_by(db.assets.c.symbol))
            }
            markets = {
                r.symbol: json.loads(r.params)
                for r in connection.execute(sa.select(db.markets).order_by(db.markets.c.symbol))
            }
            account_rows = connection.execute(
                sa.select(db.accounts).order_by(db.accounts.c.id)
            ).all()
            balance_rows = connection.execute(sa.select(db.balances)).all()
            position_rows = connection.execute(sa.select(db.positions)).all()
            self.system = {r.name: float(r.value) for r in connection.execute(sa.select(db.system))}
            saved_prices = {
                r.asset: float(r.price_usd) for r in connection.execute(sa.select(db.prices))
            }
        if not assets:
            raise InputError("--db", str(self.engine.url), "no book in this database: give one")
        balances: dict[str, dict[str, float]] = {}
        for row in balance_rows:
            balances.setdefault(row.account_id, {})[row.asset] = float(row.qty)
        positions: dict[str, list[dict[str, Any]]] = {}
        for row in position_rows:
            positions.setdefault(row.account_id, []).append(
                {
                    "market": row.market,
                    "qty": float(row.qty),
                    "entry_price": float(row.entry_price),
                    "unrealized_funding": float(row.funding),
                    "isolated_collateral": json.loads(row.isolated_collateral),
                }
            )
        accounts = [
            {
                "id": r.id,
                "mode": r.mode,
                "profile": r.profile,
                "balances": balances.get(r.id, {}),
                "positions": sorted(positions.get(r.id, []), key=lambda p: p["market"]),
            }
            for r in account_rows
        ]
        book = book_from_data(
            {
                "as_of": settings.get("as_of") or None,
                "pnl_convention": settings.get("pnl_convention", "separate"),
                "assets": assets,
                "markets": markets,
                "accounts": accounts,
            }
        )
        self.market_book = market_book_of(book)
        self.base_tables = _kernel_safe(compile_market(self.market_book))
        self.expiries_s = option_expiries_s(self.market_book)
        self.work = WorkingSet(self.market_book, book.accounts, [r.owner for r in account_rows])
        n_assets = self.work.n_assets
        self.price_usd = self.base_tables.price_usd.copy()
        for symbol, price in saved_prices.items():
            if symbol in assets:
                self.price_usd[self.work.asset_id(symbol)] = price
        self.weight_factors = np.ones((4, n_assets))
        self.oracle = OracleBook(self.market_book.assets, self.config.oracle)
        self.oracle_prices: dict[str, AggregatedPrice] = {}
        self.now_s = time.time()
        self.tables = self._live_tables()
        self.work.remargin(self.tables, np.arange(len(self.work.accounts)), self.thresholds)
        # the loaded book is long-lived: keep the collector from walking it again (a full pass
        # over 100,000 accounts' models stalls the writer for seconds)
        gc.collect()
        gc.freeze()

    def _live_tables(self) -> MarketTables:
        return live_tables(
            self.base_tables, self.price_usd, self.weight_factors, self.expiries_s, self.now_s
        )

    # -- streams ------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def _publish(self, messages: list[Published]) -> None:
        if not messages:
            return
        for subscriber in list(self._subscribers):
            subscriber(messages)

    def _account_messages(self, accounts: Iterable[int]) -> list[Published]:
        out = []
        stamp = time.time()
        for i in accounts:
            summary = self.work.summary(int(i))
            summary["remargined_s"] = stamp
            out.append(Published("account", summary["account_id"], summary))
        return out

    # -- prices -------------------------------------------------------------------------------
    def ingest(self, ticks: Sequence[Tick], now_s: float | None = None) -> dict[str, Any]:
        """Push quotes into the oracle layer, then re-margin what they moved.

        Returns counts and the rejections with their reasons. A caller arriving while another
        re-margins finds its assets already done (conflation).
        """
        started = time.perf_counter()
        rejected: list[dict[str, Any]] = []
        with self._oracle_lock:
            before = len(self.oracle.events)
            for tick in ticks:
                if tick.asset not in self.oracle.assets:
                    rejected.append({"asset": tick.asset, "reason": "unknown asset"})
                    continue
                quote = Quote(tick.source, tick.price_usd, tick.confidence_usd, tick.timestamp_s)
                if self.oracle.push(tick.asset, quote):
                    self._dirty.add(tick.asset)
            for event in self.oracle.events[before:]:
                if event.kind == "rejected":
                    rejected.append(
                        {"asset": event.asset, "source": event.source, "reason": event.reason}
                    )
        self.ticks_rejected += len(rejected)
        self.ticks_accepted += len(ticks) - len(rejected)
        remargined = self.process(now_s)
        return {
            "accepted": len(ticks) - len(rejected),
            "rejected": rejected,
            "remargined_accounts": remargined,
            "latency_ms": (time.perf_counter() - started) * 1e3,
        }

    def process(self, now_s: float | None = None, assets: Iterable[str] = ()) -> int:
        """Aggregate dirty assets (and ``assets``), re-margin exposed accounts, call, liquidate."""
        with self.lock:
            with self._oracle_lock:
                dirty = self._dirty | set(assets)
                self._dirty = set()
            if not dirty:
                return 0
            self.now_s = time.time() if now_s is None else now_s
            messages: list[Published] = []
            touched: list[int] = []
            with self._oracle_lock:
                before = len(self.oracle.events)
                for symbol in sorted(dirty):
                    aggregated = self.oracle.aggregate(symbol, self.now_s)
                    self.oracle_prices[symbol] = aggregated
                    a = self.work.asset_id(symbol)
                    if aggregated.state is not OracleState.HALTED and aggregated.n_used > 0:
                        mid = aggregated.price_usd
                        factors = (
                            aggregated.init_asset_price_usd / mid,
                            aggregated.init_liab_price_usd / mid,
                            aggregated.asset_price_usd / mid,
                            aggregated.liab_price_usd / mid,
                        )
                        # a sweep that finds the same price re-margins nobody
                        if self.price_usd[a] != mid or tuple(self.weight_factors[:, a]) != factors:
                            self.price_usd[a] = mid
                            self.weight_factors[:, a] = factors
                            touched.append(a)
                        self._sample(symbol, mid)
                for event in self.oracle.events[before:]:
                    if event.kind == "state":
                        messages.append(
                            Published(
                                "oracle",
                                None,
                                {
                                    "asset": event.asset,
                                    "old_state": str(event.old_state),
                                    "new_state": str(event.new_state),
                                    "reason": event.reason,
                                    "timestamp_s": event.timestamp_s,
                                },
                            )
                        )
            accounts = self.work.exposed_accounts(touched) if touched else np.zeros(0, np.int64)
            messages.extend(self._remargin(accounts))
            self._publish(messages)
            return int(accounts.size)

    def _sample(self, symbol: str, price_usd: float) -> None:
        samples = self.history.setdefault(symbol, deque(maxlen=HISTORY_SAMPLES))
        if not samples or self.now_s - samples[-1][0] >= self.config.haircut_sample_s:
            samples.append((self.now_s, price_usd))

    def recompute_haircuts(self, now_s: float | None = None) -> list[Committed]:
        """Dynamic haircuts from the ticks: each asset's realized volatility over its sampled
        prices (zero-mean, annualized by the mean sampling interval) goes through
        :func:`crossmargin.haircuts.dynamic.recommend_weights` (price risk at the configured
        horizons and confidences, floors, caps, at most ``max_step_frac`` per change); a change
        of at least ``haircut_min_change`` in any weight is applied as a parameter event.
        Assets weighted 1.0 (the quote currency) are left alone."""
        from crossmargin.haircuts.dynamic import Weights, recommend_weights

        done: list[Committed] = []
        stamp = time.time() if now_s is None else now_s
        for symbol, asset in list(self.market_book.assets.items()):
            samples = self.history.get(symbol)
            if asset.maint_asset_weight == 1.0 or samples is None or len(samples) < 30:
                continue
            times = np.array([t for t, _ in samples])
            prices = np.array([p for _, p in samples])
            returns = np.diff(np.log(prices))
            interval_s = float(np.mean(np.diff(times)))
            if interval_s <= 0.0:
                continue
            vol = float(np.sqrt(np.mean(returns**2) * SECONDS_PER_YEAR / interval_s))
            previous = Weights(
                float(asset.init_asset_weight or 0.0),
                float(asset.maint_asset_weight or 0.0),
                float(asset.init_liab_weight or 0.0),
                float(asset.maint_liab_weight or 0.0),
            )
            recommended = recommend_weights(symbol, vol, previous=previous).weights.as_dict()
            moved = max(abs(v - getattr(previous, k)) for k, v in recommended.items())
            if moved < self.config.haircut_min_change:
                continue
            key = f"haircuts:{symbol}:{stamp:.3f}"
            done.append(self.set_asset_params(symbol, recommended, key, "dynamic-haircuts"))
        return done

    def sweep(self, now_s: float | None = None) -> int:
        """Re-aggregate every asset at ``now_s``: a feed that went quiet turns stale, then
        halted, with an event, even when no tick arrives (run on a timer)."""
        return self.process(now_s, self.market_book.assets)

    def _remargin(self, accounts: IntArray) -> list[Published]:
        started = time.perf_counter()
        self.tables = self._live_tables()
        old = self.work.remargin(self.tables, accounts, self.thresholds)
        self.remargins += 1
        new = self.work.status[accounts]
        changed = accounts[new != old]
        pushed = changed
        if self.watched:
            watched = np.fromiter(self.watched, dtype=np.int64)
            pushed = np.union1d(changed, watched[np.isin(watched, accounts)])
        messages = self._account_messages(pushed)
        for i, was in zip(changed.tolist(), old[new != old].tolist(), strict=True):
            now = int(self.work.status[i])
            # hysteresis: an account flapping around the threshold is called once a while
            recent = (
                self.now_s - self._called_at.get(i, -math.inf) < self.config.margin_call_repeat_s
            )
            if now == MARGIN_CALL and was < MARGIN_CALL and not recent:
                self._called_at[i] = self.now_s
                messages.extend(self._margin_call(i))
        if self.config.auto_liquidate:
            due = accounts[new >= LIQUIDATABLE]
            if due.size:
                messages.extend(self._liquidate(due, reason="maint health < 0"))
        self.last_remargin_ms = (time.perf_counter() - started) * 1e3
        if time.monotonic() - self._system_pushed_s >= SYSTEM_PUSH_S:  # O(rows): throttled
            self._system_pushed_s = time.monotonic()
            messages.append(Published("system", None, self.system_summary(brief=True)))
        return messages

    def _margin_call(self, i: int) -> list[Published]:
        summary = self.work.summary(i)
        key = f"margin_call:{summary['account_id']}:{time.time_ns()}"  # unique per call
        committed = self.ledger.commit(
            "margin_call",
            key,
            {"account": summary["account_id"]},
            [],
            summary,
            account_id=summary["account_id"],
        )
        return [
            Published(
                "events",
                summary["account_id"],
                self._event_payload("margin_call", committed, summary),
            )
        ]

    @staticmethod
    def _event_payload(
        kind: str, committed: Committed, result: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {"kind": kind, "seq": committed.seq, **result}

    # -- liquidation --------------------------------------------------------------------------
    def _liquidation_allowed(self, i: int) -> bool:
        exposed = np.flatnonzero(self.work.exposure[:, i])
        for a in exposed.tolist():
            symbol = self.work.asset_symbols[a]
            aggregated = self.oracle_prices.get(symbol)
            if aggregated is None or not aggregated.state.allows_liquidation:
                return False  # never liquidate on a price nobody vouches for now
        return True

    def _liquidate(self, due: IntArray, reason: str, force: bool = False) -> list[Published]:
        from crossmargin.liquidation import liquidate_arrays
        from crossmargin.liquidation.engine import accounts_from_arrays

        chosen = [
            int(i)
            for i in due.tolist()
            if (force or self._retry_after.get(int(i), 0.0) <= self.now_s)
            and (force or self._liquidation_allowed(int(i)))
        ]
        if not chosen:
            return []
        models = [self.work.account_model(i) for i in chosen]
        arrays = compile_accounts(self.tables, models, settle_rows=True)
        fund = self.system.get("insurance_fund_usd", 0.0)
        run = liquidate_arrays(self.tables, arrays, self.config.liquidation(fund))
        after = accounts_from_arrays(self.tables, run.final, models)
        flows = run.flows
        outcomes = {o.account: o for o in run.outcomes}
        steps: dict[str, list[dict[str, Any]]] = {}
        for event in run.events:
            data = event.to_dict()
            data.pop("changes")
            steps.setdefault(event.account, []).append(data)
        totals = dict(self.system)
        totals["insurance_fund_usd"] = flows.insurance_fund_usd
        totals["liquidator_fees_usd"] = (
            totals.get("liquidator_fees_usd", 0.0) + flows.liquidator_usd
        )
        totals["makers_usd"] = totals.get("makers_usd", 0.0) + flows.makers_usd
        totals["socialized_usd"] = totals.get("socialized_usd", 0.0) + flows.socialized_usd
        totals["bad_debt_usd"] = totals.get("bad_debt_usd", 0.0) + flows.socialized_external_usd
        batch: list[tuple[str, str, dict[str, Any], list[Change], dict[str, Any], str | None]] = []
        stamp = str(time.time_ns())  # unique: two batches at one price time are two events
        for i, old, new in zip(chosen, models, after, strict=True):
            outcome = outcomes[old.id]
            if not steps.get(old.id) and outcome.status == "healthy":
                continue
            owner = self.work.owners[i]
            result = {
                **outcome.to_dict(),
                "reason": reason,
                "prices_usd": {
                    s: float(self.price_usd[a])
                    for a, s in enumerate(self.work.asset_symbols)
                    if self.work.exposure[a, i]
                },
                "steps": steps.get(old.id, []),
            }
            batch.append(
                (
                    "liquidation",
                    f"liquidation:{old.id}:{stamp}",
                    {"account": old.id, "reason": reason},
                    _account_changes(new, owner, old),
                    result,
                    old.id,
                )
            )
        system_changes: list[Change] = [
            {"t": "system", "name": k, "value": v}
            for k, v in totals.items()
            if self.system.get(k) != v
        ]
        flows_result = {**flows.to_dict(), "accounts": [b[5] for b in batch]}
        batch.append(
            (
                "liquidation_flows",
                f"liquidation_flows:{stamp}:{chosen[0]}",
                {"accounts": [b[5] for b in batch]},
                system_changes,
                flows_result,
                None,
            )
        )
        committed = self.ledger.commit_many(batch)
        if any(c.replayed for c in committed):  # memory would diverge from the database
            raise RuntimeError("liquidation event key collision: state not applied")
        self.system = totals
        messages: list[Published] = []
        for i, new in zip(chosen, after, strict=True):
            self.work.write_account(i, new)
        index = np.array(sorted(chosen), dtype=np.int64)
        self.work.remargin(self.tables, index, self.thresholds)
        for i in chosen:
            if self.work.status[i] >= LIQUIDATABLE:
                self._retry_after[i] = self.now_s + self.config.liquidation_retry_s
            else:
                self._retry_after.pop(i, None)
        for (kind, _key, _body, _changes, result, account_id), done in zip(
            batch, committed, strict=True
        ):
            messages.append(
                Published("events", account_id, self._event_payload(kind, done, result))
            )
        messages.extend(self._account_messages(index))
        return messages

    def liquidate_now(self, account_id: str, key: str) -> dict[str, Any]:
        """Manual liquidation by a risk admin (only an account with maint health < 0)."""
        with self.lock:
            i = self.work.account_index(account_id)
            if self.work.status[i] < LIQUIDATABLE:
                raise Refused(
                    "account", "not liquidatable: maint health >= 0", self.work.summary(i)
                )
            messages = self._liquidate(np.array([i]), reason=f"manual ({key})", force=True)
            self._publish(messages)
            return self.work.summary(i)

    # -- money movements ------------------------------------------------------------------------
    def movement(
        self,
        kind: str,
        account_id: str,
        key: str,
        body: Mapping[str, Any],
    ) -> Committed:
        """A deposit, withdrawal or trade; idempotent by ``key``; refused if it would leave
        init health < 0 while adding risk."""
        with self.lock:  # looked up under the writer lock: a retry racing its original waits
            stored = self.ledger.lookup(key, {"kind": kind, "account": account_id, **body})
            if stored is not None:
                return stored
            i = self.work.account_index(account_id)
            old = self.work.account_model(i)
            trades: list[Trade] = []
            withdrawals: dict[str, float] = {}
            extra: dict[str, Any] = {}
            if kind in ("deposit", "withdrawal"):
                asset = str(body["asset"])
                self.work.asset_id(asset, "asset")
                qty = _finite(
                    "qty", body["qty"], 0.0, MAX_ABS_QTY, f"must be in (0, {MAX_ABS_QTY:g}]"
                )
                if qty <= 0.0:
                    raise InputError("qty", body["qty"], "must be > 0")
                withdrawals[asset] = qty if kind == "withdrawal" else -qty
                if kind == "withdrawal":
                    extra["blocked"] = self._oracle_blocks([asset], f"withdrawal of {asset}")
            elif kind == "trade":
                market = str(body["market"])
                m = self.work.market_id(market, "market")
                if m in self.base_tables.option_issue or self._expired(m):
                    raise Refused("market", f"{market} cannot be traded (expired or unpriced)")
                qty = _finite(
                    "qty",
                    body["qty"],
                    -MAX_ABS_QTY,
                    MAX_ABS_QTY,
                    f"must be within +/-{MAX_ABS_QTY:g}",
                )
                if qty == 0.0:
                    raise InputError("qty", body["qty"], "must not be 0")
                mark = self._mark_settle(m)
                price = body.get("price")
                if price is None:
                    price = mark
                else:
                    price = _finite(
                        "price", price, 0.0, MAX_PRICE_USD, "must be a finite price >= 0"
                    )
                    band = self.config.trade_price_band_frac
                    if abs(price - mark) > band * mark:
                        raise Refused(
                            "price", f"{price:g} is more than {band:.0%} from the mark {mark:g}"
                        )
                trades.append(Trade(market=market, qty=qty, price=price))
                spec = self.market_book.markets[market]
                current = next((p.qty for p in old.positions if p.market == market), 0.0)
                if abs(current + qty) > abs(current):
                    extra["blocked"] = self._oracle_blocks(
                        [spec.underlying, spec.settle_asset], f"trade in {market}"
                    )
                extra["house_usd"] = (
                    qty * (price - mark) * float(self.price_usd[self.base_tables.market_settle[m]])
                )
            else:
                raise InputError("kind", kind, "unknown movement")
            try:
                new = apply_changes(self.market_book, old, trades, withdrawals, self.tables)
            except CrossmarginError:
                raise
            except ValueError as exc:  # pydantic's validation of the new account
                raise InputError("body", dict(body), str(exc).splitlines()[0]) from None
            before = self.work.summary(i)
            before_groups = self._group_init_health(i)
            self.work.write_account(i, new)
            index = np.array([i], dtype=np.int64)
            self.work.remargin(self.tables, index, self.thresholds)
            after = self.work.summary(i)
            after_groups = self._group_init_health(i)
            adds_risk = kind == "withdrawal" or bool(np.any(after_groups < before_groups - 1e-9))
            reason = None
            if extra.get("blocked"):
                reason = "; ".join(extra["blocked"])
            elif adds_risk and np.any(after_groups < 0.0):
                reason = (
                    f"would leave init health {float(after['init_health_usd']):.2f} USD "
                    f"(needs >= 0)"
                )
            if reason is not None:
                self.work.write_account(i, old)
                self.work.remargin(self.tables, index, self.thresholds)
                raise Refused(kind, reason, {"before": before, "would_be": after})
            result = {
                "kind": kind,
                "account_id": account_id,
                **{k: v for k, v in body.items()},
                "before": before,
                "after": after,
            }
            if kind == "trade":
                result["price"] = trades[0].price
            changes = _account_changes(new, self.work.owners[i], old)
            house = extra.get("house_usd", 0.0)
            if house:
                self.system["house_usd"] = self.system.get("house_usd", 0.0) + house
                changes.append(
                    {"t": "system", "name": "house_usd", "value": self.system["house_usd"]}
                )
            try:
                committed = self.ledger.commit(
                    kind,
                    key,
                    {"kind": kind, "account": account_id, **body},
                    changes,
                    result,
                    account_id=account_id,
                )
            except Exception:
                self.work.write_account(i, old)  # the database refused: memory follows it
                self.work.remargin(self.tables, index, self.thresholds)
                raise
            messages = [
                Published("events", account_id, self._event_payload(kind, committed, result))
            ]
            messages.extend(self._account_messages(index))
            if self.work.status[i] >= LIQUIDATABLE and self.config.auto_liquidate:
                messages.extend(self._liquidate(index, reason="maint health < 0 after a movement"))
            self._publish(messages)
            return committed

    def _group_init_health(self, i: int) -> FloatArray:
        g0, g1 = self.work.first_group(i), int(self.work.arrays.account_group_start[i + 1])
        health: FloatArray = (
            self.work.weighted_assets[INIT, g0:g1] - self.work.weighted_liabs[INIT, g0:g1]
        )
        return health.copy()

    def _expired(self, m: int) -> bool:
        expiry = self.expiries_s[m]
        return bool(np.isfinite(expiry) and expiry <= self.now_s)

    def _mark_settle(self, m: int) -> float:
        marks = market_marks_usd(self.tables)
        settle = float(self.price_usd[self.base_tables.market_settle[m]])
        return float(marks[m]) / settle

    def what_if_blocks(
        self, account: Account, trades: Sequence[Trade], withdrawals: Mapping[str, float]
    ) -> list[str]:
        """Why a hypothetical change would be refused on the oracle's state (empty: it would
        not be, on that ground)."""
        reasons: list[str] = []
        for asset, qty in withdrawals.items():
            if qty > 0:
                reasons += self._oracle_blocks([asset], f"withdrawal of {asset}")
        held = {p.market: p.qty for p in account.positions}
        for trade in trades:
            old = held.get(trade.market, 0.0)
            if abs(old + trade.qty) > abs(old):
                spec = self.market_book.markets[trade.market]
                reasons += self._oracle_blocks(
                    [spec.underlying, spec.settle_asset], f"trade in {trade.market}"
                )
            held[trade.market] = old + trade.qty
        return reasons

    def _oracle_blocks(self, assets: Iterable[str], what: str) -> list[str]:
        reasons = []
        for symbol in dict.fromkeys(assets):
            aggregated = self.oracle_prices.get(symbol)
            state = aggregated.state if aggregated else OracleState.HALTED
            if not state.allows_new_risk:
                reasons.append(f"{what}: the {symbol} oracle is {state.value}, new risk blocked")
        return reasons

    def apply_funding(self, market: str, rate_frac: float, key: str, who: str) -> Committed:
        """A funding payment of ``rate_frac`` of each position's notional at the mark: longs
        pay shorts when positive. Each position's unrealized funding (owed, settle units) grows
        by ``qty x mark x rate``; the net imbalance is the house's (``house_usd``)."""
        body = {"market": market, "rate_frac": rate_frac, "by": who}
        with self.lock:  # looked up under the writer lock: a retry racing its original waits
            stored = self.ledger.lookup(key, body)
            if stored is not None:
                return stored
            m = self.work.market_id(market, "market")
            rate = _finite("rate_frac", rate_frac, -0.1, 0.1, "must be within +/-0.1 per payment")
            mark = self._mark_settle(m)
            settle_usd = float(self.price_usd[self.base_tables.market_settle[m]])
            changes: list[Change] = []
            updated: list[tuple[int, Account]] = []
            owed_total = 0.0
            for i, account in enumerate(self.work.accounts):
                positions = []
                touched = False
                for p in account.positions:
                    if p.market == market and p.qty != 0.0:
                        owed = p.qty * mark * rate
                        owed_total += owed
                        p = p.model_copy(update={"unrealized_funding": p.unrealized_funding + owed})
                        touched = True
                    positions.append(p)
                if touched:
                    new = account.model_copy(update={"positions": positions})
                    changes.extend(_account_changes(new, self.work.owners[i], account))
                    updated.append((i, new))
            house = self.system.get("house_usd", 0.0) + owed_total * settle_usd
            changes.append({"t": "system", "name": "house_usd", "value": house})
            result = {
                "market": market,
                "rate_frac": rate,
                "mark": mark,
                "positions": len(updated),
                "net_paid_by_accounts_usd": owed_total * settle_usd,
            }
            committed = self.ledger.commit("funding", key, body, changes, result)
            self.system["house_usd"] = house
            for i, new in updated:
                self.work.write_account(i, new)
            index = np.array(sorted(i for i, _ in updated), dtype=np.int64)
            messages = self._remargin(index)
            messages.append(
                Published("events", None, self._event_payload("funding", committed, result))
            )
            self._publish(messages)
            return committed

    # -- accounts and parameters ------------------------------------------------------------------
    def open_account(self, account: Account, owner: str, key: str) -> Committed:
        body = {"account": account.model_dump(mode="json"), "owner": owner}
        with self.lock:  # looked up under the writer lock: a retry racing its original waits
            stored = self.ledger.lookup(key, body)
            if stored is not None:
                return stored
            if account.id in self.work.index:
                raise InputError("id", account.id, "an account with this id exists")
            book_from_data(
                {
                    **self.market_book.model_dump(mode="json"),
                    "accounts": [account.model_dump(mode="json")],
                }
            )
            i = self.work.add_account(account, owner)
            self.work.remargin(self.tables, np.arange(len(self.work.accounts)), self.thresholds)
            result = self.work.summary(i)
            return self.ledger.commit(
                "account_open",
                key,
                body,
                _account_changes(account, owner, None),
                result,
                account.id,
            )

    def set_asset_params(
        self, symbol: str, patch: Mapping[str, Any], key: str, who: str
    ) -> Committed:
        """Change an asset's risk parameters (a versioned parameter event); re-margins all."""
        body = {"asset": symbol, "patch": dict(patch), "by": who}
        with self.lock:  # looked up under the writer lock: a retry racing its original waits
            stored = self.ledger.lookup(key, body)
            if stored is not None:
                return stored
            if symbol not in self.market_book.assets:
                raise UnknownNameError("asset", symbol, "unknown asset")
            if "price" in patch:
                raise InputError("patch.price", patch["price"], "prices come from the oracle")
            data = self.market_book.model_dump(mode="json")
            data["assets"][symbol] = {**data["assets"][symbol], **dict(patch)}
            new_book = book_from_data(data)
            with self.engine.connect() as connection:
                version: int = connection.execute(
                    sa.select(db.assets.c.version).where(db.assets.c.symbol == symbol)
                ).scalar_one()
            params = _dump(new_book.assets[symbol])
            change = {
                "t": "assets",
                "symbol": symbol,
                "version": int(version) + 1,
                "params": params,
            }
            self.market_book = new_book
            self.base_tables = _kernel_safe(compile_market(new_book))
            self.work.market_book = new_book
            messages = self._remargin(np.arange(len(self.work.accounts)))
            result = {"asset": symbol, "version": int(version) + 1, "params": params}
            committed = self.ledger.commit("params", key, body, [change], result)
            messages.append(
                Published("events", None, self._event_payload("params", committed, result))
            )
            self._publish(messages)
            return committed

    # -- views ----------------------------------------------------------------------------------
    def account_book(self, i: int) -> Book:
        """A one-account book at the live prices (for reports through the library)."""
        prices = {s: float(self.price_usd[a]) for a, s in enumerate(self.work.asset_symbols)}
        data = self.market_book.model_dump(mode="json")
        for symbol, price in prices.items():
            data["assets"][symbol]["price"] = price
        data["as_of"] = _iso(self.now_s)
        data["accounts"] = [self.work.account_model(i).model_dump(mode="json")]
        return book_from_data(data)

    def system_summary(self, brief: bool = False) -> dict[str, Any]:
        work = self.work
        counts = (
            np.bincount(work.status, minlength=len(STATUS_NAMES))
            if work.status.size
            else np.zeros(4, np.int64)
        )
        marks = market_marks_usd(self.tables)
        pos = work.arrays
        notional = np.abs(pos.pos_qty) * marks[pos.pos_market]
        oi = np.bincount(pos.pos_market, weights=notional, minlength=work.n_markets) / 2.0
        out: dict[str, Any] = {
            "time_s": self.now_s,
            "accounts": int(work.status.size),
            "status_counts": {name: int(counts[k]) for k, name in enumerate(STATUS_NAMES)},
            "pool_equity_usd": float(work.equity.sum()),
            "maint_weighted_assets_usd": float(work.maint_wa.sum()),
            "open_interest_usd": {s: float(oi[m]) for m, s in enumerate(work.market_symbols)},
            **{k: float(v) for k, v in self.system.items()},
            "prices_usd": {s: float(self.price_usd[a]) for a, s in enumerate(work.asset_symbols)},
            "ticks_accepted": self.ticks_accepted,
            "ticks_rejected": self.ticks_rejected,
            "last_remargin_ms": self.last_remargin_ms,
        }
        if not brief:
            out["oracle"] = self.oracle_view()
            order = np.argsort(work.maint_health)[:10]
            out["largest_risks"] = [work.summary(int(i)) for i in order]
        return out

    def distances(self) -> Any:
        """Leverage and distance to liquidation of every account (:mod:`crossmargin.service.
        risk`): the last computation, refreshed by :meth:`refresh_distances` on a timer;
        computed here only when there is none or the accounts changed (call under the lock)."""
        from crossmargin.service.risk import Snapshot, compute_distances

        cached = self._distances
        if cached is None or cached.leverage.size != len(self.work.accounts):
            self._distances = compute_distances(Snapshot.of(self))
        return self._distances

    def refresh_distances(self) -> None:
        """Recompute :meth:`distances` from a snapshot, outside the writer lock."""
        from crossmargin.service.risk import Snapshot, compute_distances

        with self.lock:
            if self._distances is not None and self._distances_version == self.remargins:
                return  # nothing re-margined since the last computation
            version = self.remargins
            snapshot = Snapshot.of(self)
        fresh = compute_distances(snapshot)
        self._distances_version = version
        with self.lock:
            if fresh.leverage.size == len(self.work.accounts):
                self._distances = fresh

    def oracle_view(self) -> dict[str, Any]:
        view = {}
        for symbol in self.work.asset_symbols:
            aggregated = self.oracle_prices.get(symbol)
            view[symbol] = {
                "state": aggregated.state.value if aggregated else "halted",
                "price_usd": _num(aggregated.price_usd) if aggregated else None,
                "confidence_usd": _num(aggregated.confidence_usd) if aggregated else None,
                "stable_price_usd": _num(aggregated.stable_price_usd) if aggregated else None,
                "sources_used": aggregated.n_used if aggregated else 0,
                "margin_price_usd": float(self.price_usd[self.work.asset_id(symbol)]),
                "updated_s": aggregated.timestamp_s if aggregated else None,
            }
        return view

    def persist_prices(self) -> None:
        """Save the live prices (not ledger state: they re-arrive from the feeds)."""
        with self.lock:
            rows = [
                {"asset": s, "price_usd": float(self.price_usd[a]), "updated_s": self.now_s}
                for a, s in enumerate(self.work.asset_symbols)
            ]
        with self.engine.begin() as connection:
            connection.execute(db.prices.delete())
            connection.execute(db.prices.insert(), rows)


def _kernel_safe(tables: MarketTables) -> MarketTables:
    """Option markets nobody may trade (no vol, expired) get a placeholder vol so that the
    dense layout's zero rows value to exactly 0 instead of 0 x NaN."""
    if not tables.option_issue:
        return tables
    from dataclasses import replace

    vol = tables.option_vol.copy()
    for m in tables.option_issue:
        if not np.isfinite(vol[m]):
            vol[m] = 0.5
    return replace(tables, option_vol=vol)


def _dump(model: Any) -> str:
    return canonical_json(model.model_dump(mode="json", exclude_none=True))


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _iso(epoch_s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


def _account_changes(new: Account, owner: str, old: Account | None) -> list[Change]:
    """Row changes that take the database from ``old`` (None: absent) to ``new``."""
    changes: list[Change] = []
    if old is None or (old.mode, old.profile) != (new.mode, new.profile):
        changes.append(
            {
                "t": "accounts",
                "id": new.id,
                "owner": owner,
                "mode": new.mode,
                "profile": new.profile,
            }
        )
    old_bal = dict(old.balances) if old else {}
    for asset, qty in new.balances.items():
        if old_bal.get(asset) != qty:
            changes.append({"t": "balances", "account_id": new.id, "asset": asset, "qty": qty})
    for asset in old_bal.keys() - new.balances.keys():
        changes.append({"t": "balances", "account_id": new.id, "asset": asset, "delete": True})
    old_pos = {p.market: p for p in old.positions} if old else {}
    new_pos = {p.market: p for p in new.positions}
    for market, p in new_pos.items():
        if old_pos.get(market) != p:
            changes.append(
                {
                    "t": "positions",
                    "account_id": new.id,
                    "market": market,
                    "qty": p.qty,
                    "entry_price": p.entry_price,
                    "funding": p.unrealized_funding,
                    "isolated_collateral": canonical_json(p.isolated_collateral),
                }
            )
    for market in old_pos.keys() - new_pos.keys():
        changes.append({"t": "positions", "account_id": new.id, "market": market, "delete": True})
    return changes


__all__ = ["BANKRUPT", "MAINT", "MarginCore", "Published", "Refused"]
