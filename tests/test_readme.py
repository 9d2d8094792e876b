"""Every command of the README runs as written (issue #18 item 1).

The README's ``bash`` blocks are parsed; each line that calls ``crossmargin`` runs through bash,
as written, in a temporary directory prepared by the README's own first lines (``mkdir`` /
``cd`` and ``crossmargin demo --write-examples .``), with ``crossmargin`` on the PATH resolving
to this tree's command line. Lines longer than a few seconds are marked ``slow``; ``download``
needs the network and is skipped; ``serve --demo --duration 90`` also runs with a two-second
duration in the default run. Set-up lines (``pip``, ``python -m pytest``) and the ``curl``
lines (they need a running server, covered by tests/service) are not commands of this CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import crossmargin

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SRC = Path(crossmargin.__file__).resolve().parent.parent
#: subcommands (or first options) of lines that take more than a few seconds
SLOW = ("risk ", "simulate ", "calibrate ", "serve ")
TIMEOUT_S = 900


def readme_lines() -> list[str]:
    """The shell lines of the README's ``bash`` blocks, trailing comments removed."""
    text = README.read_text(encoding="utf-8")
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for raw in joined.splitlines():
            line = re.sub(r"\s+#\s.*$", "", raw).strip()
            if line:
                lines.append(line)
    return lines


def _is_setup(line: str) -> bool:
    return line.startswith("mkdir ") or "--write-examples" in line


def _commands() -> list[pytest.param]:  # type: ignore[valid-type]
    params = []
    for line in readme_lines():
        if _is_setup(line) or not line.startswith("crossmargin"):
            continue
        marks: list[pytest.MarkDecorator] = []
        if " download " in f" {line} ":
            marks.append(pytest.mark.skip(reason="download needs the network (ccxt)"))
        elif any(f"crossmargin {word}" in line for word in SLOW):
            marks.append(pytest.mark.slow)
        params.append(pytest.param(line, marks=marks, id=line[:60]))
    return params


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory prepared by the README's set-up lines, with ``crossmargin`` on the PATH."""
    base = tmp_path_factory.mktemp("readme")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "crossmargin"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m crossmargin "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    setup = [line for line in readme_lines() if _is_setup(line)]
    assert any("--write-examples" in line for line in setup), "README lost its set-up line"
    script = " && ".join([*setup, "pwd"])
    done = _run(script, base, bin_dir)
    assert done.returncode == 0, done.stderr
    here = Path(done.stdout.strip().splitlines()[-1])
    for name in ("book.yaml", "prices.csv", "case.json", "cross-venue.yaml"):
        assert (here / name).is_file(), name
    (here / ".bin").symlink_to(bin_dir)
    return here


def _run(line: str, cwd: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(SRC),
        "COLUMNS": "120",
    }
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_the_readme_has_the_commands_the_issue_lists() -> None:
    lines = readme_lines()
    assert sum(line.startswith("crossmargin") for line in lines) >= 20
    assert not any("alice" in line for line in lines if line.startswith("crossmargin"))


@pytest.mark.parametrize("line", _commands())
def test_readme_command_runs_as_written(line: str, workdir: Path) -> None:
    if line.startswith("crossmargin serve") and "--port" not in line:
        line += " --port 0"  # as written, on any free port (8000 may be taken on this machine)
    done = _run(line, workdir, workdir / ".bin")
    assert done.returncode == 0, f"{line}\n{done.stderr[-2000:]}"
    assert "Traceback" not in done.stderr


def test_serve_demo_runs_briefly(workdir: Path) -> None:
    (line,) = [x for x in readme_lines() if x.startswith("crossmargin serve --demo")]
    # any free port: a server already listening on the default 8000 must not fail the test
    short = re.sub(r"--duration \d+", "--duration 2", line) + " --port 0"
    done = _run(short, workdir, workdir / ".bin")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "stopped:" in done.stdout


def test_readme_python_blocks_run(workdir: Path) -> None:
    """The README's Python example runs as written next to the example files."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        done = subprocess.run(
            [sys.executable, "-c", block],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]


def test_the_readme_portfolio_file_is_a_valid_book() -> None:
    """The portfolio-file example of the README loads and margins (orders, locations, depth)."""
    import yaml

    from crossmargin.book import book_from_data

    text = README.read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    book = book_from_data(yaml.safe_load(block))
    assert book.accounts[0].orders and book.locations and book.depth
    (report,) = crossmargin.margin(book)
    assert report.equity_usd > 0.0
