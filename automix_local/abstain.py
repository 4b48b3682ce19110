"""Three outcomes, not two: keep the answer, escalate, or say it is not sure — the trust router.

The router reads a calibrated probability that an answer is right: ``signal`` on a non-last tier's answer (its
own features, as every router reads), ``last_signal`` on the last tier's (its own features and how far it agrees
with the previous tier's answer, ``agreement_previous``). Three thresholds decide:

* a non-last tier: keep when P(right) ≥ ``keep``; say "not sure" at once when P(right) < ``give_up`` (no tier is
  likely to be right: escalating would spend the larger model's time on a likely wrong answer); else escalate;
* the last tier: keep when P(right) ≥ ``final``, else say "not sure".

The thresholds are chosen on a table of labelled questions the router file carries (per question and tier: the
cross-fitted P(right), the answer's trust value, its tokens and seconds), for the user's target and this machine's
costs, and chosen again when either changes (``set_target``, ``set_speeds``): the operating point follows the
machine it runs on, not the one it was fitted on. The objective is the mean trust score (+1 right, 0 abstained,
−1 wrong: ``scoring.trust_value``) within the target's time and holding back at most ``not_sure`` of the answers
some tier got right ("lost"): the trust score alone would abstain on most questions with small models, since it
scores a withheld right answer like a withheld wrong one.

Targets (``[cascade] target``): ``"fast"`` escalates nothing; ``"balanced"`` takes at most ``BALANCED_TIME`` of the
time of always asking the last tier; ``"quality"`` is as good as always asking the last tier (by the trust score)
at the least time, else the best it can be; a number is the largest share of questions that may escalate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .routers import Decision, Observation, Router, RouterError
from .signals import Signal, SignalError

TARGETS = ("quality", "balanced", "fast")
BALANCED_TIME = 0.7  # "balanced": at most this share of the time of always asking the last tier (issue 22's goal)
NOT_SURE = 0.3  # default: hold back at most this share of the answers some tier got right
QUANTILES = 21  # thresholds tried: this many quantiles of the table's P(right), per threshold

Target = str | float


def check_target(value: Any) -> Target:
    """A target as the config and the app give it: one of TARGETS, or a share 0–1 of questions that may escalate."""
    if isinstance(value, str):
        v = value.strip().lower()
        if v in TARGETS:
            return v
        try:
            value = float(v)
        except ValueError:
            raise RouterError(f"target {value!r}: expected one of {', '.join(TARGETS)} or a share 0–1") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
        raise RouterError(f"target {value!r}: expected one of {', '.join(TARGETS)} or a share 0–1")
    return float(value)


@dataclass(frozen=True)
class Table:
    """Labelled questions: rows × tiers of cross-fitted P(right), trust values, seconds and tokens (evaluated,
    generated); ``abstain``: per row, what saying "not sure" scores (+1 where the question has no answer)."""

    tiers: tuple[str, ...]
    q: np.ndarray  # rows × tiers
    value: np.ndarray  # rows × tiers
    abstain: np.ndarray  # rows
    seconds: np.ndarray  # rows × tiers
    tokens: np.ndarray  # rows × tiers × 2

    def to_json(self) -> dict[str, Any]:
        return {
            "tiers": list(self.tiers),
            "q": np.round(self.q, 5).tolist(),
            "value": self.value.astype(int).tolist(),
            "abstain": self.abstain.astype(int).tolist(),
            "seconds": np.round(self.seconds, 4).tolist(),
            "tokens": self.tokens.astype(int).tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Table:
        try:
            t = cls(
                tuple(str(x) for x in data["tiers"]),
                np.asarray(data["q"], dtype=float),
                np.asarray(data["value"], dtype=float),
                np.asarray(data["abstain"], dtype=float),
                np.asarray(data["seconds"], dtype=float),
                np.asarray(data["tokens"], dtype=float),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterError(f"bad table in router file: {exc}") from None
        n, k = len(t.abstain), len(t.tiers)
        if k < 2 or any(a.shape[:2] != (n, k) for a in (t.q, t.value, t.seconds, t.tokens)) or n == 0:
            raise RouterError("bad table in router file: q, value, seconds and tokens must be rows × tiers")
        return t

    def take(self, rows: np.ndarray) -> Table:
        return Table(
            self.tiers, self.q[rows], self.value[rows], self.abstain[rows], self.seconds[rows], self.tokens[rows]
        )


@dataclass(frozen=True)
class Point:
    """An operating point and what it did on the table: mean trust, time as a share of always asking the last
    tier, the shares escalated, held back ("not sure") and lost (held back though some tier was right)."""

    keep: float
    give_up: float
    final: float
    trust: float
    time: float
    escalated: float
    abstained: float
    lost: float

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Outcomes:
    """Per row: the trust value reached, the seconds spent, whether it escalated, whether it abstained, and
    whether it reached the last tier."""

    value: np.ndarray
    seconds: np.ndarray
    escalated: np.ndarray
    abstained: np.ndarray
    last: np.ndarray


def play(table: Table, keep: float, give_up: float, final: float) -> Outcomes:
    """Run the three thresholds over the table's rows (``give_up`` ≤ ``keep``)."""
    n, k = table.q.shape
    value = np.zeros(n)
    seconds = np.zeros(n)
    open_ = np.ones(n, dtype=bool)
    abstained = np.zeros(n, dtype=bool)
    reached = np.zeros(n, dtype=bool)
    escalated = np.zeros(n, dtype=bool)
    for i in range(k):
        seconds[open_] += table.seconds[open_, i]
        if i == k - 1:
            reached = open_.copy()
        q = table.q[:, i]
        if i == k - 1:
            kept, stop = open_ & (q >= final), open_ & (q < final)
        else:
            kept, stop = open_ & (q >= keep), open_ & (q < give_up)
        value[kept] = table.value[kept, i]
        value[stop] = table.abstain[stop]
        abstained |= stop
        open_ &= ~(kept | stop)
        if i == 0:
            escalated = open_.copy()  # went on past the first tier
    return Outcomes(value, seconds, escalated, abstained, reached)


def _point(table: Table, keep: float, give_up: float, final: float, last_time: float, some_right: np.ndarray) -> Point:
    o = play(table, keep, give_up, final)
    lost = float(np.sum(o.abstained & some_right) / max(1, np.sum(some_right)))
    return Point(
        keep,
        give_up,
        final,
        float(np.mean(o.value)),
        float(np.sum(o.seconds) / last_time) if last_time > 0 else math.nan,
        float(np.mean(o.escalated)),
        float(np.mean(o.abstained)),
        lost,
    )


def points(table: Table) -> list[Point]:
    """Every operating point tried: thresholds at quantiles of the table's P(right) (and 0, where nothing is held
    back), ``give_up`` ≤ ``keep``. The last tier's threshold is tried on all rows at once (what reaches the last
    tier depends only on the other two)."""
    first = np.unique(np.concatenate([[0.0, 1.0 + 1e-9], np.quantile(table.q[:, :-1], np.linspace(0, 1, QUANTILES))]))
    finals = np.unique(np.concatenate([[0.0], np.quantile(table.q[:, -1], np.linspace(0, 1, QUANTILES))]))
    last_time = float(np.sum(table.seconds[:, -1]))
    some_right = (table.value > 0).any(axis=1) & (table.abstain == 0)
    n_right = max(1, int(np.sum(some_right)))
    n = len(table.abstain)
    # per final threshold (columns): each row's value and whether it is held back, if it reaches the last tier
    kept_last = table.q[:, -1:] >= finals[None, :]
    value_last = np.where(kept_last, table.value[:, -1:], table.abstain[:, None])
    out = []
    for keep in first:
        for give_up in first[first <= keep]:
            o = play(table, float(keep), float(give_up), 2.0)  # 2.0: every row reaching the last tier is held back
            reach = o.last
            value = np.where(reach[:, None], value_last, o.value[:, None])
            held = np.where(reach[:, None], ~kept_last, o.abstained[:, None])
            trust = value.mean(axis=0)
            lost = (held & some_right[:, None]).sum(axis=0) / n_right
            abstained = held.sum(axis=0) / n
            time = float(np.sum(o.seconds) / last_time) if last_time > 0 else math.nan
            escalated = float(np.mean(o.escalated))
            out += [
                Point(float(keep), float(give_up), float(f), float(t), time, escalated, float(a), float(lo))
                for f, t, a, lo in zip(finals, trust, abstained, lost, strict=True)
            ]
    return out


def choose(candidates: Sequence[Point], target: Target, not_sure: float, last_trust: float) -> Point:
    """The operating point for a target among ``candidates``, holding back at most ``not_sure`` (see the module's
    docstring); ``last_trust``: the trust of always asking the last tier, which "quality" must reach."""
    ok = [p for p in candidates if p.lost <= not_sure + 1e-9]
    never = [p for p in ok if p.escalated == 0]
    if target == "fast" or (isinstance(target, float) and target <= 0):
        pool = never
    elif target == "balanced":
        pool = [p for p in ok if p.time <= BALANCED_TIME + 1e-9] or never
    elif target == "quality":
        good = [p for p in ok if p.trust >= last_trust - 1e-9]
        if good:
            return min(good, key=lambda p: (p.time, -p.trust))
        pool = ok
    else:
        pool = [p for p in ok if p.escalated <= float(target) + 1e-9]
    if not pool:  # nothing holds back little enough (cannot happen: thresholds 0 hold nothing back)
        pool = list(candidates)
    return max(pool, key=lambda p: (p.trust, -p.time))


def rescale(table: Table, speeds: Mapping[str, tuple[float, float]]) -> Table:
    """The table with each tier's seconds as this machine measures them (seconds per prompt token evaluated, per
    token generated), when every tier of the table has a measured speed; else as recorded (mixing two machines'
    seconds would compare nothing)."""
    if not all(t in speeds for t in table.tiers):
        return table
    per = np.array([speeds[t] for t in table.tiers], dtype=float)  # tiers × 2
    seconds = table.tokens[:, :, 0] * per[None, :, 0] + table.tokens[:, :, 1] * per[None, :, 1]
    return Table(table.tiers, table.q, table.value, table.abstain, seconds, table.tokens)


class TrustRouter(Router):
    kind = "trust"
    judges_last = True

    def __init__(
        self,
        table: Table | None = None,
        last_signal: Signal | None = None,
        target: Target = "balanced",
        not_sure: float = NOT_SURE,
        **_: Any,
    ) -> None:
        super().__init__()
        self.table = table
        self.last_signal = last_signal
        self.target = check_target(target)
        self.not_sure = float(not_sure)
        self.speeds: dict[str, tuple[float, float]] = {}
        self.point: Point | None = None

    # -- the operating point ------------------------------------------------------------
    def operate(self) -> Point:
        """Choose the operating point for the target, ``not_sure`` and the speeds now set."""
        if self.table is None:
            raise RouterError("the trust router has no table of labelled questions: fit it with `calibrate`")
        table = rescale(self.table, self.speeds)
        last_trust = float(np.mean(table.value[:, -1]))
        self.point = choose(points(table), self.target, self.not_sure, last_trust)
        return self.point

    def set_target(self, target: Any, not_sure: float | None = None) -> Point:
        self.target = check_target(target)
        if not_sure is not None:
            self.not_sure = float(not_sure)
        return self.operate()

    def set_speeds(self, speeds: Mapping[str, tuple[float, float]]) -> Point:
        """Per tier name (as the table names them): seconds per prompt token evaluated and per token generated."""
        self.speeds = {str(k): (float(a), float(b)) for k, (a, b) in speeds.items()}
        return self.operate()

    def signal_for(self, index: int, n_tiers: int) -> Signal | None:
        return self.last_signal if index == n_tiers - 1 else self.signal

    # -- the interface ------------------------------------------------------------------
    def fit(self, records: Sequence[Any], costs: Sequence[float]) -> Router:
        raise RouterError(
            "the trust router is fitted from a recorded run: `automix-local calibrate RUN --router trust`"
        )

    def decide(self, obs: Observation) -> Decision:
        point = self.point or self.operate()
        conf = obs.confidences[obs.tier]
        last = obs.tier == obs.n_tiers - 1
        if conf is None:
            if last:
                return Decision("keep", None, "trust: no confidence for the last answer", "unchecked")
            return Decision("route", None, "trust: no confidence", "unchecked")
        shown = f"P(right) {conf:.2f}"
        if last:
            if conf >= point.final:
                return Decision("keep", None, f"trust: {shown} ≥ final {point.final:.2f}", "likely_right", conf)
            why = f"trust: {shown} < final {point.final:.2f}: not sure"
            return Decision("abstain", None, why, "not_sure", conf)
        if conf >= point.keep:
            return Decision("keep", None, f"trust: {shown} ≥ keep {point.keep:.2f}", "likely_right", conf)
        if conf < point.give_up:
            why = f"trust: {shown} < give up {point.give_up:.2f}: no tier is likely right"
            return Decision("abstain", None, why, "no_tier", conf)
        return Decision("route", None, f"trust: {shown} in [{point.give_up:.2f}, {point.keep:.2f})", "unsure", conf)

    def params(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "not_sure": self.not_sure,
            "point": self.point.to_json() if self.point else None,
            "last_signal": self.last_signal.to_json() if self.last_signal else None,
            "table": self.table.to_json() if self.table else None,
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Router:
        table = params.get("table")
        last = params.get("last_signal")
        if not isinstance(table, dict) or not isinstance(last, dict):
            raise RouterError('a trust router file needs "table" and "last_signal" (write it with `calibrate`)')
        try:
            last_signal = Signal.from_json(last)
        except SignalError as exc:
            raise RouterError(str(exc)) from None
        router = cls(
            Table.from_json(table),
            last_signal,
            params.get("target", "balanced"),
            float(params.get("not_sure", NOT_SURE)),
        )
        router.operate()
        return router


def held_out(
    table_for: Callable[[np.ndarray, np.ndarray], tuple[Table, Table]],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    target: Target,
    not_sure: float,
) -> list[Point]:
    """Per split: the point chosen on the train rows' table, played on the test rows' (both from ``table_for``,
    which fits the signals on the train rows only)."""
    out = []
    for tr, te in splits:
        train, test = table_for(tr, te)
        chosen = choose(points(train), target, not_sure, float(np.mean(train.value[:, -1])))
        last_time = float(np.sum(test.seconds[:, -1]))
        some_right = (test.value > 0).any(axis=1) & (test.abstain == 0)
        out.append(_point(test, chosen.keep, chosen.give_up, chosen.final, last_time, some_right))
    return out
