r"""Wrong-way risk: collateral that falls when the account's liabilities rise.

For each scenario ``s`` (historical or simulated log returns, revalued through the kernel):

* collateral change :math:`\Delta C_s = \sum_{b: q_b > 0} q_b (P_{s,a_b} - P_{0,a_b})` (the
  deposits, unweighted USD);
* exposure PnL :math:`\Delta X_s = \Delta E_s - \Delta C_s`: the positions' PnL plus the change
  of the borrows, i.e. minus the rise of the liabilities.

Wrong-way means the two fall together: the correlation :math:`\rho(\Delta C, \Delta X) > 0`,
and a joint lower tail, measured by :math:`p_J = P(\Delta C \le q_u(\Delta C),
\Delta X \le q_u(\Delta X))` at ``u = tail`` (``u^2`` under independence, ``u`` if comonotone;
:math:`p_J/u` estimates the lower tail-dependence coefficient, Joe 1997) and the mean equity
loss in that joint tail. The account is *flagged* when :math:`\rho \ge` ``corr_threshold``
or when the positions are long the collateral's own asset (the kernel's delta of the exposure
in that asset is > 0: e.g. ETH deposits behind a short ETH put, or a governance token
deposited behind a long position in the same ecosystem proxied to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crossmargin.display import rounded_repr
from crossmargin.errors import InputError
from crossmargin.locations.schema import base_asset
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import sensitivities

FloatArray = npt.NDArray[np.float64]

DEFAULT_TAIL = 0.05
DEFAULT_CORR_THRESHOLD = 0.3
#: a same-asset exposure below this share of the collateral in that asset is not flagged
MATERIAL_FRAC = 0.05


@rounded_repr
@dataclass(frozen=True)
class WrongWayRisk:
    """Wrong-way figures of one account (USD unless stated)."""

    account_id: str
    collateral_usd: float
    correlation: float
    joint_tail_prob: float
    tail: float
    joint_tail_loss_usd: float
    flagged: bool
    reasons: tuple[str, ...]
    #: per deposited asset: (USD value, exposure delta in that asset's log return, USD)
    by_asset: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def tail_dependence(self) -> float:
        """:math:`p_J / u`: ~``u`` under independence, 1 when comonotone."""
        return self.joint_tail_prob / self.tail

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "collateral_usd": self.collateral_usd,
            "correlation": self.correlation,
            "joint_tail_prob": self.joint_tail_prob,
            "tail": self.tail,
            "tail_dependence": self.tail_dependence,
            "joint_tail_loss_usd": self.joint_tail_loss_usd,
            "flagged": self.flagged,
            "reasons": list(self.reasons),
            "by_asset": {
                k: {"collateral_usd": v[0], "exposure_delta_usd": v[1]}
                for k, v in self.by_asset.items()
            },
        }


def wrong_way_risk(
    revaluer: ScenarioRevaluer,
    scenarios: FloatArray,
    *,
    account_id: str = "",
    tail: float = DEFAULT_TAIL,
    corr_threshold: float = DEFAULT_CORR_THRESHOLD,
) -> WrongWayRisk:
    """Wrong-way figures of the revaluer's account over ``scenarios[S, n_assets]`` log returns."""
    if not 0.0 < tail < 0.5:
        raise InputError("tail", tail, "must be in (0, 0.5)")
    r = np.asarray(scenarios, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 20:
        raise InputError("scenarios", r.shape, "need at least 20 scenarios")
    out = revaluer.revalue(r)
    c0 = float(revaluer.collateral_usd(np.zeros((1, revaluer.n_assets)))[0])
    d_coll = revaluer.collateral_usd(r) - c0
    d_exposure = (out.equity_usd - revaluer.base_equity_usd) - d_coll
    sd_c, sd_x = float(d_coll.std()), float(d_exposure.std())
    scale = max(sd_c, sd_x, 1.0)
    if sd_c > 1e-12 * scale and sd_x > 1e-12 * scale:
        rho = float(np.corrcoef(d_coll, d_exposure)[0, 1])
    else:
        rho = 0.0  # one side does not move: no co-movement to measure
    qc, qx = np.quantile(d_coll, tail), np.quantile(d_exposure, tail)
    joint = (d_coll <= qc) & (d_exposure <= qx)
    p_joint = float(joint.mean())
    loss_joint = (
        float(-(out.equity_usd[joint] - revaluer.base_equity_usd).mean()) if joint.any() else 0.0
    )
    reasons: list[str] = []
    if rho >= corr_threshold:
        reasons.append(
            f"collateral and positions move together (correlation {rho:.2f} >= {corr_threshold})"
        )
    sens = sensitivities(revaluer)
    deposits = revaluer.deposits_usd()
    # the lots of one asset (ETH, ETH@arbitrum: issue #17) are one asset here
    value_of: dict[str, float] = {}
    delta_of: dict[str, float] = {}
    moves: dict[str, bool] = {}
    for k, symbol in enumerate(revaluer.asset_symbols):
        base = base_asset(symbol)
        value_of[base] = value_of.get(base, 0.0) + deposits.get(symbol, 0.0)
        delta_of[base] = delta_of.get(base, 0.0) + float(sens.equity_delta[k])
        moves[base] = moves.get(base, False) or float(np.std(r[:, k])) > 0.0
    by_asset: dict[str, tuple[float, float]] = {}
    for symbol, value in value_of.items():
        if value <= 0.0:
            continue
        exposure_delta = delta_of[symbol] - value
        by_asset[symbol] = (value, exposure_delta)
        if exposure_delta > MATERIAL_FRAC * value and moves[symbol]:
            reasons.append(
                f"{symbol} collateral (USD {value:,.0f}) behind positions that lose "
                f"USD {exposure_delta / 100:,.0f} per 1 % fall of {symbol}"
            )
    return WrongWayRisk(
        account_id=account_id,
        collateral_usd=c0,
        correlation=rho if math.isfinite(rho) else 0.0,
        joint_tail_prob=p_joint,
        tail=tail,
        joint_tail_loss_usd=loss_joint,
        flagged=bool(reasons),
        reasons=tuple(reasons),
        by_asset=by_asset,
    )
