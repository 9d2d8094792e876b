"""A stable price that follows the oracle with a bounded rate of change (Mango v4 model).

The stable price moves towards the oracle price by at most ``stable_growth_limit`` per second
(relative), further slowed by the square of the ratio between it and a *delay price*: a 24-slot
ring of hourly averages of the oracle, each allowed to move at most ``delay_growth_limit`` from
the previous slot. A sudden oracle spike therefore moves the stable price only gradually, so a
manipulated price cannot be borrowed against at once. Used for init checks only: assets valued
at ``min(oracle, stable)``, liabilities at ``max(oracle, stable)``.

Source: blockworks-foundation/mango-v4, ``programs/mango-v4/src/state/stable_price.rs``
(``StablePriceModel::update``; defaults 1 h intervals, 24 slots, 6 %/h, 0.03 %/s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from crossmargin.errors import InputError

#: Updates closer together than this are ignored, farther apart count as this long (seconds).
MIN_UPDATE_INTERVAL_S = 10.0
MAX_UPDATE_INTERVAL_S = 600.0


class StablePriceConfig(BaseModel):
    """Parameters of the stable price (Mango v4 defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_interval_s: float = Field(3600.0, gt=0, description="Length of one delay slot, s.")
    delay_slots: int = Field(24, ge=1, description="Slots in the delay ring (24 x 1 h = 24 h).")
    delay_growth_limit_frac: float = Field(
        0.06, ge=0, description="Max relative move of the delay price between slots."
    )
    stable_growth_limit_frac_per_s: float = Field(
        0.0003, ge=0, description="Max relative move of the stable price per second."
    )


def _clamp_growth(target: float, previous: float, limit: float) -> float:
    """``target`` clamped to ``previous * [1 - limit, 1 + limit]``."""
    return min(max(target, previous * (1.0 - limit)), previous * (1.0 + limit))


@dataclass
class StablePrice:
    """Mutable state of one asset's stable price; call :meth:`update` with each oracle price."""

    config: StablePriceConfig = field(default_factory=StablePriceConfig)
    stable_price: float = 0.0
    last_update_s: float = 0.0
    delay_prices: list[float] = field(default_factory=list)
    delay_accumulator_price: float = 0.0
    delay_accumulator_time_s: float = 0.0
    last_delay_slot: int = 0

    @classmethod
    def starting_at(
        cls, price: float, now_s: float, config: StablePriceConfig | None = None
    ) -> StablePrice:
        model = cls(config=config or StablePriceConfig())
        model.reset_to_price(price, now_s)
        return model

    def reset_to_price(self, price: float, now_s: float) -> None:
        """Forget history: stable and every delay slot at ``price``."""
        if not price > 0.0:
            raise InputError("stable_price.price", price, "must be a finite number > 0")
        self.stable_price = price
        self.delay_prices = [price] * self.config.delay_slots
        self.delay_accumulator_price = 0.0
        self.delay_accumulator_time_s = 0.0
        self.last_update_s = now_s
        self.last_delay_slot = self._slot(now_s)

    def _slot(self, t_s: float) -> int:
        return int(t_s // self.config.delay_interval_s) % self.config.delay_slots

    @property
    def delay_price(self) -> float:
        """The delay price currently in use (the most delayed slot)."""
        return self.delay_prices[self.last_delay_slot]

    def update(self, now_s: float, oracle_price: float) -> float:
        """Advance to ``now_s`` with a new oracle price; returns the stable price.

        ``dt < 10 s`` is ignored; ``dt`` is capped at 600 s for the growth limit, so a long
        silence cannot release a large jump at once.
        """
        cfg = self.config
        dt = now_s - self.last_update_s
        if dt < MIN_UPDATE_INTERVAL_S:
            return self.stable_price
        n_slots = cfg.delay_slots
        full_delay_passed = dt > n_slots * cfg.delay_interval_s
        dt_limited = min(dt, MAX_UPDATE_INTERVAL_S)
        self.last_update_s = now_s

        # delay price: average the oracle over each slot, clamped against the previous slot
        self.delay_accumulator_time_s += dt
        self.delay_accumulator_price += oracle_price * dt_limited
        slot = self._slot(now_s)
        if slot != self.last_delay_slot:
            previous = self.delay_prices[(self.last_delay_slot - 1) % n_slots]
            average = self.delay_accumulator_price / self.delay_accumulator_time_s
            new_delay = _clamp_growth(average, previous, cfg.delay_growth_limit_frac)
            if full_delay_passed:
                self.delay_prices = [new_delay] * n_slots
            else:  # fill every slot from the last one up to (not including) the current one
                i = self.last_delay_slot
                while i != slot:
                    self.delay_prices[i] = new_delay
                    i = (i + 1) % n_slots
            self.delay_accumulator_price = 0.0
            self.delay_accumulator_time_s = 0.0
            self.last_delay_slot = slot

        # stable price: growth limit shrinks with the square of the stable/delay disagreement
        delay = self.delay_prices[slot]
        previous_stable = self.stable_price
        ratio = previous_stable / delay if delay >= previous_stable else delay / previous_stable
        limit = cfg.stable_growth_limit_frac_per_s * ratio * ratio * dt_limited
        self.stable_price = _clamp_growth(oracle_price, previous_stable, limit)
        return self.stable_price
