"""Stress scenarios: named historical shocks applied to a whole book at once.

A scenario moves every asset's USD price by a relative shock - collateral, borrows and the
underlyings of perps and futures together (the marks follow their underlyings through the
kernel) - and the book is re-margined through the one risk kernel. The library ships in
``scenarios.yaml`` (sources and assumptions stated there); users add their own YAML with the
same layout.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crossmargin.book.io import input_error_from_validation, read_structured
from crossmargin.book.schema import SHOCK_MAX, Book
from crossmargin.display import rounded_repr
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.locations.schema import base_asset
from crossmargin.margin.engine import MarginEngine
from crossmargin.margin.results import AccountMargin

#: A relative move: finite, > -100 % and <= SHOCK_MAX (docs/methodology.md, "Bounds")
Shock = Annotated[float, Field(gt=-1.0, le=SHOCK_MAX, strict=True, allow_inf_nan=False)]


class Scenario(BaseModel):
    """One named shock (relative moves; -0.3 is a 30 % fall)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: datetime.date | None = None
    measured: bool = False
    description: str = ""
    source: str = ""
    shocks: dict[str, Shock] = Field(default_factory=dict)
    default_shock: Shock = 0.0
    stable_shock: Shock = 0.0
    assumptions: list[str] = Field(default_factory=list)

    def shock_for(
        self, symbol: str, stablecoins: frozenset[str], aliases: Mapping[str, str]
    ) -> float:
        """The shock of ``symbol``: its own, its alias's, the stable or the default one; a
        located symbol of a compiled book (``ETH@arbitrum``) moves with its base asset."""
        if symbol in self.shocks:
            return self.shocks[symbol]
        if base_asset(symbol) != symbol:
            return self.shock_for(base_asset(symbol), stablecoins, aliases)
        base = aliases.get(symbol)
        if base is not None and base in self.shocks:
            return self.shocks[base]
        if symbol in stablecoins:
            return self.stable_shock
        return self.default_shock


class ScenarioLibrary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stablecoins: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    scenarios: dict[str, Scenario]

    def merged(self, other: ScenarioLibrary) -> ScenarioLibrary:
        return ScenarioLibrary(
            stablecoins=sorted(set(self.stablecoins) | set(other.stablecoins)),
            aliases={**self.aliases, **other.aliases},
            scenarios={**self.scenarios, **other.scenarios},
        )

    def prices(self, book: Book, name: str) -> dict[str, float]:
        """The book's USD prices after scenario ``name``."""
        scenario = self.scenario(name)
        stable = frozenset(self.stablecoins)
        return {
            symbol: asset.price * (1.0 + scenario.shock_for(symbol, stable, self.aliases))
            for symbol, asset in book.assets.items()
        }

    def scenario(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise UnknownNameError(
                "scenario", name, f"unknown (known: {', '.join(sorted(self.scenarios))})"
            ) from None


def _parse_library(data: Any, source: str) -> ScenarioLibrary:
    if not isinstance(data, Mapping):
        raise InputError("file", source, "a scenario file must be a mapping with 'scenarios'")
    try:
        return ScenarioLibrary.model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(exc) from None


def builtin_scenarios() -> ScenarioLibrary:
    """The shipped library (see ``scenarios.yaml`` for sources and assumptions)."""
    text = resources.files("crossmargin.risk").joinpath("scenarios.yaml").read_text("utf-8")
    return _parse_library(yaml.safe_load(text), "scenarios.yaml")


def load_scenarios(path: str | Path | None = None) -> ScenarioLibrary:
    """The built-in library, extended (and overridden by name) by a user YAML file."""
    library = builtin_scenarios()
    if path is None:
        return library
    file = Path(path)
    if not file.is_file():
        raise InputError("scenarios", str(file), "no such file")
    data = read_structured(file)  # the book's safe loader: size, depth and alias limits
    return library.merged(_parse_library(data, str(file)))


@rounded_repr
@dataclass(frozen=True)
class ComposedShock:
    """A ``--shock`` on top of a scenario's move of the same asset, compounded on the price:
    total = (1 + scenario) (1 + shock) - 1 (e.g. -24.4 % then -10 % is -32.0 %)."""

    scenario_frac: float
    shock_frac: float

    @property
    def total_frac(self) -> float:
        return (1.0 + self.scenario_frac) * (1.0 + self.shock_frac) - 1.0

    def to_dict(self) -> dict[str, float]:
        return {
            "scenario_frac": self.scenario_frac,
            "shock_frac": self.shock_frac,
            "total_frac": self.total_frac,
        }


@rounded_repr
@dataclass(frozen=True)
class StressResult:
    """Every account's margin under one scenario (and the extra shocks compounded on it)."""

    scenario: str
    prices_usd: dict[str, float]
    accounts: list[AccountMargin]
    extra_shocks: dict[str, ComposedShock] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "prices_usd": self.prices_usd,
            "extra_shocks": {k: v.to_dict() for k, v in self.extra_shocks.items()},
            "accounts": [
                {
                    "account_id": a.account_id,
                    "equity_usd": a.equity_usd,
                    "maint_health_usd": a.maint.health_usd,
                    "init_health_usd": a.init.health_usd,
                    "liquidatable": a.liquidatable,
                    "liquidatable_buckets": failing_buckets(a),
                }
                for a in self.accounts
            ],
        }


def failing_buckets(account: AccountMargin) -> list[str]:
    """Names of an isolated account's buckets below maint (its total may still be positive:
    each bucket is liquidated on its own); empty for a cross or portfolio account."""
    if account.mode != "isolated":
        return []
    return [b.name for b in account.buckets if b.liquidatable]


def run_stress(
    book: Book,
    library: ScenarioLibrary,
    names: list[str] | None = None,
    extra_shocks: Mapping[str, float] | None = None,
) -> list[StressResult]:
    """Re-margin every account under each scenario (default: all of the library).

    ``extra_shocks`` (symbol -> relative move) compound with the scenario's move of that asset:
    price = book price x (1 + scenario move) x (1 + shock) (:class:`ComposedShock`); the other
    assets keep the scenario's moves (an extra ETH shock does not move wstETH).
    """
    from crossmargin.locations.view import located_view

    book = located_view(book).book  # remote lots as rows (a compiled book is returned as is)
    engine = MarginEngine(book)
    for symbol, shock in (extra_shocks or {}).items():
        if symbol not in book.assets:
            raise UnknownNameError(f"shock.{symbol}", symbol, "not an asset of the book")
        if not shock > -1.0:
            raise InputError(f"shock.{symbol}", shock, "a price cannot fall 100 % or more")
        if not shock <= SHOCK_MAX:
            raise InputError(f"shock.{symbol}", shock, f"must be <= {SHOCK_MAX:g} (+10,000 %)")
    results = []
    for name in names or list(library.scenarios):
        prices = library.prices(book, name)
        scenario, stable = library.scenario(name), frozenset(library.stablecoins)
        composed = {}
        for symbol, shock in (extra_shocks or {}).items():
            move = ComposedShock(scenario.shock_for(symbol, stable, library.aliases), shock)
            if not move.total_frac <= SHOCK_MAX:
                raise InputError(
                    f"shock.{symbol}",
                    shock,
                    f"compounded with {name} it exceeds {SHOCK_MAX:g} (+10,000 %)",
                )
            for moved in book.assets:  # the asset and its located lots (#17) move together
                if base_asset(moved) == symbol:
                    prices[moved] *= 1.0 + shock
            composed[symbol] = move
        accounts = engine.margin(prices=prices, with_liquidation_prices=False)
        results.append(StressResult(name, prices, accounts, composed))
    return results
