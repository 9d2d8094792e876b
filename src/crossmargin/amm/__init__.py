"""AMM pools as liquidity: constant product (x y = k with a fee) and Uniswap v3 concentrated
liquidity (exact integer reference math in :mod:`crossmargin.amm.v3math`, a float pool over a
tick-liquidity table in :mod:`crossmargin.amm.pools`), LP positions as collateral
(:mod:`crossmargin.amm.lp`) and an execution model for the liquidation engine
(:mod:`crossmargin.amm.execution`)."""
