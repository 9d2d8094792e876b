"""Risk-analytics commands (issue #6): ``crossmargin risk`` and ``crossmargin hedge``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
