"""Thread-count choice (crossmargin._threads): deterministic, from the load average."""

from __future__ import annotations

import pytest

from crossmargin import _threads


@pytest.mark.parametrize(
    ("load", "cores", "expected"),
    [(0.0, 2, 2), (1.4, 2, 2), (1.6, 2, 1), (4.0, 2, 1), (0.3, 8, 8), (5.2, 8, 4), (0.0, 1, 1)],
)
def test_threads_are_the_idle_cores(
    monkeypatch: pytest.MonkeyPatch, load: float, cores: int, expected: int
) -> None:
    monkeypatch.setattr(_threads, "available_cores", lambda: cores)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (load, load, load))
    assert _threads.idle_threads() == expected


def test_small_work_and_caps_give_fewer_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "available_cores", lambda: 4)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert _threads.idle_threads(work=10.0, min_work=100.0) == 1
    assert _threads.idle_threads(work=1e3, min_work=100.0) == 4
    assert _threads.idle_threads(cap=2) == 2


def test_no_load_average_trusts_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> tuple[float, float, float]:
        raise OSError("no load average")

    monkeypatch.setattr(_threads, "available_cores", lambda: 2)
    monkeypatch.setattr(_threads.os, "getloadavg", missing)
    assert _threads.idle_threads() == 2
