"""Market features and the wave target: no look-ahead (perturbing later rows leaves earlier
features unchanged; features shifted one step into the future change the held-out score),
the liquidation-level map, bad input, and the model on the real ETH minutes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.predict.market import (
    FEATURES,
    WARMUP,
    future_sum,
    load_minutes,
    market_features,
    minutes_from_frame,
)
from crossmargin.predict.model import time_split
from crossmargin.predict.training import fit_and_evaluate, train_market
from tests.predict.helpers import ETH_MINUTES, needs_eth_minutes, synthetic_minute_frame


def _perturbed_after(frame: pd.DataFrame, t: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    n = len(frame) - t - 1
    move = np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    for column in ("bid", "ask"):
        out.iloc[t + 1 :, out.columns.get_loc(column)] *= move
    out.iloc[t + 1 :, out.columns.get_loc("liq_long_qty")] = rng.exponential(50.0, n)
    return out


@pytest.mark.parametrize("t", [WARMUP + 10, 1_500, 2_999])
def test_features_at_t_use_only_rows_up_to_t(t: int) -> None:
    """Rewrite every row after t (prices and liquidations): features and the analytic
    analogue at rows <= t are bit-identical; at t + 1 they differ (the test can fail)."""
    frame = synthetic_minute_frame(3_200, seed=4)
    before = market_features(minutes_from_frame(frame), 15)
    after = market_features(minutes_from_frame(_perturbed_after(frame, t)), 15)
    np.testing.assert_array_equal(before.values[: t + 1], after.values[: t + 1])
    np.testing.assert_array_equal(before.analytic[: t + 1], after.analytic[: t + 1])
    changed = ~np.isclose(before.values[t + 1], after.values[t + 1], equal_nan=True)
    assert changed.sum() >= 5


def test_future_sum_and_threshold_are_the_next_k_minutes() -> None:
    x = np.arange(10, dtype=float)
    out = future_sum(x, 3)
    assert out[0] == 1 + 2 + 3 and out[6] == 7 + 8 + 9
    assert np.isnan(out[7:]).all()


def test_level_map_distances_follow_the_leverage_levels() -> None:
    """A price flat at 1000 for a day: the nearest long cluster is the 100x level
    1000 (1 - 1/100 + 0.5 %) = 995 (bin edge within 0.1 %), the nearest short one 1005."""
    n = 1_000
    index = pd.date_range("2021-01-01", periods=n, freq="min", tz="UTC")
    frame = pd.DataFrame(
        {"bid": 999.99, "ask": 1000.01, "liq_long_qty": 0.0, "liq_short_qty": 0.0}, index=index
    )
    frame.iloc[1::2, frame.columns.get_loc("bid")] = 999.98  # a little vol: finite sd units
    features = market_features(minutes_from_frame(frame), 15)
    j = {name: k for k, name in enumerate(FEATURES)}
    sd = features.sigma_minute[-1] * math.sqrt(15)
    dist_long = features.values[-1, j["dist_long_sd"]] * sd
    dist_short = features.values[-1, j["dist_short_sd"]] * sd
    assert dist_long == pytest.approx(-math.log(0.995), abs=1.1e-3)
    assert dist_short == pytest.approx(math.log(1.005), abs=1.1e-3)
    # the analytic analogue is a probability, tiny for 0.5 % with a minute vol of ~1e-5
    assert 0.0 <= features.analytic[-1] < 1e-6


def test_crossed_levels_are_wiped() -> None:
    """After a 3 % fall the 100x and 50x long levels of the flat day are liquidated: the
    nearest long cluster is then the 25x level (1000 (1 - 4 % + 0.5 %) = 965)."""
    n = 1_200
    index = pd.date_range("2021-01-01", periods=n, freq="min", tz="UTC")
    mid = np.full(n, 1000.0)
    mid[1::2] = 1000.02
    mid[-100:] = 970.0
    mid[-100::2] = 970.02
    frame = pd.DataFrame(
        {"bid": mid - 0.01, "ask": mid + 0.01, "liq_long_qty": 0.0, "liq_short_qty": 0.0},
        index=index,
    )
    features = market_features(minutes_from_frame(frame), 15)
    j = FEATURES.index("dist_long_sd")
    sd = features.sigma_minute[-1] * math.sqrt(15)
    level = math.log(970.01) - features.values[-1, j] * sd
    assert math.exp(level) == pytest.approx(1000.0 * 0.965, rel=2e-3)


def test_bad_minute_input_is_one_line_naming_row_and_column(minute_frame: pd.DataFrame) -> None:
    bad = minute_frame.copy()
    bad.iloc[500, bad.columns.get_loc("liq_short_qty")] = np.nan
    with pytest.raises(InputError, match=r"liq_short_qty.*finite") as info:
        minutes_from_frame(bad)
    assert "2021-01-01 08:20" in str(info.value) and "\n" not in str(info.value)
    short = minutes_from_frame(minute_frame.iloc[:100])
    with pytest.raises(InputError, match="too short"):
        market_features(short, 15)
    with pytest.raises(InputError, match="too short"):
        train_market(minutes_from_frame(minute_frame.iloc[:2_000]), 15)
    data = minutes_from_frame(minute_frame)
    with pytest.raises(InputError, match="minutes"):
        market_features(data, 0)
    with pytest.raises(InputError, match="quantile"):
        train_market(data, 15, quantile=1.0)


def _shift_experiment(frame: pd.DataFrame, minutes: int = 15) -> tuple[Any, Any]:
    """The same model fitted on features at t and on features at t + 1 (one step of the
    future); returns both held-out evaluations."""
    data = minutes_from_frame(frame)
    features = market_features(data, minutes)
    usable = data.n - minutes - 1
    split = time_split(usable, embargo=minutes, start=WARMUP)
    future = future_sum(data.liq_usd, minutes)
    threshold = np.quantile(future[slice(*split.train)], 0.95)
    y = (future[:usable] > threshold).astype(np.int64)
    honest = features.values[:usable]
    leaked = features.values[1 : usable + 1]  # row t holds the features of t + 1
    analytic = features.analytic[:usable]
    runs = [
        fit_and_evaluate(x, y, analytic, features.names, split, "market", importance_repeats=1)[2]
        for x in (honest, leaked)
    ]
    return runs[0], runs[1]


def test_features_shifted_into_the_future_change_the_held_out_score() -> None:
    """One minute of the future (its return and liquidations) is information the honest
    features do not have: the held-out scores move, and log loss improves."""
    honest, leaked = _shift_experiment(synthetic_minute_frame(6_000, seed=2))
    h, lk = honest.by_model()["learned"], leaked.by_model()["learned"]
    assert abs(h.roc_auc - lk.roc_auc) > 1e-3 and abs(h.brier - lk.brier) > 1e-5
    assert lk.log_loss < h.log_loss


@needs_eth_minutes()
@pytest.mark.slow
def test_shift_on_the_real_minutes() -> None:
    frame = _real_frame()
    honest, leaked = _shift_experiment(frame)
    h, lk = honest.by_model()["learned"], leaked.by_model()["learned"]
    assert abs(h.roc_auc - lk.roc_auc) > 1e-3


def _real_frame() -> pd.DataFrame:
    from crossmargin.market.loaders import load_binance_liquidations

    return load_binance_liquidations(ETH_MINUTES)


@pytest.fixture(scope="module")
def real_market() -> Any:
    if not ETH_MINUTES.is_file():
        pytest.skip(f"{ETH_MINUTES} is absent (the shared data folder is not in a fresh clone)")
    data = load_minutes(ETH_MINUTES)
    return data, *train_market(data, 15)


def test_real_minutes_model_beats_the_base_rate_out_of_time(real_market: Any) -> None:
    """January 2021, last ~6 days held out: the learned model ranks waves (AUC > 0.65) and has
    a lower Brier score and log loss than the base rate; the threshold comes from the training
    part only and gives a 5 % training event rate."""
    data, model, evaluation = real_market
    scores = evaluation.by_model()
    learned, base = scores["learned"], scores["base rate"]
    assert learned.roc_auc > 0.65
    assert learned.brier < base.brier and learned.log_loss < base.log_loss
    assert model.target["event_rate_train"] == pytest.approx(0.05, abs=0.002)
    assert model.data["rows"] == data.n and len(model.data["sha256"]) == 64
    assert evaluation.period["test"][0] > evaluation.period["calibration"][1]
    assert [s.model for s in evaluation.scores] == [
        "learned",
        "analytic",
        "analytic, recalibrated",
        "base rate",
    ]


def test_real_minutes_wave_alert(real_market: Any) -> None:
    from crossmargin.predict.api import predict_wave

    data, model, _ = real_market
    result = predict_wave(data, model, last=3)
    assert len(result["rows"]) == 3 and result["minutes_ahead"] == 15
    for row in result["rows"]:
        assert 0.0 <= row["probability"] <= 1.0 and len(row["drivers"]) == 3
