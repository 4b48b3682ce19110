"""Each local tier's speed on this machine: seconds per prompt token evaluated and per generated token.

A local tier's cost in time is what it measures here, not a number written in models.toml: the ``SpeedBook``
keeps, per tier, a running estimate updated from every answered step (``observe``) and kept in the history
database (``storage.Store``'s ``tier_speeds`` table), so it survives restarts. It is keyed by the tier's name,
its model file's name and where it runs (GPU layers, threads): a changed model or setup starts afresh and
never inherits the old speed. A remote tier is not measured here: its cost stays its price per token.

Before a tier has answered anything, ``speed_at_load`` measures one short fixed prompt right after its model
loads (``PROBE_PROMPT``: 50 tokens evaluated, 4 generated). ``record_answer`` feeds an answered question's
local steps into the book, hands the speeds to the cascade and adds the question to this session's time
against always asking the last local tier (``Savings``, shown in the app's status bar).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import Config, TierConfig, source_filename
from .storage import DATABASE, SpeedSums, Store, StoreError

if TYPE_CHECKING:
    from .ask import AskService
    from .backends.base import Backend, Generation
    from .cascade import Cascade, Step, Trace

log = logging.getLogger(__name__)

# The estimate: for each part (prompt evaluation, generation) the ratio of exponentially weighted sums,
#     seconds per token = Σ dᵏ·secondsₖ / Σ dᵏ·tokensₖ     (k = observations since, newest k = 0).
# That is the weighted least-squares fit of seconds = rate × tokens through the origin when an observation's
# noise grows with its token count, with older observations forgotten by a factor d each:
# * a 900-token prompt says more about the per-token rate than a 20-token follow-up (whose fixed costs, e.g.
#   the last prompt token that the backend decodes alone, weigh more): the sums weight it by its tokens;
# * the machine changes under the estimate (other programs, thermal throttling, a laptop on battery): with
#   d = 0.9 the estimate follows the last ~10 answers (1 / (1 - d)), and one slow answer moves it only a little;
# * the state is five numbers per tier, updated in place and stored as they are: no window of past answers.
DECAY = 0.9
# An observation this many times slower (or faster) than an estimate of at least OUTLIER_AFTER observations is
# not the machine's speed but an accident (a laptop that slept in the middle of an answer): it is ignored.
OUTLIER = 10.0
OUTLIER_AFTER = 3

# The first estimate, when a tier's model loads and the book has nothing for it: 50 prompt tokens evaluated
# and 4 generated (the same count with the SmolLM2 and Qwen2.5 tokenizers), greedy, on the backend just loaded.
# It costs one short answer, once per tier, model and setup (then the database has an estimate): 0.64 s of CPU
# time for the default small model (Qwen2.5-Coder-0.5B) and 1.3 s for the large one (Qwen2.5-Coder-1.5B), i.e.
# about 0.35 s and 0.7 s of wall time on 2 idle cores (measured: 1.2 s and 2.6 s on 2 cores shared with 8 busy
# threads). There, its estimate predicted the next real answers (365 prompt tokens) within 6 % for the small model
# and 25 % for the large one. Run it before any static prompt prefix is warmed: it replaces the KV cache.
PROBE_PROMPT = (
    "A speed check. The numbers below go up by one, separated by commas, past twenty: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
)
PROBE_TOKENS = 4


@dataclass(frozen=True)
class TierSpeed:
    """What one local tier takes on this machine, and how many answers (or probes) the estimate rests on."""

    prompt_token_seconds: float  # seconds per prompt token evaluated (not those reused from the KV cache)
    gen_token_seconds: float  # seconds per generated token
    observations: int

    def seconds(self, tokens_evaluated: int, tokens_out: int) -> float:
        """Seconds to evaluate ``tokens_evaluated`` prompt tokens and generate ``tokens_out``."""
        return self.prompt_token_seconds * tokens_evaluated + self.gen_token_seconds * tokens_out

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt_token_seconds": self.prompt_token_seconds,
            "gen_token_seconds": self.gen_token_seconds,
            "observations": self.observations,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TierSpeed:
        """The speed ``to_json`` wrote; ValueError when it is not one."""
        try:
            speed = cls(
                float(data["prompt_token_seconds"]), float(data["gen_token_seconds"]), int(data["observations"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a tier speed: {data!r} ({exc})") from None
        if not all(math.isfinite(x) and x > 0 for x in (speed.prompt_token_seconds, speed.gen_token_seconds)):
            raise ValueError(f"not a tier speed: {data!r} (the seconds must be positive)")
        return speed


class TierModel(NamedTuple):
    """What a local tier's speed belongs to: its model file's name and where it runs."""

    model: str
    setup: str

    @classmethod
    def of(cls, tier: TierConfig) -> TierModel:
        model = Path(source_filename(tier.source)).name if tier.source is not None else tier.name
        gpu = "cpu" if tier.n_gpu_layers == 0 else f"gpu {tier.n_gpu_layers} layers"
        return cls(model, f"{gpu}, {tier.n_threads or 'all'} threads")


def _rate(seconds: float, tokens: float) -> float | None:
    return seconds / tokens if tokens > 0 else None


def _valid(tokens: int, seconds: float) -> bool:
    return tokens >= 1 and math.isfinite(seconds) and seconds > 0


def _add(
    sums: SpeedSums, tokens_evaluated: int, tokens_out: int, prompt_seconds: float, gen_seconds: float
) -> SpeedSums:
    """``sums`` with one observation added: each part that is usable (tokens, finite positive seconds, not an
    outlier) decays the old sums by DECAY and adds itself; unchanged when no part is."""

    def usable(tokens: int, seconds: float, old_seconds: float, old_tokens: float) -> bool:
        if not _valid(tokens, seconds):
            return False
        known = _rate(old_seconds, old_tokens)
        if known is None or sums.observations < OUTLIER_AFTER:
            return True
        return known / OUTLIER <= seconds / tokens <= known * OUTLIER

    prompt = usable(tokens_evaluated, prompt_seconds, sums.prompt_seconds, sums.prompt_tokens)
    gen = usable(tokens_out, gen_seconds, sums.gen_seconds, sums.gen_tokens)
    if not (prompt or gen):
        return sums
    new = replace(sums, observations=sums.observations + 1)
    if prompt:
        new = replace(
            new,
            prompt_seconds=DECAY * sums.prompt_seconds + prompt_seconds,
            prompt_tokens=DECAY * sums.prompt_tokens + tokens_evaluated,
        )
    if gen:
        new = replace(
            new, gen_seconds=DECAY * sums.gen_seconds + gen_seconds, gen_tokens=DECAY * sums.gen_tokens + tokens_out
        )
    return new


def _speed(sums: SpeedSums | None) -> TierSpeed | None:
    if sums is None:
        return None
    prompt, gen = _rate(sums.prompt_seconds, sums.prompt_tokens), _rate(sums.gen_seconds, sums.gen_tokens)
    if prompt is None or gen is None:
        return None
    return TierSpeed(prompt, gen, sums.observations)


class SpeedBook:
    """Per local tier, the running estimate of its speed; thread-safe.

    ``path``: the history database that keeps it (None: in memory only). ``models``: each local tier's model
    and setup; a tier not named there (a remote one) is never measured. Every ``observe`` reads the tier's
    stored sums and writes them back in one transaction (a short connection of its own: the app, ``ask`` and
    ``serve`` may all be answering), so the book in memory is the database as of its last read or write."""

    def __init__(self, path: Path | None, models: Mapping[str, TierModel]) -> None:
        self.path = path
        self.models = dict(models)
        self._lock = threading.Lock()
        self._sums: dict[str, SpeedSums] = {}
        self._warned = False
        self.refresh()

    @classmethod
    def for_config(cls, config: Config, path: Path | None = None) -> SpeedBook:
        """The book of ``config``'s local tiers, kept in its history database (or ``path``)."""
        models = {t.name: TierModel.of(t) for t in config.tiers if not t.is_remote}
        return cls(path or config.paths.data_dir / DATABASE, models)

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Read the stored estimates again (another process, or a probe at load, may have written since)."""
        if self.path is None or not self.path.exists():
            return  # reading never creates the database
        try:
            store = Store(self.path)
            try:
                stored = store.speed_sums()
            finally:
                store.close()
        except (StoreError, sqlite3.Error) as exc:
            self._warn(exc)
            return
        with self._lock:
            for tier, (model, setup) in self.models.items():
                sums = stored.get((tier, model, setup))
                if sums is not None:
                    self._sums[tier] = sums

    def speed(self, tier: str) -> TierSpeed | None:
        """The tier's estimate; None until it has both a prompt and a generation measured (or not local)."""
        with self._lock:
            return _speed(self._sums.get(tier))

    def speeds(self) -> dict[str, TierSpeed]:
        """Every local tier's estimate that there is."""
        with self._lock:
            out = {tier: _speed(sums) for tier, sums in self._sums.items()}
        return {tier: s for tier, s in out.items() if s is not None}

    def seconds(self, tier: str, tokens_evaluated: int, tokens_out: int) -> float | None:
        """What the tier would take to evaluate ``tokens_evaluated`` prompt tokens and generate ``tokens_out``."""
        speed = self.speed(tier)
        return speed.seconds(tokens_evaluated, tokens_out) if speed is not None else None

    # ------------------------------------------------------------------ learning
    def observe(
        self, tier: str, tokens_evaluated: int, tokens_out: int, prompt_seconds: float, gen_seconds: float
    ) -> bool:
        """Learn from one answer of ``tier``. A part with no tokens or no finite positive seconds is ignored, as
        is an outlier (see OUTLIER); returns whether anything was learnt."""
        key = self.models.get(tier)
        if key is None:
            return False
        if not (_valid(tokens_evaluated, prompt_seconds) or _valid(tokens_out, gen_seconds)):
            return False

        learnt = False

        def update(sums: SpeedSums) -> SpeedSums:
            nonlocal learnt
            new = _add(sums, tokens_evaluated, tokens_out, prompt_seconds, gen_seconds)
            learnt = new is not sums
            return new

        with self._lock:
            stored = self._write(tier, key, update)
            # the database cannot be used: learn in memory
            self._sums[tier] = stored if stored is not None else update(self._sums.get(tier, SpeedSums()))
            return learnt

    def _write(self, tier: str, key: TierModel, update: Callable[[SpeedSums], SpeedSums]) -> SpeedSums | None:
        if self.path is None:
            return None
        try:
            store = Store(self.path)
            try:
                return store.update_speed_sums(tier, key.model, key.setup, update)
            finally:
                store.close()
        except (StoreError, sqlite3.Error, OSError) as exc:
            self._warn(exc)
            return None

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning("tier speeds are not kept: %s", exc)


# --------------------------------------------------------------------------- the first estimate, at load


def probe(backend: Backend) -> Generation | None:
    """One short fixed answer (PROBE_PROMPT, PROBE_TOKENS generated) on a llama.cpp model: its timing is a
    first estimate of the tier's speed. None for any other backend (a remote tier is priced per token; a test's
    scripted tier has no speed to measure) or when the model fails."""
    from .backends.base import BackendError, run_to_end
    from .backends.llama import LlamaBackend

    if not isinstance(backend, LlamaBackend):
        return None
    try:
        return run_to_end(backend.stream(PROBE_PROMPT, max_tokens=PROBE_TOKENS, temperature=0.0))
    except BackendError as exc:
        log.warning("tier '%s': no speed measured at load: %s", backend.name, exc)
        return None


def speed_at_load(config: Config, tier: TierConfig, backend: Backend) -> TierSpeed | None:
    """Tier ``tier``'s speed once its model is loaded (``backend``): the history database's estimate, else one
    probe (``probe``: about half a second for the default small model), kept there. None for a remote tier, or
    when nothing can be measured. Call it before warming a static prompt prefix: the probe replaces the KV cache."""
    if tier.is_remote:
        return None
    book = SpeedBook.for_config(config)
    known = book.speed(tier.name)
    if known is not None:
        return known
    gen = probe(backend)
    if gen is None:
        return None
    book.observe(tier.name, gen.tokens_evaluated, gen.tokens_out, gen.prompt_seconds, gen.gen_seconds)
    return book.speed(tier.name)


# --------------------------------------------------------------------------- recording answers


def _answer_timing(step: Step) -> tuple[float, float] | None:
    """The step's answer's (prompt seconds, generation seconds); None for a step without them (a remote one)."""
    if step.prompt_seconds <= 0 and step.gen_seconds <= 0:
        return None
    return float(step.prompt_seconds), float(step.gen_seconds)


@dataclass
class Savings:
    """This session's time against always asking the last local tier: per answered question, what that tier
    would have taken (its own answer's seconds when it was asked, else its measured speed × the question's
    prompt tokens and the answer's tokens) and what the cascade's models took (every step's seconds, its
    checks included; not the wait for a model still loading)."""

    questions: int = 0
    cascade_seconds: float = 0.0
    large_seconds: float = 0.0

    @property
    def saved(self) -> float:
        return self.large_seconds - self.cascade_seconds

    def add(self, trace: Trace, book: SpeedBook, large: str) -> bool:
        """Count one answered question; False when always-``large``'s time cannot be told (no steps, or no speed
        measured for it yet)."""
        local = [s for s in trace.steps if s.tier in book.models]
        if not local:
            return False
        asked = next((s for s in local if s.tier == large), None)
        if asked is not None:
            would_take: float | None = asked.answer_seconds
        else:
            would_take = self._estimate(local[0], book, large)
        if would_take is None:
            return False
        self.questions += 1
        self.large_seconds += would_take
        self.cascade_seconds += sum(s.seconds for s in trace.steps)
        return True

    @staticmethod
    def _estimate(first: Step, book: SpeedBook, large: str) -> float | None:
        """What ``large`` would have taken on the question the local step ``first`` answered: its speed × the
        prompt tokens ``first`` evaluated (the KV cache would have held the same earlier prompts) and the tokens
        it generated. A verified step's counts include its check's: the ratio of the two tiers' predicted
        seconds for them then scales ``first``'s measured answer seconds instead."""
        predicted = book.seconds(large, first.tokens_evaluated, first.tokens_out)
        if predicted is None or first.verifier is None:
            return predicted
        own = book.seconds(first.tier, first.tokens_evaluated, first.tokens_out)
        return predicted / own * first.answer_seconds if own else None

    def words(self, large: str) -> str | None:
        """The status bar's few words: "saved 12 s vs always-large", "took 3.1 s more than always-large"."""
        if not self.questions:
            return None
        diff = self.saved
        if diff > -0.05:  # what rounds to 0.0 s is no time lost
            return f"saved {_duration(diff)} vs always-{large}"
        return f"took {_duration(-diff)} more than always-{large}"


def _duration(seconds: float) -> str:
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


class Recorder:
    """One ask service's book and this session's savings (``record_answer`` makes it)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.book = SpeedBook.for_config(config)
        local = [t.name for t in config.tiers if not t.is_remote]
        self.large = local[-1] if len(local) > 1 else None  # one local tier: nothing to save against
        self.savings = Savings()
        self._lock = threading.Lock()

    def record(self, cascade: Cascade | None, trace: Trace) -> None:
        with self._lock:
            for step in trace.steps:
                timing = _answer_timing(step)
                # a verified step's token counts include its check's: only the answer's own are evidence
                if timing is None or step.verifier is not None or step.egress_id is not None:
                    continue
                self.book.observe(step.tier, step.tokens_evaluated, step.tokens_out, *timing)
            self.book.refresh()  # a probe at load may have written a tier this book has not observed
            if self.large is not None:
                self.savings.add(trace, self.book, self.large)
            if cascade is not None and hasattr(cascade, "set_speeds"):
                cascade.set_speeds(self.book.speeds())


_recorders: weakref.WeakKeyDictionary[AskService, Recorder] = weakref.WeakKeyDictionary()
_recorders_lock = threading.Lock()


def record_answer(service: AskService, cascade: Cascade | None, trace: Trace) -> None:
    """Learn the local tiers' speeds from an answered question, hand them to ``cascade`` and count the question in
    the service's session savings. Never raises for the database: an answer does not fail for its timing."""
    with _recorders_lock:
        recorder = _recorders.get(service)
        if recorder is None:
            recorder = _recorders[service] = Recorder(service.config)
    recorder.record(cascade, trace)


def session_savings(service: AskService) -> tuple[Savings, str] | None:
    """The service's session savings and the tier they are measured against (None: no question recorded yet,
    or only one local tier)."""
    recorder = _recorders.get(service)
    if recorder is None or recorder.large is None:
        return None
    return recorder.savings, recorder.large
