"""Fixtures of the prediction tests."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.predict.helpers import synthetic_minute_frame


@pytest.fixture
def minute_frame() -> pd.DataFrame:
    """4,000 synthetic minutes (a calm/stress Markov chain with liquidation bursts)."""
    return synthetic_minute_frame()
