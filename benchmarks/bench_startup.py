"""Benchmark: start-up of the command line (issue #14 item 4).

Timed, each in a fresh interpreter (wall clock of the whole process, min and median of
``--repeats`` runs):

* ``crossmargin --help`` (target <= 0.4 s);
* ``crossmargin margin BOOK`` on the demo book, after one untimed run that warms numba's
  on-disk cache (target <= 1.5 s);
* ``import crossmargin.cli`` as ``python -X importtime`` reports it (cumulative microseconds).

The peer, measured in the same run: the floor that no lazy import removes - an interpreter that
imports typer and rich and prints the help of a one-command typer application. With
``--baseline-rev REV`` (default: the commit before the lazy imports) the same figures are
measured on that revision's ``src/`` (extracted with ``git archive`` into a temporary directory),
so before and after come from one run on one machine.

Agreement: ``margin BOOK --json`` prints the figures of the library's ``crossmargin.margin``
in the same tree (to 1e-12 relative: the CLI rounds USD figures to 13 significant digits), and
importing ``crossmargin.cli`` here loads none of matplotlib, scipy.stats, pandas, dask, sklearn;
otherwise the script exits 1.

    python benchmarks/bench_startup.py [--repeats 5] [--baseline-rev 0a958c8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("matplotlib", "scipy.stats", "pandas", "dask", "sklearn")
CLI = "import sys; from crossmargin.cli import main; sys.argv[0] = 'crossmargin'; main()"
LIBRARY = (
    "import json, sys\n"
    "from crossmargin import margin\n"
    "from crossmargin.book.io import load_book\n"
    "reports = margin(load_book(sys.argv[1]))\n"
    "print(json.dumps({'accounts': [r.to_dict() for r in reports]}))\n"
)
FLOOR = (
    "import typer\n"
    "app = typer.Typer(add_completion=False)\n"
    "@app.command()\n"
    "def one(x: int = 0) -> None:\n"
    "    '''One command.'''\n"
    "@app.command()\n"
    "def two(y: int = 0) -> None:\n"
    "    '''Another.'''\n"
    "app()\n"
)


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "100"}


def _run(args: list[str], src: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *args], env=_env(src), capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"failed: {args} with {src}: {done.stderr.strip()[-400:]}")
    return elapsed, done.stdout


def _times(args: list[str], src: Path, repeats: int) -> list[float]:
    return [_run(args, src)[0] for _ in range(repeats)]


def _import_us(src: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import crossmargin.cli"],
        env=_env(src),
        capture_output=True,
        text=True,
        check=True,
    )
    for line in done.stderr.splitlines():
        if line.rstrip().endswith("| crossmargin.cli"):
            return int(line.split("|")[1])
    raise SystemExit("no importtime line for crossmargin.cli")


def _heavy_loaded(src: Path) -> list[str]:
    code = f"import sys, crossmargin.cli; print([m for m in {HEAVY!r} if m in sys.modules])"
    return list(json.loads(_run(["-c", code], src)[1].replace("'", '"')))


def _baseline_src(rev: str, into: Path) -> Path | None:
    archive = into / "base.tar"
    try:
        with archive.open("wb") as out:
            subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], stdout=out, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _same(a: object, b: object, rel: float = 1e-12) -> bool:
    """Equal JSON, numbers to ``rel`` (the CLI rounds USD figures to 13 significant digits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)
    return a == b


def _fmt(times: list[float]) -> str:
    return f"min {min(times):.3f} s  median {statistics.median(times):.3f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--baseline-rev", default="0a958c8")
    args = parser.parse_args()
    src = ROOT / "src"
    work = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    book = work / "demo.yaml"
    book.write_text(_run(["-c", CLI, "demo", "--show-book"], src)[1])
    trees = {"after": src}
    base = _baseline_src(args.baseline_rev, work) if args.baseline_rev else None
    if base is not None:
        trees = {"before": base, **trees}
    else:
        print(f"baseline {args.baseline_rev!r} not available: after only")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.repeats} runs each")
    floor = _times(["-c", FLOOR, "--help"], src, args.repeats)
    print(f"peer (typer+rich floor, 2-command --help): {_fmt(floor)}")
    results: dict[str, dict[str, list[float]]] = {}
    outputs: dict[str, str] = {}
    for name, tree in trees.items():
        _run(["-c", CLI, "margin", str(book)], tree)  # warms numba's cache for this tree
        results[name] = {
            "help": _times(["-c", CLI, "--help"], tree, args.repeats),
            "margin": _times(["-c", CLI, "margin", str(book)], tree, args.repeats),
        }
        outputs[name] = _run(["-c", CLI, "margin", str(book), "--json"], tree)[1]
        import_ms = _import_us(tree) / 1000
        print(
            f"{name:>6}: --help {_fmt(results[name]['help'])} | "
            f"margin {_fmt(results[name]['margin'])} | import crossmargin.cli {import_ms:.0f} ms"
        )
    after = results["after"]
    floor_min = min(floor)
    print(
        f"ratio --help / peer floor: {min(after['help']) / floor_min:.2f}x; "
        f"targets: --help <= 0.4 s {'met' if min(after['help']) <= 0.4 else 'MISSED'}, "
        f"margin <= 1.5 s {'met' if min(after['margin']) <= 1.5 else 'MISSED'}"
    )
    if "before" in results:
        before = results["before"]
        print(
            f"speed-up (min): --help {min(before['help']) / min(after['help']):.1f}x, "
            f"margin {min(before['margin']) / min(after['margin']):.1f}x"
        )
    heavy = _heavy_loaded(src)
    # the lazy CLI must print what the library computes, in the same tree
    library = json.loads(_run(["-c", LIBRARY, str(book)], src)[1])
    agree = _same(library, json.loads(outputs["after"]))
    print(
        f"agreement: margin --json == the library's crossmargin.margin (to 1e-12): {agree}; "
        f"heavy modules loaded: {heavy}"
    )
    if "before" in outputs:  # information only: the model itself may change between revisions
        same = _same(json.loads(outputs["before"]), json.loads(outputs["after"]))
        note = "" if same else " (figures changed by model changes since the baseline)"
        print(f"baseline {args.baseline_rev} prints the same figures: {same}{note}")
    return 0 if agree and not heavy else 1


if __name__ == "__main__":
    raise SystemExit(main())
