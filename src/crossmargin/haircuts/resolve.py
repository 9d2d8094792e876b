"""Turn ``weights: dynamic`` assets of a book into concrete weights from their price history."""

from __future__ import annotations

from pathlib import Path

from crossmargin.book.schema import Asset, Book
from crossmargin.errors import InputError
from crossmargin.haircuts.dynamic import HaircutRecommendation, Weights, recommend_from_history
from crossmargin.market.loaders import load_history


def resolve_dynamic_weights(
    book: Book, base_dir: str | Path | None = None
) -> tuple[Book, dict[str, HaircutRecommendation]]:
    """The book with every dynamic asset's weights computed, and the recommendations behind them.

    ``history`` paths are relative to ``base_dir`` (the book file's folder). Weights already in
    the file are the previous ones: the new weights move at most ``dynamic.max_step_frac``.
    """
    updated: dict[str, Asset] = {}
    recommendations: dict[str, HaircutRecommendation] = {}
    for symbol, asset in book.assets.items():
        if asset.weights != "dynamic" or asset.history is None:
            continue
        path = Path(asset.history)
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        field = f"assets.{symbol}.history"
        try:
            history = load_history(path, asset=asset.history_asset or symbol)
        except InputError as exc:
            raise InputError(field, asset.history, exc.reason) from None
        key = asset.history_asset or symbol
        if key in history:
            frame = history[key]
        elif len(history) == 1:
            frame = next(iter(history.values()))
        else:
            raise InputError(
                f"assets.{symbol}.history_asset", key, f"not in the file (has {sorted(history)})"
            )
        previous = None
        if asset.has_weights:
            previous = Weights(
                **{name: float(getattr(asset, name)) for name in Asset.WEIGHT_FIELDS}
            )
        recommendation = recommend_from_history(
            symbol,
            frame,
            asset.dynamic,
            method=asset.volatility_method,
            position_usd=asset.liquidity_position_usd,
            previous=previous,
        )
        recommendations[symbol] = recommendation
        updated[symbol] = asset.model_copy(update=recommendation.weights.as_dict())
    if not updated:
        return book, recommendations
    return book.model_copy(update={"assets": {**book.assets, **updated}}), recommendations
