"""Generators that stream and then return a value: the backends' text deltas (returning a Generation) and
the cascade's events (returning a Trace). ``Returning`` lets a ``for`` loop consume one and keep the value,
instead of a hand-written ``next`` / ``StopIteration`` loop at every call site."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Generic, TypeVar, cast

Y = TypeVar("Y")
R = TypeVar("R")


class Returning(Generic[Y, R]):
    """``for item in (it := Returning(gen)): ...`` then ``it.value`` is what ``gen`` returned. ``close()``
    closes the generator (e.g. a cancelled question: its ``finally`` blocks run)."""

    def __init__(self, gen: Generator[Y, Any, R]) -> None:
        self._gen = gen
        self._done = False
        self._value: R | None = None

    def __iter__(self) -> Iterator[Y]:
        self._value = yield from self._gen
        self._done = True

    @property
    def value(self) -> R:
        if not self._done:
            raise RuntimeError("the generator has not finished: its return value is not there yet")
        return cast(R, self._value)

    def close(self) -> None:
        self._gen.close()
