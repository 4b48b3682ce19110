"""The backend contract: a model that streams a completion and scores continuations."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from ..errors import AutomixError
from ..streams import Returning

R = TypeVar("R")


@dataclass
class Generation:
    """One finished completion, with what it cost."""

    text: str
    tokens_in: int  # prompt tokens
    tokens_out: int  # generated tokens
    tokens_evaluated: int  # prompt tokens actually evaluated (the rest came from the KV cache)
    prompt_seconds: float
    gen_seconds: float
    finish_reason: str  # "stop" | "eos" | "length" | "abstain" (decided at the first token: see abstain_at)
    token_logprobs: list[float] = field(default_factory=list)
    stopped_by: str | None = None  # the stop string that ended the text, if one did
    first_logprobs: dict[str, float] = field(default_factory=dict)  # watched strings at the first position
    # the model's final hidden state at the last decoded position (the one that chose the answer's end), when
    # asked for (``hidden=True``): what a linear probe reads, with no second pass
    hidden: list[float] | None = None
    # per generated token: the entropy of the model's next-token distribution (nats) and the margin between
    # its two most likely tokens (log-probability); None when the backend cannot see the whole distribution
    token_entropies: list[float] | None = None
    token_margins: list[float] | None = None

    @property
    def seconds(self) -> float:
        return self.prompt_seconds + self.gen_seconds


@dataclass
class Scored:
    """Log-probabilities of candidate continuations after one prompt."""

    logprobs: dict[str, float]
    tokens_in: int
    tokens_evaluated: int
    seconds: float


@dataclass
class Sampled:
    """Answers drawn at a temperature from one prompt (``LlamaBackend.sample_batch``)."""

    texts: list[str]
    tokens_in: int
    tokens_evaluated: int  # prompt tokens evaluated plus one per sampled token decoded
    seconds: float


class BackendError(AutomixError):
    """A backend failure the user can act on. str() is the one line shown to the user."""

    api_code = "model_error"


@dataclass(frozen=True)
class Abilities:
    """What a backend can do beyond the :class:`Backend` protocol. Each backend declares its own
    (``abilities``); callers read these flags, never probe for methods (see :func:`loader`,
    :func:`prefix_warmer`, :func:`batch_sampler` for the typed views)."""

    loads: bool = False  # load(): make the model ready now (else it loads on first use)
    warm_prefix: bool = False  # warm_prefix(text, cache_dir): a static prompt prefix into the KV cache
    hidden_state: bool = False  # stream(hidden=True) fills Generation.hidden
    batched_sampling: bool = False  # sample_batch(prompt, k, …): k answers drawn in one batched decode
    token_distribution: bool = False  # a Generation carries token_entropies / token_margins
    # a Generation carries token_logprobs and the first_logprobs of ``watch_first`` strings, ``abstain_at`` is
    # honoured, and score() works: what the routers' signals and the logprob verifier read
    token_logprobs: bool = False
    # the backend sees each position's distribution only through its most likely ``top_k`` tokens (an
    # OpenAI-compatible endpoint's top_logprobs): margins are exact, entropies estimated, a watched string
    # whose first token is not among them gets a floor, and score() reads a continuation's first token only;
    # None: the whole vocabulary (a local model)
    top_k: int | None = None


class Backend(Protocol):
    name: str
    n_ctx: int
    abilities: Abilities

    @property
    def uses_chat_template(self) -> bool: ...

    def render(self, messages: Sequence[dict[str, str]]) -> str: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int | None = None,
        watch_first: Sequence[str] = (),
        abstain_at: float | None = None,
        hidden: bool = False,
    ) -> Generator[str, None, Generation]: ...

    def score(self, prompt: str, continuations: Sequence[str]) -> Scored: ...

    def close(self) -> None: ...


class Loads(Protocol):
    def load(self) -> None: ...


class WarmsPrefix(Protocol):
    def warm_prefix(self, text: str, cache_dir: Path | None = None) -> str: ...


class SamplesBatch(Protocol):
    def sample_batch(
        self,
        prompt: str,
        k: int,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> Sampled: ...


def loader(backend: Backend) -> Loads | None:
    """The backend's ``load()``, if it declares ``abilities.loads``."""
    return cast(Loads, backend) if backend.abilities.loads else None


def prefix_warmer(backend: Backend) -> WarmsPrefix | None:
    """The backend's ``warm_prefix()``, if it declares ``abilities.warm_prefix``."""
    return cast(WarmsPrefix, backend) if backend.abilities.warm_prefix else None


def batch_sampler(backend: Backend) -> SamplesBatch | None:
    """The backend's ``sample_batch()``, if it declares ``abilities.batched_sampling``."""
    return cast(SamplesBatch, backend) if backend.abilities.batched_sampling else None


@runtime_checkable
class RemoteBackend(Backend, Protocol):
    """A tier behind an HTTP API: the cascade builds the exact request body (``payload``), shows and logs it,
    then sends those bytes (``stream_body``) — the privacy contract's order."""

    @property
    def endpoint(self) -> Any: ...  # .url, .host, .port of where the request goes

    def payload(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> bytes: ...

    def stream_body(
        self,
        body: bytes,
        on_attempt: Callable[[int], None] | None = None,
        *,
        stop: Sequence[str] = (),
        watch_first: Sequence[str] = (),
        abstain_at: float | None = None,
    ) -> Generator[str, None, Generation]: ...


@runtime_checkable
class EndpointBackend(RemoteBackend, Protocol):
    """A remote tier whose endpoint returns token log-probabilities (``logprobs = true``): it reads the local tiers'
    prompts, and the cascade builds each request body (``prompt_payload``), shows and logs it, then sends it."""

    def prompt_payload(
        self, prompt: str, *, max_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> bytes: ...


def run_to_end(gen: Generator[Any, Any, R]) -> R:
    """Drain a stream and return what it returns (a backend's Generation, the cascade's answer, a Trace)."""
    stream = Returning(gen)
    for _ in stream:
        pass
    return stream.value
