"""The command line starts without the heavy libraries (issue #14 item 4).

Deterministic, not timed: a fresh interpreter imports ``crossmargin.cli`` (and builds the
``--help`` command tree) and the test reads ``sys.modules``. The timings are in
``benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import crossmargin

HEAVY = ("matplotlib", "scipy.stats", "pandas", "dask", "sklearn", "numba", "fastapi")

PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded(setup: str) -> list[str]:
    code = PROBE.format(setup=setup, heavy=HEAVY)
    src = str(Path(crossmargin.__file__).resolve().parent.parent)  # the tree under test
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_imports_no_heavy_module() -> None:
    assert _loaded("import crossmargin.cli") == []


def test_help_of_every_command_imports_no_heavy_module() -> None:
    setup = """
from typer.main import get_command
from typer.testing import CliRunner
from crossmargin.cli import app
names = [c.name or c.callback.__name__ for c in app.registered_commands]
names += [g.name for g in app.registered_groups]
assert len(names) > 15, names
for name in names:
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, (name, result.output)
"""
    assert _loaded(setup) == []


def test_import_crossmargin_is_lazy_but_complete() -> None:
    assert _loaded("import crossmargin") == []
    for name in crossmargin.__all__:
        assert getattr(crossmargin, name) is not None, name
    with pytest.raises(AttributeError):
        _ = crossmargin.no_such_name  # type: ignore[attr-defined]


def test_default_scales_text_matches_the_library() -> None:
    from crossmargin.commands.simulate import DEFAULT_SCALES_TEXT
    from crossmargin.simulation.calibrate import DEFAULT_SCALES

    assert [float(x) for x in DEFAULT_SCALES_TEXT.split(",")] == list(DEFAULT_SCALES)


def test_margin_stays_the_function_after_the_subpackage_loads() -> None:
    import crossmargin.margin.engine  # binds nothing over the function
    from crossmargin.book import load_demo_book

    assert callable(crossmargin.margin)
    assert crossmargin.margin(load_demo_book())[0].account_id == "basis-trader"
