"""The report's results as typed objects, and their JSON (``results.json``).

Field order is the order of the keys in ``results.json``; a field whose metadata is :data:`OPTIONAL` is left out
of the JSON when it is None (a value the run could not give, e.g. seconds for the paper's records),
while a NaN is written as null; one whose metadata is :data:`INTERNAL` is never written (working data the report
reads, such as a router's held-out outcomes)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

OPTIONAL = {"optional": True}  # field metadata: left out of the JSON when None
INTERNAL = {"internal": True}  # field metadata: never in the JSON


def to_json(x: Any, nan_as_null: bool = True) -> Any:
    """Dataclasses, dicts, lists and numbers as JSON values: optional Nones dropped, NaN and ±inf as None
    (unless ``nan_as_null`` is False)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {
            f.name: to_json(getattr(x, f.name), nan_as_null)
            for f in dataclasses.fields(x)
            if not f.metadata.get("internal") and not (f.metadata.get("optional") and getattr(x, f.name) is None)
        }
    if nan_as_null and isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: to_json(v, nan_as_null) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_json(v, nan_as_null) for v in x]
    return x


class RouterKey(str):
    """A router table's key, the pair (kind, signal); its string is how the report prints it ("pomdp ·
    mean_logprob"), so results.json is keyed as before. A baseline (always_small, random p=0.5) has no
    signal."""

    kind: str
    signal: str | None

    def __new__(cls, kind: str, signal: str | None = None) -> RouterKey:
        key = super().__new__(cls, kind if signal is None else f"{kind} · {signal}")
        key.kind, key.signal = kind, signal
        return key

    @property
    def fitted(self) -> bool:
        """A router fitted on a signal, not a baseline."""
        return self.signal is not None


@dataclass(frozen=True)
class MeanStd:
    """A figure over the seeds' splits (NaN values left out; ``n`` counts the rest)."""

    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Interval:
    """A 95 % percentile interval over resamples of the items, and the share of resamples above zero."""

    low: float
    high: float
    p_positive: float
    replicates: int


@dataclass
class RouterResult:
    """One router (or baseline) held out: every figure over the seeds' splits."""

    performance: MeanStd
    cost: MeanStd
    escalation: MeanStd
    delta_ibc: MeanStd
    retained: MeanStd  # F1 / the large tier's F1
    ibc_defined: MeanStd  # share of the splits where ΔIBC is defined
    delta_ibc_ci: Interval | None = field(default=None, metadata=OPTIONAL)
    # per seed: the test part's item indices and the fitted router's outcome on them (routers.Outcome)
    held_out: list[tuple[Any, Any]] = field(default_factory=list, repr=False, compare=False, metadata=INTERNAL)


@dataclass(frozen=True)
class TierQuality:
    f1: float
    em: float
    abstention_rate: float
    answer_seconds: float | None = field(default=None, metadata=OPTIONAL)
    f1_answerable: float | None = field(default=None, metadata=OPTIONAL)
    f1_unanswerable: float | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class ReliabilityBin:
    bin: tuple[float, float]
    count: int
    confidence: float
    accuracy: float


@dataclass(frozen=True)
class Reliability:
    """Reliability-diagram data (equal-width bins) and the expected calibration error."""

    bins: list[ReliabilityBin]
    ece: float


@dataclass(frozen=True, kw_only=True)
class SignalQuality:
    """Does a signal tell right small answers from wrong ones: raw AUROC and/or held out, calibration, cost."""

    features: list[str]
    needs_verifier: str | None
    auroc_raw: float | None = field(default=None, metadata=OPTIONAL)
    auroc_heldout: MeanStd | None = field(default=None, metadata=OPTIONAL)
    reliability: Reliability
    verify_seconds: float | None = field(default=None, metadata=OPTIONAL)

    def auroc(self) -> float:
        """The held-out AUROC where the signal is fitted, else the raw value's."""
        if self.auroc_heldout is not None:
            return self.auroc_heldout.mean
        return math.nan if self.auroc_raw is None else self.auroc_raw


@dataclass(frozen=True)
class AbstainQuality:
    f1: MeanStd  # as recorded, on the held-out parts
    f1_heldout_with_threshold: MeanStd
    threshold: float | None  # fitted on every item; None: abstaining never helped
    abstains: float  # share of the items at or above it


@dataclass(frozen=True)
class SignalShare:
    rates: dict[str, dict[str, float]]  # rate → share, sd, lo, hi (gain.heldout_shares)
    cost_ratio: float | None = field(default=None, metadata=OPTIONAL)  # seconds as a share of the small tier's answer


@dataclass(frozen=True)
class OracleShare:
    rates: list[float]
    random_vs_large: dict[str, float]
    oracle_vs_large: dict[str, float]
    signals: dict[str, SignalShare]


@dataclass(frozen=True)
class LearningCurve:
    router: RouterKey | None
    delta_ibc: dict[str, MeanStd]  # train size → ΔIBC


@dataclass
class CostSettingResult:
    name: str
    tier_costs: dict[str, float]
    verify_costs: dict[str, list[float]]
    routers: dict[RouterKey, RouterResult]
    best: RouterKey | None
    curves: dict[str, list[dict[str, float]]]  # signal → threshold sweep points (cost, performance)
    retained_at_half_large_cost: dict[str, float]
    random_mixing_retained_at_half_large_cost: float
    learning_curve: LearningCurve
    regime: str
    warnings: list[str]


@dataclass(frozen=True, kw_only=True)
class TrustScore:
    """The mean trust score (+1 right, 0 abstained, −1 wrong; ``scoring.trust_value``) of a set of answers, its
    95 % interval over resamples of the items, and the shares of answers scoring +1 (right, an abstention on an
    unanswerable question among them), 0 (an abstention on an answerable one) and −1 (wrong). Held out: means over
    the seeds' test parts, ``std`` over the seeds."""

    mean: float
    ci: Interval
    right: float
    abstained: float
    wrong: float
    std: float | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class RouterTrust:
    """One router held out: its answers as recorded, and with each tier's first-token abstention threshold
    (fitted on the train part, as `calibrate` fits it) turning that tier's answers into abstentions."""

    recorded: TrustScore
    with_abstention: TrustScore | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class CostSettingTrust:
    name: str
    routers: dict[RouterKey, RouterTrust]
    best: RouterKey | None  # the highest held-out trust score as recorded, among fitted routers escalating 10–90 %


@dataclass(frozen=True)
class OutcomeRow:
    """The trust router (keep, escalate or "not sure") for one target, held out: its trust score and always
    asking the last tier's on the same test parts, its time as a share of the last tier's, the shares escalated,
    held back ("not sure") and lost (held back though some tier was right)."""

    target: str
    trust: MeanStd
    last_trust: float
    time: MeanStd
    escalated: float
    abstained: float
    lost: float


@dataclass(frozen=True)
class ThreeOutcomes:
    not_sure: float  # the bound on right answers held back, as [cascade] not_sure
    time_costs: str  # what "time" is measured in
    rows: list[OutcomeRow]
    # per judged tier: P(right) shown in bins, held out (count: answers per split; confidence: mean shown;
    # accuracy: the share right)
    reliability: dict[str, list[ReliabilityBin]]


@dataclass(frozen=True)
class Trust:
    """The trust score of every tier, the oracles and every router (per cost setting) on a run."""

    tiers: dict[str, TrustScore]  # every item, as recorded
    oracles: dict[str, TrustScore]  # every item: the better tier; the better tier or an abstention; …
    tiers_with_abstention: dict[str, TrustScore] | None  # held out, τ fitted on the train part; None: no τ
    cost_settings: list[CostSettingTrust]
    # the trust router held out per target, and the reliability of its percentages (None: the run lacks a
    # tier's features or seconds)
    outcomes: ThreeOutcomes | None = field(default=None, metadata=OPTIONAL)


@dataclass(frozen=True)
class RunSummary:
    source: str
    tiers: list[str]
    items: int
    errors: int
    meta: dict[str, Any]


@dataclass
class Results:
    run: RunSummary
    correct_f1: float
    train_size: int
    train_sizes: list[int]
    seeds: int
    tiers: dict[str, TierQuality]
    small_correct_rate: float
    signals: dict[str, SignalQuality]
    abstain: dict[str, AbstainQuality] | None
    oracle_share: OracleShare
    cost_settings: list[CostSettingResult]
    command: str | None = None
    trust: Trust | None = field(default=None, metadata=OPTIONAL)
