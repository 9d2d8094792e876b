"""The learned model: calibration on synthetic data with a known probability, the compiled
scorer against scikit-learn, drivers and importance, the model file (version, hash, kinds),
time splits and the metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossmargin.errors import InputError
from crossmargin.predict.evaluate import brier, log_loss, reliability, score
from crossmargin.predict.model import (
    MAX_DEPTH,
    MODEL_VERSION,
    LiquidationModel,
    TreeScorer,
    content_hash,
    fit_calibrated,
    load_model,
    time_split,
)
from crossmargin.predict.training import fit_and_evaluate


def _known_probability(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, the true event probability (logistic in a nonlinear score; rare: ~4 %) and
    outcomes drawn from it."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    logit = -4.0 + 1.2 * x[:, 0] + 0.8 * np.maximum(x[:, 1], 0.0) ** 2 - 0.6 * x[:, 2]
    p = 1.0 / (1.0 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    return x, p, y


@pytest.fixture(scope="module")
def synthetic() -> dict[str, Any]:
    x, p, y = _known_probability(60_000, seed=7)
    split = time_split(len(y))
    scorer, estimator, evaluation, reference = fit_and_evaluate(
        x, y, p, [f"x{j}" for j in range(5)], split, "synthetic", importance_repeats=2
    )
    return {
        "x": x,
        "p": p,
        "y": y,
        "split": split,
        "scorer": scorer,
        "estimator": estimator,
        "evaluation": evaluation,
        "reference": reference,
    }


def test_calibrated_probabilities_match_the_known_probability(synthetic: dict[str, Any]) -> None:
    """Held out (event rate ~7 %): the learned probability is within 0.02 of the truth on
    average (the base rate is 0.07 off), its Brier score within 3 % of the oracle's (the true
    p), and each reliability bin's observed frequency within 3 binomial standard errors
    (+0.005) of its mean forecast."""
    te = slice(*synthetic["split"].test)
    y, p_true = synthetic["y"][te], synthetic["p"][te]
    learned = synthetic["evaluation"].forecasts["learned"]
    assert np.mean(np.abs(learned - p_true)) < 0.02
    assert np.mean(np.abs(np.mean(y) - p_true)) > 0.05
    assert brier(y, learned) < 1.03 * brier(y, p_true)
    rel = reliability("learned", y, learned, bins=8)
    for forecast, observed, count in zip(rel.mean_forecast, rel.observed, rel.count, strict=True):
        se = math.sqrt(max(forecast * (1 - forecast), 1e-6) / count)
        assert abs(observed - forecast) < 3 * se + 0.005, (forecast, observed, count)
    # the base rate is calibrated on average only; the learned model also ranks
    scores = synthetic["evaluation"].by_model()
    assert scores["learned"].roc_auc > scores["base rate"].roc_auc + 0.2


def test_an_uncalibrated_forecast_is_caught_by_the_scores(synthetic: dict[str, Any]) -> None:
    """Squashing the true probabilities toward 0.5 keeps AUC but ruins Brier and log loss:
    the scores (and hence the tests above) can tell calibration apart from ranking."""
    te = slice(*synthetic["split"].test)
    y, p_true = synthetic["y"][te], synthetic["p"][te]
    squashed = 0.5 + 0.5 * (p_true - 0.5)
    good, bad = score("true", y, p_true, 0.04), score("squashed", y, squashed, 0.04)
    assert bad.roc_auc == pytest.approx(good.roc_auc)
    assert bad.brier > 2 * good.brier and bad.log_loss > good.log_loss


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_compiled_scorer_equals_scikit_learn_exactly(method: str) -> None:
    """Same float operations: raw scores and probabilities bit-identical, missing values
    included (each node's learned direction)."""
    x, _p, y = _known_probability(12_000, seed=3)
    x[np.random.default_rng(0).random(x.shape) < 0.05] = np.nan
    estimator, used = fit_calibrated(x[:7_000], y[:7_000], x[7_000:10_000], y[7_000:10_000], method)
    assert used == method
    scorer = TreeScorer.from_sklearn(estimator, 5)
    held = x[10_000:]
    trees = estimator.calibrated_classifiers_[0].estimator
    trees = getattr(trees, "estimator", trees)
    np.testing.assert_array_equal(scorer.raw(held), trees.decision_function(held))
    np.testing.assert_array_equal(scorer.proba(held), estimator.predict_proba(held)[:, 1])
    with pytest.raises(InputError, match="features"):
        scorer.proba(held[:, :4])


def test_deep_trees_are_walked_node_by_node() -> None:
    """Trees deeper than the padded layout allows take the node-by-node walker: same result."""
    x, _p, y = _known_probability(8_000, seed=9)
    params = {"max_depth": None, "max_leaf_nodes": 63, "min_samples_leaf": 5, "max_iter": 20}
    estimator, _ = fit_calibrated(
        x[:5_000], y[:5_000], x[5_000:7_000], y[5_000:7_000], params=params
    )
    scorer = TreeScorer.from_sklearn(estimator, 5)
    assert scorer.depth > MAX_DEPTH
    np.testing.assert_array_equal(scorer.proba(x[7_000:]), estimator.predict_proba(x[7_000:])[:, 1])


def test_drivers_and_importance_find_the_informative_feature(synthetic: dict[str, Any]) -> None:
    """x0, x1, x2 carry the signal, x3 and x4 are noise: permutation importance ranks the
    three first, the noise far below. For a row with a large x0 (others at 0) the occlusion
    effect of x0 is the largest and positive."""
    importance = synthetic["evaluation"].importance
    assert {r["feature"] for r in importance[:3]} == {"x0", "x1", "x2"}
    rise = {r["feature"]: r["log_loss_rise"] for r in importance}
    assert max(rise["x3"], rise["x4"]) < 0.1 * min(rise["x0"], rise["x1"], rise["x2"])
    model = _model(synthetic)
    row = np.array([[3.0, 0.0, 0.0, 0.0, 0.0]])
    (drivers,) = model.drivers(row, top=2)
    assert drivers[0]["feature"] == "x0" and drivers[0]["effect"] > 0.05


def _model(synthetic: dict[str, Any], kind: str = "accounts") -> LiquidationModel:
    return LiquidationModel(
        kind=kind,
        feature_names=tuple(f"x{j}" for j in range(5)),
        scorer=synthetic["scorer"],
        reference=synthetic["reference"],
        target={"definition": "synthetic"},
        horizon={"days": 1.0, "monitor_days": 1 / 24},
        data={"source": "synthetic", "rows": 60_000},
        metrics=synthetic["evaluation"].to_dict(),
        importance=synthetic["evaluation"].importance,
        estimator=synthetic["estimator"],
    )


@pytest.mark.parametrize("suffix", [".json", ".pkl"])
def test_model_file_round_trip(synthetic: dict[str, Any], tmp_path: Path, suffix: str) -> None:
    model = _model(synthetic)
    path = tmp_path / f"m{suffix}"
    digest = model.save(path)
    loaded = load_model(path, kind="accounts")
    assert loaded.content_sha256 == digest and len(digest) == 64
    x = synthetic["x"][:1_000]
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    assert loaded.metrics["scores"][0]["model"] == "learned"
    if suffix == ".pkl":
        assert loaded.estimator is not None
        np.testing.assert_array_equal(
            loaded.estimator.predict_proba(x)[:, 1], loaded.predict_proba(x)
        )


def test_features_outside_the_training_range_are_flagged(
    synthetic: dict[str, Any], tmp_path: Path
) -> None:
    from crossmargin.predict.model import training_range

    x = synthetic["x"]
    model = LiquidationModel(
        **{**_model(synthetic).__dict__, "feature_range": training_range(x[:36_000])}
    )
    rows = np.array([[0.0] * 5, [9.0, 0.0, 0.0, -9.0, 0.0], [np.nan] * 5])
    assert model.outside_range(rows) == [[], ["x0", "x3"], []]
    path = tmp_path / "r.json"
    model.save(path)
    assert load_model(path).outside_range(rows) == [[], ["x0", "x3"], []]


def test_model_file_refuses_tampering_versions_and_kinds(
    synthetic: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "m.json"
    _model(synthetic).save(path)
    envelope = json.loads(path.read_text())

    def write(data: dict[str, Any], name: str) -> Path:
        out = tmp_path / name
        out.write_text(json.dumps(data))
        return out

    tampered = dict(envelope, metrics={**envelope["metrics"], "calibration": "none"})
    with pytest.raises(InputError, match="content hash mismatch") as info:
        load_model(write(tampered, "t.json"))
    assert "\n" not in str(info.value)
    future = dict(envelope, version=MODEL_VERSION + 1)
    future["content_sha256"] = content_hash(future)  # a consistent file of another version
    with pytest.raises(InputError, match=r"model.version: unknown model version"):
        load_model(write(future, "v.json"))
    with pytest.raises(InputError, match="not a crossmargin-liquidation-model"):
        load_model(write({"format": "something else"}, "o.json"))
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable model file"):
        load_model(tmp_path / "junk.json")
    with pytest.raises(InputError, match="expected a market model"):
        load_model(path, kind="market")
    with pytest.raises(InputError, match="no such file"):
        load_model(tmp_path / "absent.json")
    with pytest.raises(InputError, match=r"\.json or \.pkl"):
        _model(synthetic).save(tmp_path / "m.txt")
    # a consistent hash over inconsistent trees: refused before the walker runs
    broken = json.loads(path.read_text())
    broken["trees"]["n_features"] = 2
    broken["content_sha256"] = content_hash(broken)
    with pytest.raises(InputError, match=r"model.trees"):
        load_model(write(broken, "b.json"))


def test_time_split_is_ordered_with_embargo_and_refuses_short_data() -> None:
    split = time_split(1_000, embargo=15, start=100)
    assert split.train == (100, 640 - 15)
    assert split.calibration == (640, 820 - 15)
    assert split.test == (820, 1_000)
    with pytest.raises(InputError, match="too short"):
        time_split(40, embargo=15)
    with pytest.raises(InputError, match="fractions"):
        time_split(1_000, fractions=(0.5, 0.5))


def test_metrics_agree_with_scikit_learn() -> None:
    from sklearn.metrics import brier_score_loss
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(0)
    p = rng.random(500) * 0.98 + 0.01
    y = (rng.random(500) < p).astype(int)
    assert brier(y, p) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-12)
    s = score("m", y, p, base_rate=float(y.mean()))
    assert 0.5 < s.roc_auc < 1.0 and s.brier_skill > 0
    one_class = score("m", np.zeros(10), np.full(10, 0.1), 0.1)
    assert math.isnan(one_class.roc_auc) and one_class.to_dict()["roc_auc"] is None
    # a forecast of exactly 0 for an event that happens is clipped, not infinite
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-6))


def test_reliability_bins_keep_ties_together() -> None:
    """A step forecast (two values) gives two bins whatever the decile edges; a constant one
    gives a single point; the counts add up."""
    p = np.r_[np.full(700, 0.01), np.full(300, 0.2)]
    y = np.r_[np.zeros(693), np.ones(7), np.zeros(240), np.ones(60)]
    rel = reliability("step", y, p)
    assert rel.mean_forecast == pytest.approx([0.01, 0.2])
    assert rel.observed == pytest.approx([0.01, 0.2]) and rel.count == [700, 300]
    flat = reliability("flat", y, np.full(1000, 0.067))
    assert flat.count == [1000] and flat.observed == pytest.approx([0.067])


def test_calibration_needs_both_outcomes() -> None:
    x = np.zeros((50, 2))
    with pytest.raises(InputError, match=r"train\.target"):
        fit_calibrated(x, np.zeros(50), x, np.ones(50))
    with pytest.raises(InputError, match="calibration"):
        fit_calibrated(
            x, np.r_[np.zeros(25), np.ones(25)], x, np.r_[np.zeros(25), np.ones(25)], "beta"
        )
