"""Simulation commands (issue #7): ``crossmargin simulate`` and ``crossmargin calibrate``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
