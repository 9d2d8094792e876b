"""`one_line_errors`: RuntimeWarnings are recorded, other warnings shown once, never looped."""

from __future__ import annotations

import warnings

import pytest
import typer
from typer.testing import CliRunner

from crossmargin.commands.common import one_line_errors, suppressed_warnings


def test_a_user_warning_is_shown_once_and_the_command_returns() -> None:
    """Re-showing a warning inside the recorder appended to the list being iterated: a command
    that emitted a UserWarning never returned (and grew memory without bound)."""
    app = typer.Typer()

    @app.command()
    @one_line_errors
    def noisy() -> None:
        warnings.warn("heads up", UserWarning, stacklevel=1)
        warnings.warn("overflow", RuntimeWarning, stacklevel=1)
        print("done")

    with pytest.warns(UserWarning, match="heads up") as shown:
        result = CliRunner().invoke(app, [])
    assert result.exit_code == 0 and "done" in result.output
    assert len([w for w in shown if w.category is UserWarning]) == 1
    assert [str(w.message) for w in suppressed_warnings] == ["overflow"]
