"""Returning: a for loop over a generator that keeps its return value."""

from __future__ import annotations

import pytest

from automix_local.streams import Returning


def counted(n: int):
    try:
        yield from range(n)
        return f"done {n}"
    finally:
        closed.append(n)


closed: list[int] = []


def test_the_items_then_the_value():
    it = Returning(counted(3))
    with pytest.raises(RuntimeError):
        _ = it.value
    assert list(it) == [0, 1, 2] and it.value == "done 3"


def test_closing_early_runs_the_generators_finally():
    closed.clear()
    it = Returning(counted(5))
    for i in it:
        if i == 1:
            break
    it.close()
    assert closed == [5]
    with pytest.raises(RuntimeError):
        _ = it.value
