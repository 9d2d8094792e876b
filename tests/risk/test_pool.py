"""The whole pool: every account under the same scenarios, bad debt."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.book import load_demo_book
from crossmargin.errors import InputError
from crossmargin.risk.pool import pool_risk
from crossmargin.risk.revalue import ScenarioRevaluer
from tests.risk.risk_data import option_book, synthetic_returns


def test_pool_revaluation_is_the_sum_of_its_accounts() -> None:
    book = load_demo_book()
    pool = ScenarioRevaluer.from_accounts(book, chunk=5)
    rng = np.random.default_rng(4)
    r = rng.normal(0.0, 0.2, (13, pool.n_assets))
    out = pool.revalue(r, per_account=True)
    assert out.account_equity_usd is not None and out.account_health_usd is not None
    assert out.account_equity_usd.shape == (13, len(book.accounts))
    for i, account in enumerate(book.accounts):
        one = ScenarioRevaluer.from_book(book, account.id)
        cols = [pool.asset_symbols.index(s) for s in one.asset_symbols]
        alone = one.revalue(r[:, cols])
        assert np.allclose(out.account_equity_usd[:, i], alone.equity_usd, rtol=1e-12)
        assert np.allclose(out.account_health_usd[:, i], alone.health_usd, rtol=1e-12)
        assert out.account_liquidatable is not None
        assert np.array_equal(out.account_liquidatable[:, i], alone.liquidatable)
    assert np.allclose(out.equity_usd, out.account_equity_usd.sum(axis=1), rtol=1e-12)


def test_pool_bad_debt_and_cash() -> None:
    data = synthetic_returns(days=400, vol=0.06)
    levered = {"id": "lev", "balances": {"ETH": 100.0, "USDC": -260_000.0}}
    safe = {"id": "safe", "balances": {"BTC": 1.0, "USDC": 10_000.0}}
    risk = pool_risk(option_book([levered, safe]), data, n_paths=4000)
    assert risk.bad_debt_usd == 0.0 and risk.accounts == ("lev", "safe")
    ten_day = [f for f in risk.figures if f.horizon_days == 10]
    assert any(f.bad_debt_es_usd > 0.0 for f in ten_day)
    for f in risk.figures:
        assert f.bad_debt_es_usd >= f.bad_debt_var_usd >= 0.0
        assert f.equity_es_usd >= f.equity_var_usd
    # cash in the levered account can only lower the bad debt
    cushioned = {"id": "lev", "balances": {"ETH": 100.0, "USDC": -160_000.0}}
    better = pool_risk(option_book([cushioned, safe]), data, n_paths=4000)
    for a, b in zip(risk.figures, better.figures, strict=True):
        assert b.bad_debt_es_usd <= a.bad_debt_es_usd + 1e-9
        assert b.equity_var_usd == pytest.approx(a.equity_var_usd, rel=1e-9)
    with pytest.raises(InputError, match="method"):
        pool_risk(option_book([safe]), data, methods=["delta-normal"])
