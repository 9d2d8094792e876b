r"""The learned model: gradient-boosted trees, calibrated on a later period, saved with its
provenance, scored by a compiled tree walker.

**Training** (:func:`fit_calibrated`). Rows are in time order and split without shuffling:
the first part fits scikit-learn's ``HistGradientBoostingClassifier`` (:data:`HGB_PARAMS`: 40
trees of depth <= 4, learning rate 0.15 - small enough to score a million rows in well under a
second; no early stopping: its validation split would be drawn at random across time; 300
deeper trees scored about the same held out, see ``docs/prediction.md``), the next part
calibrates it (``CalibratedClassifierCV`` on the frozen trees, isotonic or Platt's sigmoid on
the trees' log-odds), the last part is held out for :mod:`crossmargin.predict.evaluate`.

**Scoring** (:class:`TreeScorer`). The fitted trees are flattened into arrays (feature,
threshold, children, leaf value, where a missing value goes), padded to complete binary trees
and walked level by level, branch-free, by a numba loop over blocks of rows (trees deeper than
:data:`MAX_DEPTH` are walked node by node). The raw score is :math:`f(x) = b + \sum_t v_t(x)`
in the same order as scikit-learn (identical float operations: tested bit for bit), then the
calibration map (isotonic: linear interpolation between its thresholds, clipped; sigmoid:
:math:`1/(1 + e^{a f + b})`). On one core it is ~3x faster than scikit-learn's own
``predict_proba`` (``benchmarks/bench_predict.py``).

**Drivers** (:meth:`LiquidationModel.drivers`): per row and feature, the *occlusion effect*
:math:`p(x) - p(x \text{ with } x_j \text{ set to the training median})`: how much the
prediction moves because the feature differs from a typical row (positive: it raises the
probability). **Importance** (:func:`permutation_importance`): the rise in held-out log loss
when one feature's column is permuted (Breiman 2001), mean over repeats.

**Model file** (:meth:`LiquidationModel.save`, :func:`load_model`): a JSON envelope with the
format name and :data:`MODEL_VERSION`, the features, target and horizon, the data it saw (file,
SHA-256, rows, period, splits), the features' training medians and ranges, its held-out
metrics, the trees and calibration (float arrays as base64 of little-endian float64: exact),
and ``content_sha256``, the SHA-256 of the
canonical JSON of everything else. ``.pkl`` pickles the same envelope together with the
scikit-learn estimator (a convenience copy; loading a pickle runs code: load only files you
trust - the ``.json`` form is plain data). Loading checks the format, the version and the hash
and refuses any mismatch with a one-line :class:`~crossmargin.errors.InputError`; the hash
guards against corruption and edits, it is not a signature.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin._numba import jit
from crossmargin.errors import InputError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

MODEL_FORMAT = "crossmargin-liquidation-model"
MODEL_VERSION = 1
#: gradient boosting settings (fixed: no random early-stopping split across time)
HGB_PARAMS: dict[str, Any] = {
    "max_iter": 40,
    "learning_rate": 0.15,
    "max_depth": 4,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 80,
    "l2_regularization": 1.0,
    "early_stopping": False,
}
#: fewest positives in the calibration part for isotonic calibration ("auto" method)
MIN_ISOTONIC_POSITIVES = 50


# --- the compiled scorer ------------------------------------------------------------------


@jit
def _walk_complete(
    x: FloatArray,
    code: IntArray,
    threshold: FloatArray,
    leaf_value: FloatArray,
    depth: int,
    baseline: float,
    out: FloatArray,
) -> None:
    """Trees padded to complete binary trees of ``depth`` levels: node ``k``'s children are
    ``2k+1`` (left) and ``2k+2``; ``code = 2 * feature + missing_goes_left``. A block of rows
    goes down each tree level by level without a branch (independent rows overlap in the
    pipeline). ``x <= t`` goes left; NaN goes left iff the node says so: ``not (v <= t)`` is
    true for NaN, ``v > t`` false."""
    n = x.shape[0]
    n_trees = code.shape[0]
    n_inner = code.shape[1]
    block = 128
    idx = np.zeros(block, dtype=np.int64)
    for start in range(0, n, block):
        m = min(start + block, n) - start
        for i in range(m):
            out[start + i] = baseline
        for t in range(n_trees):
            for i in range(m):
                idx[i] = 0
            for _ in range(depth):
                for i in range(m):
                    k = idx[i]
                    c = code[t, k]
                    v = x[start + i, c >> 1]
                    th = threshold[t, k]
                    go_right = (v > th) if (c & 1) else not (v <= th)
                    idx[i] = 2 * k + 1 + go_right
            for i in range(m):
                out[start + i] += leaf_value[t, idx[i] - n_inner]


@jit
def _walk_nodes(
    x: FloatArray,
    feature: IntArray,
    threshold: FloatArray,
    left: IntArray,
    right: IntArray,
    leaf: npt.NDArray[np.uint8],
    value: FloatArray,
    missing_left: npt.NDArray[np.uint8],
    roots: IntArray,
    baseline: float,
    out: FloatArray,
) -> None:
    """Node by node, for trees too deep to pad (scikit-learn's own traversal)."""
    for i in range(x.shape[0]):
        acc = baseline
        for t in range(roots.shape[0]):
            node = roots[t]
            while leaf[node] == 0:
                v = x[i, feature[node]]
                if math.isnan(v):
                    node = left[node] if missing_left[node] != 0 else right[node]
                elif v <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc += value[node]
        out[i] = acc


#: deepest tree padded to the complete layout (2**depth leaves per tree); deeper trees are
#: walked node by node
MAX_DEPTH = 10


@dataclass(frozen=True, eq=False)
class TreeScorer:
    """Flattened trees and the calibration map (module docstring)."""

    feature: IntArray
    threshold: FloatArray
    left: IntArray
    right: IntArray
    leaf: npt.NDArray[np.uint8]
    value: FloatArray
    missing_left: npt.NDArray[np.uint8]
    roots: IntArray
    baseline: float
    n_features: int
    calibration: str  # "isotonic", "sigmoid" or "none"
    cal_x: FloatArray  # isotonic thresholds (raw score), or [a, b] for sigmoid
    cal_y: FloatArray

    def raw(self, x: npt.ArrayLike) -> FloatArray:
        """Log-odds of the trees, per row (the same float operations as scikit-learn's
        ``decision_function``: baseline, then each tree's leaf value in order)."""
        rows = np.ascontiguousarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise InputError("features", rows.shape, f"expected [rows, {self.n_features}]")
        out = np.empty(rows.shape[0])
        if self.depth > MAX_DEPTH:
            _walk_nodes(
                rows,
                self.feature,
                self.threshold,
                self.left,
                self.right,
                self.leaf,
                self.value,
                self.missing_left,
                self.roots,
                self.baseline,
                out,
            )
            return out
        code, threshold, leaf_value, depth = self.layout
        _walk_complete(rows, code, threshold, leaf_value, depth, self.baseline, out)
        return out

    @functools.cached_property
    def layout(self) -> tuple[IntArray, FloatArray, FloatArray, int]:
        """``(code, threshold, leaf_value, depth)`` of the trees padded to complete binary trees
        (a leaf above the last level becomes a node that always goes left to a copy of it)."""
        depth = self.depth
        n_inner = 2**depth - 1
        n_trees = self.roots.size
        code = np.ones((n_trees, max(n_inner, 1)), dtype=np.int64)  # feature 0, NaN left
        threshold = np.full((n_trees, max(n_inner, 1)), np.inf)
        leaf_value = np.zeros((n_trees, 2**depth))
        for t, root in enumerate(self.roots.tolist()):
            stack = [(root, 0, 0)]
            while stack:
                node, pos, level = stack.pop()
                if level == depth:
                    leaf_value[t, pos - n_inner] = self.value[node]
                elif self.leaf[node]:
                    stack += [(node, 2 * pos + 1, level + 1), (node, 2 * pos + 2, level + 1)]
                else:
                    code[t, pos] = 2 * int(self.feature[node]) + int(self.missing_left[node])
                    threshold[t, pos] = self.threshold[node]
                    stack += [
                        (int(self.left[node]), 2 * pos + 1, level + 1),
                        (int(self.right[node]), 2 * pos + 2, level + 1),
                    ]
        return code, threshold, leaf_value, depth

    @functools.cached_property
    def depth(self) -> int:
        """Deepest leaf over the trees (root at 0)."""
        deepest = 0
        for root in self.roots.tolist():
            stack = [(root, 0)]
            while stack:
                node, level = stack.pop()
                if self.leaf[node]:
                    deepest = max(deepest, level)
                else:
                    stack += [(int(self.left[node]), level + 1), (int(self.right[node]), level + 1)]
        return deepest

    def proba(self, x: npt.ArrayLike) -> FloatArray:
        """Calibrated probability of the event, per row."""
        return self.calibrate(self.raw(x))

    def calibrate(self, raw: FloatArray) -> FloatArray:
        if self.calibration == "isotonic":
            p = np.interp(raw, self.cal_x, self.cal_y)
        elif self.calibration == "sigmoid":
            from scipy.special import expit

            p = expit(-(self.cal_x[0] * raw + self.cal_x[1]))
        else:
            from scipy.special import expit

            p = expit(raw)
        return np.asarray(np.clip(p, 0.0, 1.0), dtype=np.float64)

    @classmethod
    def from_sklearn(cls, estimator: Any, n_features: int) -> TreeScorer:
        """From a fitted ``HistGradientBoostingClassifier`` or a ``CalibratedClassifierCV``
        with one calibrated classifier around one (binary, numerical features)."""
        calibration, cal_x, cal_y = "none", np.zeros(0), np.zeros(0)
        hgb = estimator
        if hasattr(estimator, "calibrated_classifiers_"):
            (pair,) = estimator.calibrated_classifiers_
            (calibrator,) = pair.calibrators
            hgb = pair.estimator
            hgb = getattr(hgb, "estimator", hgb)  # FrozenEstimator
            if hasattr(calibrator, "X_thresholds_"):
                calibration = "isotonic"
                cal_x = np.asarray(calibrator.X_thresholds_, dtype=np.float64)
                cal_y = np.asarray(calibrator.y_thresholds_, dtype=np.float64)
            else:
                calibration = "sigmoid"
                cal_x = np.array([float(calibrator.a_), float(calibrator.b_)])
        predictors = hgb._predictors  # one list of trees per iteration (binary: one tree)
        feature, threshold, left, right, leaf, value, missing, roots = ([] for _ in range(8))
        offset = 0
        for (tree,) in predictors:
            nodes = tree.nodes
            if np.any(nodes["is_categorical"]):
                raise InputError("model", "categorical", "categorical splits are not supported")
            roots.append(offset)
            feature.append(nodes["feature_idx"].astype(np.int64))
            threshold.append(nodes["num_threshold"].astype(np.float64))
            left.append(nodes["left"].astype(np.int64) + offset)
            right.append(nodes["right"].astype(np.int64) + offset)
            leaf.append(nodes["is_leaf"].astype(np.uint8))
            value.append(nodes["value"].astype(np.float64))
            missing.append(nodes["missing_go_to_left"].astype(np.uint8))
            offset += nodes.shape[0]
        return cls(
            feature=np.concatenate(feature),
            threshold=np.concatenate(threshold),
            left=np.concatenate(left),
            right=np.concatenate(right),
            leaf=np.concatenate(leaf),
            value=np.concatenate(value),
            missing_left=np.concatenate(missing),
            roots=np.array(roots, dtype=np.int64),
            baseline=float(np.ravel(hgb._baseline_prediction)[0]),
            n_features=n_features,
            calibration=calibration,
            cal_x=cal_x,
            cal_y=cal_y,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": {
                "feature": _b64(self.feature, "<i8"),
                "threshold": _b64(self.threshold, "<f8"),
                "left": _b64(self.left, "<i8"),
                "right": _b64(self.right, "<i8"),
                "leaf": _b64(self.leaf, "u1"),
                "value": _b64(self.value, "<f8"),
                "missing_left": _b64(self.missing_left, "u1"),
            },
            "roots": _b64(self.roots, "<i8"),
            "baseline": self.baseline,
            "n_features": self.n_features,
            "calibration": {
                "method": self.calibration,
                "x": _b64(self.cal_x, "<f8"),
                "y": _b64(self.cal_y, "<f8"),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeScorer:
        try:
            nodes, cal = data["nodes"], data["calibration"]
            scorer = cls(
                feature=_unb64(nodes["feature"], "<i8").astype(np.int64),
                threshold=_unb64(nodes["threshold"], "<f8").astype(np.float64),
                left=_unb64(nodes["left"], "<i8").astype(np.int64),
                right=_unb64(nodes["right"], "<i8").astype(np.int64),
                leaf=_unb64(nodes["leaf"], "u1").astype(np.uint8),
                value=_unb64(nodes["value"], "<f8").astype(np.float64),
                missing_left=_unb64(nodes["missing_left"], "u1").astype(np.uint8),
                roots=_unb64(data["roots"], "<i8").astype(np.int64),
                baseline=float(data["baseline"]),
                n_features=int(data["n_features"]),
                calibration=str(cal["method"]),
                cal_x=_unb64(cal["x"], "<f8").astype(np.float64),
                cal_y=_unb64(cal["y"], "<f8").astype(np.float64),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError("model.trees", str(exc)[:60], "malformed tree arrays") from None
        scorer.check()
        return scorer

    def check(self) -> None:
        """Structural checks: a malformed file must not index out of bounds in the walker."""
        n = self.feature.size
        sizes = {a.size for a in (self.threshold, self.left, self.right, self.leaf, self.value)}
        inner = self.leaf == 0
        ok = (
            sizes == {n}
            and self.missing_left.size == n
            and np.all((self.roots >= 0) & (self.roots < n))
            and np.all((self.left[inner] > np.flatnonzero(inner)) & (self.left[inner] < n))
            and np.all((self.right[inner] > np.flatnonzero(inner)) & (self.right[inner] < n))
            and np.all((self.feature[inner] >= 0) & (self.feature[inner] < self.n_features))
            and self.calibration in ("isotonic", "sigmoid", "none")
        )
        if not ok:
            raise InputError("model.trees", n, "inconsistent tree arrays")


def _b64(array: npt.ArrayLike, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> npt.NDArray[Any]:
    return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype=dtype)


# --- training -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSplit:
    """Row ranges ``[start, stop)`` of the train, calibration and test parts (time order); the
    last ``embargo`` rows before each later part are dropped: their targets look into it."""

    train: tuple[int, int]
    calibration: tuple[int, int]
    test: tuple[int, int]
    embargo: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": list(self.train),
            "calibration": list(self.calibration),
            "test": list(self.test),
            "embargo": self.embargo,
        }


def time_split(
    n: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), embargo: int = 0, start: int = 0
) -> TimeSplit:
    """Consecutive parts of rows ``start .. n`` in the given proportions (never shuffled)."""
    if len(fractions) != 3 or any(not (f > 0) for f in fractions):
        raise InputError("fractions", list(fractions), "need three positive fractions")
    usable = n - start
    total = float(sum(fractions))
    a = start + int(usable * fractions[0] / total)
    b = start + int(usable * (fractions[0] + fractions[1]) / total)
    split = TimeSplit((start, a - embargo), (a, b - embargo), (b, n), embargo)
    for name, (lo, hi) in (
        ("train", split.train),
        ("calibration", split.calibration),
        ("test", split.test),
    ):
        if hi - lo < 10:
            raise InputError("rows", n, f"too short: the {name} part would have {hi - lo} rows")
    return split


def fit_calibrated(
    x_train: FloatArray,
    y_train: npt.NDArray[Any],
    x_cal: FloatArray,
    y_cal: npt.NDArray[Any],
    method: str = "auto",
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
) -> tuple[Any, str]:
    """Boosted trees on the train part, calibrated on the calibration part. ``method``
    "auto" is isotonic with at least :data:`MIN_ISOTONIC_POSITIVES` calibration positives, else
    sigmoid (isotonic overfits few events). Returns ``(estimator, method used)``."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    for name, y in (("train", y_train), ("calibration", y_cal)):
        positives = int(np.sum(y))
        if positives == 0 or positives == len(y):
            raise InputError(
                f"{name}.target", positives, f"the {name} part needs both outcomes to learn from"
            )
    if method == "auto":
        method = "isotonic" if int(np.sum(y_cal)) >= MIN_ISOTONIC_POSITIVES else "sigmoid"
    if method not in ("isotonic", "sigmoid"):
        raise InputError("calibration", method, "must be auto, isotonic or sigmoid")
    hgb = HistGradientBoostingClassifier(**{**HGB_PARAMS, **(params or {})}, random_state=seed)
    hgb.fit(x_train, y_train)
    try:
        from sklearn.frozen import FrozenEstimator

        calibrated = CalibratedClassifierCV(FrozenEstimator(hgb), method=method)
    except ImportError:  # scikit-learn < 1.6
        calibrated = CalibratedClassifierCV(hgb, method=method, cv="prefit")
    with warnings.catch_warnings():
        # the frozen trees are not refitted per fold: a class with fewer members than folds
        # does not matter (scikit-learn warns about it all the same)
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        calibrated.fit(x_cal, y_cal)
    return calibrated, method


def permutation_importance(
    scorer: TreeScorer,
    x: FloatArray,
    y: npt.NDArray[Any],
    names: Sequence[str],
    repeats: int = 3,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rise of held-out log loss when each feature is permuted (module docstring), sorted."""
    from crossmargin.predict.evaluate import log_loss

    rng = np.random.default_rng(seed)
    base = log_loss(y, scorer.proba(x))
    rows = []
    work = np.array(x, dtype=np.float64, copy=True)
    for j, name in enumerate(names):
        column = work[:, j].copy()
        rises = []
        for _ in range(repeats):
            work[:, j] = rng.permutation(column)
            rises.append(log_loss(y, scorer.proba(work)) - base)
        work[:, j] = column
        rows.append(
            {"feature": name, "log_loss_rise": float(np.mean(rises)), "std": float(np.std(rises))}
        )
    return sorted(rows, key=lambda r: -r["log_loss_rise"])


# --- the model and its file ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LiquidationModel:
    """A calibrated model with everything needed to score and to audit it."""

    kind: str  # "market" (liquidation wave) or "accounts" (account liquidated)
    feature_names: tuple[str, ...]
    scorer: TreeScorer
    reference: FloatArray  # per feature: training median (the drivers' reference)
    target: dict[str, Any]
    horizon: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    importance: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    estimator: Any = None  # the scikit-learn object, when trained here or read from .pkl
    content_sha256: str = ""  # of the file it was read from (empty before it is saved)
    #: per feature: the 0.5 % and 99.5 % quantiles of the training rows ([n_features, 2])
    feature_range: FloatArray | None = None

    def outside_range(self, x: npt.ArrayLike) -> list[list[str]]:
        """Per row, the features outside the training range: there the trees extrapolate flat
        (a tree's prediction is constant beyond its last split), read the probability with care."""
        rows = np.asarray(x, dtype=np.float64)
        if self.feature_range is None:
            return [[] for _ in range(rows.shape[0])]
        lo, hi = self.feature_range[:, 0], self.feature_range[:, 1]
        with np.errstate(invalid="ignore"):
            out = (rows < lo) | (rows > hi)
        return [[self.feature_names[j] for j in np.flatnonzero(row)] for row in out]

    def predict_proba(self, x: npt.ArrayLike) -> FloatArray:
        return self.scorer.proba(x)

    def drivers(self, x: npt.ArrayLike, top: int = 3) -> list[list[dict[str, Any]]]:
        """Per row, the ``top`` features by |occlusion effect| (module docstring)."""
        rows = np.ascontiguousarray(x, dtype=np.float64)
        p = self.predict_proba(rows)
        effects = np.empty(rows.shape)
        for j in range(rows.shape[1]):
            work = rows.copy()
            work[:, j] = self.reference[j]
            effects[:, j] = p - self.predict_proba(work)
        out = []
        for i in range(rows.shape[0]):
            order = np.argsort(-np.abs(effects[i]), kind="stable")[:top]
            out.append(
                [
                    {
                        "feature": self.feature_names[j],
                        "value": _json_float(rows[i, j]),  # None: missing
                        "effect": float(effects[i, j]),
                    }
                    for j in order
                ]
            )
        return out

    def envelope(self) -> dict[str, Any]:
        """Everything but the content hash, JSON-ready."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "kind": self.kind,
            "created": self.created,
            "versions": dict(self.versions),
            "features": list(self.feature_names),
            "reference": [_json_float(v) for v in self.reference],
            "range": None
            if self.feature_range is None
            else [[_json_float(v) for v in pair] for pair in self.feature_range],
            "target": self.target,
            "horizon": self.horizon,
            "data": self.data,
            "metrics": self.metrics,
            "importance": self.importance,
            "params": self.params,
            "trees": self.scorer.to_dict(),
        }

    def save(self, path: str | Path) -> str:
        """Write ``.json`` (plain data) or ``.pkl`` (with the estimator); returns the hash."""
        file = Path(path)
        envelope = self.envelope()
        digest = content_hash(envelope)
        envelope["content_sha256"] = digest
        if file.suffix == ".json":
            file.write_text(json.dumps(envelope, indent=1, allow_nan=False) + "\n", "utf-8")
        elif file.suffix == ".pkl":
            import pickle

            file.write_bytes(
                pickle.dumps({"envelope": envelope, "estimator": self.estimator}, protocol=5)
            )
        else:
            raise InputError("--out", str(file), "the model file must end in .json or .pkl")
        return digest


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(float(x)) else None


def content_hash(envelope: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of the envelope without its
    ``content_sha256``."""
    body = {k: v for k, v in envelope.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_model(path: str | Path, kind: str | None = None) -> LiquidationModel:
    """Read a model file; refuse another format, an unknown version, a hash mismatch or (with
    ``kind``) a model of the other kind, with one line naming the field and value."""
    file = Path(path)
    if not file.is_file():
        raise InputError("--model", str(file), "no such file")
    estimator = None
    try:
        if file.suffix == ".pkl":
            import pickle

            # a pickle runs code when loaded: only files you trust (module docstring)
            blob = pickle.loads(file.read_bytes())
            envelope, estimator = blob["envelope"], blob.get("estimator")
        else:
            envelope = json.loads(file.read_text("utf-8"))
    except Exception as exc:  # any unreadable content is the same user error
        raise InputError(
            "--model", str(file), f"not a readable model file ({type(exc).__name__})"
        ) from None
    if not isinstance(envelope, dict) or envelope.get("format") != MODEL_FORMAT:
        raise InputError("--model", str(file), f"not a {MODEL_FORMAT} file")
    version = envelope.get("version")
    if version != MODEL_VERSION:
        raise InputError(
            "model.version",
            version,
            f"unknown model version (this crossmargin reads {MODEL_VERSION})",
        )
    stored = envelope.get("content_sha256")
    if not isinstance(stored, str) or stored != content_hash(envelope):
        raise InputError(
            "model.content_sha256",
            str(stored)[:16],
            "content hash mismatch: the file was modified or is corrupted",
        )
    if kind is not None and envelope.get("kind") != kind:
        raise InputError("model.kind", envelope.get("kind"), f"expected a {kind} model")
    try:
        names = tuple(str(n) for n in envelope["features"])
        reference = np.array(
            [math.nan if v is None else float(v) for v in envelope["reference"]], dtype=np.float64
        )
        scorer = TreeScorer.from_dict(envelope["trees"])
        if scorer.n_features != len(names) or reference.size != len(names):
            raise InputError("model.features", len(names), "does not match the trees")
        bounds = envelope.get("range")
        feature_range = (
            None
            if bounds is None
            else np.array(
                [[math.nan if v is None else float(v) for v in pair] for pair in bounds],
                dtype=np.float64,
            ).reshape(len(names), 2)
        )
        return LiquidationModel(
            kind=str(envelope["kind"]),
            feature_names=names,
            scorer=scorer,
            reference=reference,
            target=dict(envelope["target"]),
            horizon=dict(envelope["horizon"]),
            data=dict(envelope["data"]),
            metrics=dict(envelope["metrics"]),
            importance=list(envelope.get("importance", [])),
            params=dict(envelope.get("params", {})),
            created=str(envelope.get("created", "")),
            versions=dict(envelope.get("versions", {})),
            estimator=estimator,
            content_sha256=stored,
            feature_range=feature_range,
        )
    except KeyError as exc:
        raise InputError(f"model.{exc.args[0]}", None, "missing from the model file") from None
    except (TypeError, ValueError) as exc:
        raise InputError("model", str(file), f"malformed model file ({exc})") from None


def training_range(x: FloatArray) -> FloatArray:
    """``[n_features, 2]``: 0.5 % and 99.5 % quantiles of each feature over finite values."""
    out = np.full((x.shape[1], 2), np.nan)
    for j in range(x.shape[1]):
        finite = x[:, j][np.isfinite(x[:, j])]
        if finite.size:
            out[j] = np.quantile(finite, [0.005, 0.995])
    return out


def versions() -> dict[str, str]:
    import sklearn

    import crossmargin

    return {
        "crossmargin": getattr(crossmargin, "__version__", "unknown"),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
    }


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


__all__ = [
    "HGB_PARAMS",
    "MODEL_FORMAT",
    "MODEL_VERSION",
    "LiquidationModel",
    "TimeSplit",
    "TreeScorer",
    "content_hash",
    "fit_calibrated",
    "load_model",
    "permutation_importance",
    "time_split",
]
