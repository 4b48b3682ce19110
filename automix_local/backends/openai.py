"""A remote tier: any OpenAI-compatible ``/v1/chat/completions`` server, streamed over SSE.

httpx does the HTTP, the TLS and the proxy; httpx-sse reads the event stream. What is ours:

* One deadline: ``tier.timeout`` seconds bound the whole call — DNS, connect, TLS, retries, waits and
  streaming. httpx bounds each socket operation but has no total timeout (and a DNS lookup ignores
  timeouts altogether), so each attempt runs in a worker thread (:class:`_Attempt`) that hands what
  arrives to the caller through a queue; the caller waits at most the time left, so a server that
  trickles bytes cannot hold the call open.
* Retries (at most ``tier.retries`` extra attempts, only before any text was yielded): connection
  refused, HTTP 429 (``Retry-After`` honoured, capped at 30 s and at the deadline) and 5xx (backoff
  0.5 s, 1 s, 2 s …). Never on 400/401/403/404, DNS failures or once text has been streamed.
* Every failure is a :class:`RemoteError` whose ``str()`` is one line for the user and whose
  ``kind`` says what went wrong. The API key is sent in the ``Authorization`` header only; it never
  appears in a message, an exception or a log.
* ``close()`` from another thread (the app's Esc) ends the call at once and shuts its socket.

Proxies: ``https_proxy``/``http_proxy`` (and the upper-case forms) of the backend's ``env`` are honoured
(``http://[user:pass@]host:port`` proxies: an https endpoint is reached through a CONNECT tunnel, so TLS
stays end to end; an http:// endpoint's request is handed to the proxy, as curl does), and ``no_proxy``
bypasses them.

Limitations: a worker whose caller gave up (deadline, close) ends at its next read or when httpx's own
per-read timeout (``tier.timeout``) passes.

An endpoint tier (``logprobs = true``): the server returns token log-probabilities, so the tier reads the local
tiers' prompts and feeds the routers the same signals (``backends/toplogprobs.py`` says what the top k give and
what they do not). Its prompts are the local layout's, which end inside the assistant's reply ("Answer:"): with
``chat_format = "auto"`` the chat messages go to /chat/completions and the reply's start is sent as a final
assistant message to be continued (``continue_final_message``, vLLM's and SGLang's name for it; llama.cpp's
llama-server continues a final assistant message by itself); with a named ``chat_format`` ("chatml", …) the
prompt is rendered here with that template and sent as text to /completions, for servers that cannot continue an
assistant message (llama-cpp-python's ``llama_cpp.server``, which also honours ``repeat_penalty``: it is sent as
1.0, greedy as the local tier). Stop strings are applied here, token by token, as the local tier applies them:
the token that completes one is counted (its log-probability too) and the rest of the response is not read.
"""

from __future__ import annotations

import dataclasses
import email.utils
import json
import math
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource

from ..config import TierConfig
from . import toplogprobs
from .base import Abilities, BackendError, Generation, Scored, run_to_end
from .toplogprobs import TopToken

KINDS = ("refused", "dns", "timeout", "auth", "rate_limit", "server", "http", "protocol", "config", "cancelled")
USER_AGENT = "automix-local"
MAX_RETRY_AFTER = 30.0  # seconds: the longest Retry-After the client will honour
BACKOFF_BASE = 0.5  # seconds: first backoff after a refused connection or a 5xx, doubled each time
DEFAULT_REMOTE_N_CTX = 128_000
_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error response read for its message
_EXCERPT_CHARS = 160


def _one_line(text: str, limit: int | None = None) -> str:
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


class RemoteError(BackendError):
    """A remote call failed. ``str()`` is one line for the user; ``kind`` is one of :data:`KINDS`.

    ``partial`` holds the text already streamed before the failure ("" if none).
    """

    def __init__(
        self,
        message: str,
        kind: str = "protocol",
        partial: str = "",
        *,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        self.kind = kind if kind in KINDS else "protocol"
        self.partial = partial
        self.status = status  # the HTTP status, where there was one
        self.attempts = attempts  # HTTP attempts made
        super().__init__(_one_line(message))


@dataclass(frozen=True)
class Endpoint:
    """The chat/completions URL and its parts."""

    url: str
    host: str
    port: int
    scheme: str
    path: str  # includes the query string, if the base URL had one

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Proxy:
    url: str  # "http://[user:password@]host:port": httpx sends the credentials as Proxy-Authorization: Basic
    hostport: str


def find_proxy(endpoint: Endpoint, env: Mapping[str, str], tier_name: str = "?") -> Proxy | None:
    """The proxy the environment sets for this endpoint (``<scheme>_proxy``), unless ``no_proxy`` bypasses it."""
    raw = env.get(f"{endpoint.scheme}_proxy") or env.get(f"{endpoint.scheme.upper()}_PROXY")
    if not raw or not raw.strip():
        return None
    bypass = env.get("no_proxy") or env.get("NO_PROXY") or ""
    host = endpoint.host.lower().strip("[]")
    for entry in (e.strip().lower() for e in bypass.split(",")):
        if not entry:
            continue
        entry = entry.split(":")[0] if entry.count(":") == 1 else entry  # "host:port" → host
        if entry == "*" or host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")):
            return None
    url = raw.strip() if "://" in raw else "http://" + raw.strip()
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise RemoteError(
            f"remote tier '{tier_name}': proxy {parts.scheme}://{parts.hostname or ''} from the environment is not "
            "supported: use an http:// proxy URL (the tunnel to the server is still TLS)",
            "config",
        )
    hostport = f"{parts.hostname}:{parts.port or 8080}"
    return Proxy(parts._replace(netloc=parts.netloc if parts.port else f"{parts.netloc}:8080").geturl(), hostport)


def parse_endpoint(base_url: str, tier_name: str = "?", route: str = "/chat/completions") -> Endpoint:
    """``base_url`` ("http://host:8000/v1", trailing slash or full .../chat/completions) -> Endpoint.
    ``route``: "/chat/completions", or "/completions" for a prompt rendered here (a named ``chat_format``)."""
    raw = (base_url or "").strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise RemoteError(f"remote tier '{tier_name}': invalid base_url {raw!r}: {exc}", "config") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RemoteError(
            f"remote tier '{tier_name}': base_url must start with http:// or https://, got {raw!r}", "config"
        )
    host = parts.hostname
    if not host:
        raise RemoteError(f"remote tier '{tier_name}': base_url {raw!r} has no host name", "config")
    if parts.username or parts.password:
        raise RemoteError(
            f"remote tier '{tier_name}': base_url must not contain credentials; use api_key_env instead", "config"
        )
    port = port or (443 if scheme == "https" else 80)
    path = parts.path.rstrip("/")
    given = next((r for r in ("/chat/completions", "/completions") if path.endswith(r)), "")
    path = path[: len(path) - len(given)] + route
    netloc = f"[{host}]" if ":" in host else host
    default_port = port == (443 if scheme == "https" else 80)
    url = f"{scheme}://{netloc}{'' if default_port else f':{port}'}{path}"
    if parts.query:
        path += f"?{parts.query}"
        url += f"?{parts.query}"
    return Endpoint(url=url, host=host, port=port, scheme=scheme, path=path)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds or an HTTP-date) as seconds from now; None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def estimate_tokens(text: str) -> int:
    """A rough token count for text (about four characters a token)."""
    return len(text) // 4 if len(text) >= 4 else (1 if text else 0)


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class _Attempt:
    """One HTTP attempt, sent by httpx in a worker thread that queues what arrives for the caller.

    The queue holds ("response", httpx.Response), then ("event", ServerSentEvent) for a 200 event
    stream or ("data", bytes) for any other body, then ("end", None); or ("error", exception) where
    httpx failed. :meth:`next` waits at most the time left; :meth:`cancel` wakes it at once."""

    def __init__(self, client: httpx.Client, request: httpx.Request) -> None:
        self.response: httpx.Response | None = None
        self.cancelled = False
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._done = False  # the worker read the whole response: its connection may go back to the pool
        threading.Thread(target=self._run, args=(client, request), name="automix-remote", daemon=True).start()

    def _run(self, client: httpx.Client, request: httpx.Request) -> None:
        try:
            self.response = response = client.send(request, stream=True)
        except Exception as exc:  # handed to the caller, who says what it means
            self._queue.put(("error", exc))
            return
        try:
            self._queue.put(("response", response))
            parts: Iterator[tuple[str, Any]]
            if response.status_code == 200 and _is_event_stream(response):
                parts = (("event", sse) for sse in EventSource(response).iter_sse())
            else:
                parts = (("data", chunk) for chunk in response.iter_bytes())
            for part in parts:  # to the end even if the caller has what it needs: the connection can be reused
                self._queue.put(part)
            self._done = True
            self._queue.put(("end", None))
        except Exception as exc:
            self._queue.put(("error", exc))
        finally:
            response.close()

    def next(self, deadline: _Deadline, cap: float | None = None) -> tuple[str, Any]:
        """The next thing the worker saw; ("timeout", None) when nothing came in the time left (or ``cap``)."""
        left = deadline.remaining() if cap is None else min(cap, deadline.remaining())
        if self.cancelled:
            return "cancelled", None
        try:
            return self._queue.get(timeout=left) if left > 0 else ("timeout", None)
        except queue.Empty:
            return "timeout", None

    def cancel(self) -> None:
        """From another thread: the caller's wait ends now, and so does the connection."""
        self.cancelled = True
        self._queue.put(("cancelled", None))
        self.abort()

    def abort(self) -> None:
        """Shut the response's socket (unless it was read to the end): a read blocked on it wakes, the worker ends."""
        stream = self.response.extensions.get("network_stream") if self.response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None and not self._done else None
        if isinstance(sock, socket.socket):
            try:
                # socket.socket.shutdown, not SSLSocket.shutdown: wakes a blocked read without unwrapping TLS
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def _is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "").lower()


def _root(exc: BaseException) -> BaseException:
    """The error httpx's exception was raised from (httpx and httpcore each wrap it once)."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


class OpenAIBackend:
    """A remote tier behind an OpenAI-compatible chat-completions endpoint (or, for an endpoint tier with a named
    ``chat_format``, its text-completions endpoint)."""

    abilities = (
        Abilities()
    )  # a remote tier's: nothing to load or warm, no distributions (an instance with logprobs: more)

    def __init__(self, tier: TierConfig, env: Mapping[str, str] | None = None) -> None:
        self.tier = tier
        self.name = tier.name
        default_n_ctx = next(f.default for f in dataclasses.fields(TierConfig) if f.name == "n_ctx")
        self.n_ctx = tier.n_ctx if tier.n_ctx != default_n_ctx else DEFAULT_REMOTE_N_CTX
        self._env: Mapping[str, str] = os.environ if env is None else env
        if not tier.base_url:
            raise RemoteError(f"remote tier '{tier.name}': base_url is not set in models.toml", "config")
        if not tier.model:
            raise RemoteError(f"remote tier '{tier.name}': model is not set in models.toml", "config")
        # an endpoint tier whose prompts are rendered here and sent as text (a named chat_format)
        self.text_prompts = tier.logprobs and tier.chat_format != "auto"
        self.endpoint = parse_endpoint(
            tier.base_url, tier.name, "/completions" if self.text_prompts else "/chat/completions"
        )
        self.model = tier.model
        if tier.logprobs:  # an endpoint tier: each position seen through its top k (no API returns hidden states)
            self.abilities = Abilities(token_distribution=True, token_logprobs=True, top_k=tier.top_logprobs)
        self._template: Any = None  # the chat template a named chat_format renders with (made on first use)
        self._attempt: _Attempt | None = None  # the attempt in progress, for close()
        self._http: httpx.Client | None = None  # made at the first call; keeps connections alive between calls

    # ------------------------------------------------------------------ Backend protocol bits
    @property
    def uses_chat_template(self) -> bool:
        return not (self.text_prompts and self.tier.chat_format == "raw")

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The messages as JSON, what ``stream()`` accepts back as its prompt; text appended to it is the start of
        the assistant's reply. With a named ``chat_format`` (an endpoint tier): the prompt text that template
        makes, as a local tier with that chat_format renders it."""
        if not self.text_prompts:
            return json.dumps([dict(m) for m in messages], ensure_ascii=False)
        if self.tier.chat_format == "raw":
            return "\n\n".join(m["content"] for m in messages)
        return str(self._formatter()(messages=list(messages)).prompt)

    def _formatter(self) -> Any:
        if self._template is None:
            from llama_cpp import llama_chat_format

            name = self.tier.chat_format
            formatter = getattr(llama_chat_format, f"format_{name.replace('-', '_')}", None)
            if formatter is None:
                raise RemoteError(
                    f"remote tier '{self.name}': unknown chat_format {name!r}; use \"auto\" (the server's template), "
                    '"raw", "chatml" or a llama-cpp-python format name such as "llama-2"',
                    "config",
                )
            self._template = formatter
        return self._template

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def score(self, prompt: str, continuations: Sequence[str]) -> Scored:
        """An endpoint tier: each continuation's first token's log-probability after ``prompt`` (one request for
        one token): exact for a continuation of one token, an upper bound for a longer one
        (``toplogprobs.first_tokens``)."""
        if not self.tier.logprobs:
            raise RemoteError(
                f"remote tier '{self.name}': remote tiers cannot score continuations without the endpoint's token "
                "log-probabilities (set logprobs = true if it returns them, or use it as the last tier only)",
                "config",
            )
        t0 = time.perf_counter()
        body = self.prompt_payload(prompt, max_tokens=1)
        generation = run_to_end(self.stream_body(body, watch_first=continuations))
        return scored(generation, continuations, time.perf_counter() - t0)

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
    ) -> Generator[str, None, Generation]:
        """Backend-protocol adaptor: ``prompt`` is ``render(messages)`` output, or plain text sent as one user turn.
        ``hidden`` is ignored (no API returns hidden states); so are ``watch_first`` / ``abstain_at`` without the
        endpoint's log-probabilities (``logprobs = true``: then the request is ``prompt_payload``'s, and stops,
        watched strings and ``abstain_at`` are applied here as the local tier applies them)."""
        if self.tier.logprobs:
            body = self.prompt_payload(prompt, max_tokens=max_tokens, temperature=temperature, seed=seed)
            return (yield from self.stream_body(body, stop=stop, watch_first=watch_first, abstain_at=abstain_at))
        messages: list[dict[str, str]] | None = None
        try:
            parsed = json.loads(prompt)
            if isinstance(parsed, list) and all(isinstance(m, dict) and "role" in m for m in parsed):
                messages = parsed
        except ValueError:
            pass
        if messages is None:
            messages = [{"role": "user", "content": prompt}]
        body = self.payload(messages, max_tokens=max_tokens, temperature=temperature, stop=stop, seed=seed)
        return (yield from self.stream_body(body))

    def close(self) -> None:
        """Drop the connection of a call in progress (its reader then fails); the backend stays usable."""
        attempt = self._attempt
        if attempt is not None:
            attempt.cancel()

    # ------------------------------------------------------------------ request
    def payload(
        self,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        seed: int | None = None,
    ) -> bytes:
        """The exact JSON body ``stream_body`` sends. ``stop``/``seed`` appear only when given."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "max_tokens": int(max_tokens),
            "temperature": float(temperature),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if stop:
            body["stop"] = list(stop)
        if seed is not None:
            body["seed"] = int(seed)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def prompt_payload(
        self, prompt: str, *, max_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> bytes:
        """The exact JSON body an endpoint tier (``logprobs = true``) sends for ``prompt``, a local layout's prompt
        made with ``render``: its chat messages, with any text after them sent as the start of the assistant's
        reply to be continued; or, with a named ``chat_format``, the rendered text itself to /completions. It asks
        for the token log-probabilities and the top ``top_logprobs`` of each position; no stop strings (they are
        applied here, token by token)."""
        body: dict[str, Any] = {"model": self.model}
        if self.text_prompts:
            body["prompt"] = prompt
        else:
            messages, reply = _split_prompt(prompt)
            if messages is None:  # plain text to continue (the paper layout's verification): no chat can
                raise RemoteError(
                    f"remote tier '{self.name}': a plain-text prompt cannot be continued through the server's chat "
                    'template (chat_format = "auto"): set chat_format to the model\'s template name (the prompt is '
                    'then rendered here and sent to /v1/completions), or use layout = "shared"',
                    "config",
                )
            body["messages"] = messages + ([{"role": "assistant", "content": reply}] if reply else [])
            if reply:
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
        body |= {
            "max_tokens": int(max_tokens),
            "temperature": float(temperature),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.text_prompts:
            body["logprobs"] = self.tier.top_logprobs
        else:
            body["logprobs"] = True
            body["top_logprobs"] = self.tier.top_logprobs
        body["repeat_penalty"] = 1.0
        if seed is not None:
            body["seed"] = int(seed)
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "User-Agent": USER_AGENT,
        }
        var = self.tier.api_key_env
        if var:
            key = self._env.get(var, "")
            if not key or not key.strip():
                raise RemoteError(
                    f"remote tier '{self.name}': environment variable {var} is not set "
                    "(api_key_env in models.toml names it)",
                    "auth",
                    attempts=0,
                )
            headers["Authorization"] = f"Bearer {key.strip()}"
        return headers

    def _where(self) -> str:
        proxy = find_proxy(self.endpoint, self._env, self.name)
        return self.endpoint.hostport + (f" (via proxy {proxy.hostport})" if proxy else "")

    def _err(self, message: str, kind: str, partial: str = "", **kw: Any) -> RemoteError:
        return RemoteError(f"remote tier '{self.name}': {message}", kind, partial, **kw)

    def _timeout_error(self, what: str, partial: str = "", attempts: int = 1) -> RemoteError:
        t = self.tier.timeout
        return self._err(
            f"no complete answer from {self._where()} within the {t:g} s timeout ({what}; timeout in models.toml)",
            "timeout",
            partial,
            attempts=attempts,
        )

    def _cancelled(self, what: str, partial: str, attempt: int) -> RemoteError:
        return self._err(f"the call to {self._where()} was cancelled ({what})", "cancelled", partial, attempts=attempt)

    def _client(self) -> httpx.Client:
        if self._http is None:
            proxy = find_proxy(self.endpoint, self._env, self.name)
            self._http = httpx.Client(
                proxy=proxy.url if proxy else None,
                verify=ssl.create_default_context(),  # the system's CAs, and SSL_CERT_FILE where a user sets one
                timeout=float(self.tier.timeout),  # per socket operation; the whole call has the deadline
                trust_env=False,  # proxies come from ``env`` (find_proxy), not from os.environ behind its back
            )
        return self._http

    # ------------------------------------------------------------------ the call
    def stream_body(
        self,
        body: bytes,
        on_attempt: Callable[[int], None] | None = None,
        *,
        stop: Sequence[str] = (),
        watch_first: Sequence[str] = (),
        abstain_at: float | None = None,
    ) -> Generator[str, None, Generation]:
        """POST exactly ``body``; yield text deltas as they arrive; return the Generation. ``stop``,
        ``watch_first`` and ``abstain_at`` are applied here, to what arrives (an endpoint tier's request carries
        no stop strings): as the local tier applies them (``Backend.stream``)."""
        reading = _Reading(stop, watch_first, abstain_at)
        headers = self._headers()  # before any socket: a missing key fails here
        client = self._client()
        deadline = _Deadline(float(self.tier.timeout))
        t0 = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            if deadline.expired:
                raise self._timeout_error("gave up before sending", attempts=attempt - 1)
            if on_attempt is not None:
                on_attempt(attempt)
            request = client.build_request("POST", self.endpoint.url, content=body, headers=headers)
            current = self._attempt = _Attempt(client, request)
            finished = False
            try:
                wait = self._send(current, deadline, attempt)
                if wait is None:
                    generation = yield from self._read_success(current, deadline, body, t0, attempt, reading)
                    finished = not reading.ended_here  # an answer ended here: the rest of the response is not read
                    return generation
            finally:
                if not finished:  # cut short (an error, the deadline, close(), the caller stopped reading)
                    current.abort()
                if self._attempt is current:
                    self._attempt = None
            time.sleep(wait)

    def _can_retry(self, attempt: int) -> bool:
        return attempt <= self.tier.retries

    def _backoff(self, attempt: int, deadline: _Deadline) -> float | None:
        """The backoff before the next attempt, or None when retries or time have run out."""
        if not self._can_retry(attempt):
            return None
        wait = BACKOFF_BASE * 2 ** (attempt - 1)
        return wait if wait < deadline.remaining() else None

    def _send(self, current: _Attempt, deadline: _Deadline, attempt: int) -> float | None:
        """One attempt up to the response headers: None when a 200 is ready to read, else seconds to wait to retry."""
        kind, value = current.next(deadline)
        if kind == "cancelled":
            raise self._cancelled("waiting for the response", "", attempt)
        if kind == "timeout":
            raise self._timeout_error("waiting for the response", attempts=attempt)
        if kind == "error":
            return self._unsent(value, deadline, attempt)
        resp: httpx.Response = value
        status = resp.status_code
        if status == 200:
            return None
        where = self._where()
        excerpt = self._error_excerpt(current, deadline)
        reason = _one_line(resp.reason_phrase)
        label = f"HTTP {status}{f' {reason}' if reason else ''} from {where}"
        tail = f": {excerpt}" if excerpt else ""
        if status == 429:
            asked = retry_after_seconds(resp.headers.get("Retry-After"))
            if not self._can_retry(attempt):
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                raise self._err(f"rate limited ({label}){tries}{tail}", "rate_limit", status=status, attempts=attempt)
            if asked is None:
                wait = BACKOFF_BASE * 2 ** (attempt - 1)
            else:
                wait = min(asked, MAX_RETRY_AFTER)
            left = deadline.remaining()
            if wait >= left:
                capped = f" (capped at {MAX_RETRY_AFTER:g} s)" if asked is not None and asked > wait else ""
                raise self._err(
                    f"rate limited ({label}): waiting {asked if asked is not None else wait:g} s{capped} before "
                    f"retrying would pass the {self.tier.timeout:g} s timeout ({max(0.0, left):.1f} s left)",
                    "rate_limit",
                    status=status,
                    attempts=attempt,
                )
            return wait
        if 500 <= status < 600:
            wait = self._backoff(attempt, deadline)
            if wait is not None:
                return wait
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise self._err(f"server error ({label}){tries}{tail}", "server", status=status, attempts=attempt)
        if status in (401, 403):
            var = self.tier.api_key_env
            hint = f"check the API key in ${var}" if var else "no API key is configured: set api_key_env in models.toml"
            raise self._err(f"{label} ({hint}){tail}", "auth", status=status, attempts=attempt)
        hint = " (check base_url and model in models.toml)" if status == 404 else ""
        raise self._err(f"{label}{hint}{tail}", "http", status=status, attempts=attempt)

    def _unsent(self, exc: Exception, deadline: _Deadline, attempt: int) -> float | None:
        """An attempt that failed before a response: the seconds to wait to retry, or the RemoteError raised."""
        where, root = self._where(), _root(exc)
        if isinstance(exc, httpx.TimeoutException):
            raise self._timeout_error("waiting for the response", attempts=attempt) from None
        if isinstance(root, socket.gaierror):
            raise self._err(
                f"cannot resolve host {self.endpoint.host} ({_one_line(root.strerror or str(root))}; check base_url)",
                "dns",
                attempts=attempt,
            ) from None
        if isinstance(root, ssl.SSLError):
            detail = _one_line(str(root), 200)
            raise self._err(f"TLS error talking to {where}: {detail}", "http", attempts=attempt) from None
        refused = isinstance(root, ConnectionRefusedError)
        if refused or isinstance(exc, httpx.RemoteProtocolError) or isinstance(root, ConnectionError):
            wait = self._backoff(attempt, deadline)
            if wait is not None:
                return wait
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            if refused:
                message = f"connection refused by {where} (is the server running?){tries}"
                raise self._err(message, "refused", attempts=attempt) from None
            message = f"{where} closed the connection without answering ({_one_line(str(exc), 120)}){tries}"
            raise self._err(message, "server", attempts=attempt) from None
        detail = _one_line(str(root) or str(exc) or type(root).__name__, 200)
        kind = "refused" if isinstance(root, OSError) else "protocol"
        raise self._err(f"cannot talk to {where}: {detail}", kind, attempts=attempt) from None

    def _error_excerpt(self, current: _Attempt, deadline: _Deadline) -> str:
        """A short one-line excerpt of an error response's message ("" if none could be read)."""
        data = b""
        while len(data) < _ERROR_BODY_LIMIT:
            kind, chunk = current.next(deadline, cap=2.0)
            if kind != "data":
                break
            data += chunk
        text = data.decode("utf-8", "replace").strip()
        if not text:
            return ""
        message = None
        try:
            message = _message_of(json.loads(text))
        except ValueError:
            pass
        if message is None:
            assert current.response is not None
            if "html" in current.response.headers.get("content-type", "").lower() or text.startswith("<"):
                return ""
            message = text
        return _one_line(message, _EXCERPT_CHARS)

    # ------------------------------------------------------------------ reading a 200
    def _read_success(
        self, current: _Attempt, deadline: _Deadline, body: bytes, t0: float, attempt: int, reading: _Reading
    ) -> Generator[str, None, Generation]:
        resp = current.response
        assert resp is not None
        first_at: float | None = None
        usage: dict[str, Any] | None = None
        finish: str | None = None
        saw_done = False
        where = self._where()

        def fail(message: str, kind: str = "protocol") -> RemoteError:
            return self._err(message, kind, reading.text, status=200, attempts=attempt)

        def arriving() -> Iterator[Any]:
            """What the worker queues, up to the end of the response; an interruption raises."""
            while True:
                kind, value = current.next(deadline)
                if kind == "end":
                    return
                if kind == "cancelled":
                    raise self._cancelled("streaming", reading.text, attempt)
                if kind == "timeout" or isinstance(value, httpx.TimeoutException):
                    raise self._timeout_error("streaming", reading.text, attempt)
                if kind == "error" and isinstance(value, httpx.RemoteProtocolError):
                    raise fail(f"{where} cut the response off mid-stream ({_one_line(str(value), 120)})")
                if kind == "error":
                    raise fail(f"connection to {where} broke mid-stream ({type(_root(value)).__name__})")
                yield value

        def take(choice: dict[str, Any], content: Any) -> str:
            """One choice's text and token log-probabilities into ``reading``: what may be shown now."""
            if content is not None and not isinstance(content, str):
                raise fail(f"{where} sent a completion whose content is not text")
            tokens = _top_tokens(choice.get("logprobs")) if self.tier.logprobs else []
            if tokens is None:
                raise fail(f"{where} sent token log-probabilities in a form this client does not read")
            return reading.feed(content or "", tokens)

        if _is_event_stream(resp):
            for sse in arriving():
                if sse.data == "[DONE]":
                    saw_done = True
                    break
                if not sse.data:
                    continue  # an event with no data (a keep-alive)
                try:
                    parsed = json.loads(sse.data)
                except ValueError:
                    raise fail(f"{where} sent a stream event that is not JSON: {_one_line(sse.data, 60)!r}") from None
                if not isinstance(parsed, dict):
                    raise fail(f"{where} sent a stream event that is not a JSON object")
                err = _error_in(parsed)
                if err is not None or sse.event == "error":
                    raise fail(f"{where} reported an error mid-stream: {err or _one_line(sse.data, _EXCERPT_CHARS)}")
                if isinstance(parsed.get("usage"), dict):
                    usage = parsed["usage"]
                choice = _first_choice(parsed)
                if choice is None:
                    continue
                delta = choice.get("delta")
                content = delta.get("content") if isinstance(delta, dict) else choice.get("text")
                if content is not None and not isinstance(content, str):
                    raise fail(f"{where} sent a stream delta whose content is not text")
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
                shown = take(choice, content)
                if (content or reading.text) and first_at is None:
                    first_at = time.perf_counter()
                if shown:
                    yield shown
                if reading.ended_here:
                    break
            if not saw_done and finish is None and not reading.ended_here:
                raise fail(f"the stream from {where} ended without [DONE] or a finish_reason")
        elif "json" in resp.headers.get("content-type", "").lower():
            # a server that ignored "stream": true and answered with one JSON completion
            try:
                parsed = json.loads(b"".join(arriving()).decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise fail(f"{where} sent a response that is not valid JSON") from None
            err = _error_in(parsed)
            if err is not None:
                raise fail(f"{where} reported an error: {err}")
            choice = _first_choice(parsed)
            if choice is None:
                raise fail(f"{where} sent a completion without choices")
            message = choice.get("message")
            content = message.get("content") if isinstance(message, dict) else choice.get("text")
            finish = choice.get("finish_reason") or "stop"
            usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else None
            shown = take(choice, content)
            if content:
                first_at = time.perf_counter()
            if shown:
                yield shown
        else:
            ctype = _one_line(resp.headers.get("content-type", "no Content-Type"), 60)
            raise fail(f"{where} did not send an event stream or JSON ({ctype})")
        shown = reading.rest()
        if shown:
            yield shown

        end = time.perf_counter()
        text = reading.text
        if self.tier.logprobs and reading.tokens == 0 and text.strip() and reading.finish is None:
            raise fail(
                f"{where} returned no token log-probabilities, but the tier has logprobs = true (the server must "
                "honour logprobs and top_logprobs; vLLM: --max-logprobs; remove logprobs if it cannot)",
                "config",
            )
        tokens_in = _usage_int(usage, "prompt_tokens")
        tokens_out = None if reading.ended_here else _usage_int(usage, "completion_tokens")
        if tokens_in is None:
            tokens_in = _prompt_bytes(body) // 4
        if tokens_out is None:
            tokens_out = reading.tokens if reading.tokens or self.tier.logprobs else estimate_tokens(text)
        first = first_at if first_at is not None else end
        return Generation(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tokens_evaluated=tokens_in,
            prompt_seconds=first - t0,
            gen_seconds=end - first,
            finish_reason=reading.finish or _finish(finish, self.tier.logprobs),
            token_logprobs=reading.logprobs,
            stopped_by=reading.stopped_by,
            first_logprobs=reading.first,
            token_entropies=reading.entropies if self.tier.logprobs else None,
            token_margins=reading.margins if self.tier.logprobs else None,
        )


class _Reading:
    """An answer as its response arrives: the text (cut at a stop string), and with the endpoint's log-probabilities
    each token's, its distribution's spread, and the watched strings at the first position — what
    ``LlamaBackend._generate`` computes, read from the top k (``toplogprobs``)."""

    def __init__(self, stop: Sequence[str], watch_first: Sequence[str], abstain_at: float | None) -> None:
        self.stops = [s for s in stop if s]
        self.holdback = max((len(s) for s in self.stops), default=1) - 1
        self.watch = tuple(watch_first)
        self.abstain_at = abstain_at
        self.text = ""
        self.emitted = 0
        self.tokens = 0  # token entries read (with their log-probabilities)
        self.logprobs: list[float] = []
        self.entropies: list[float] = []
        self.margins: list[float] = []
        self.first: dict[str, float] = {}
        self.stopped_by: str | None = None
        self.finish: str | None = None  # "stop" or "abstain" when the answer ended here

    @property
    def ended_here(self) -> bool:
        return self.finish is not None

    def feed(self, content: str, tokens: Sequence[TopToken]) -> str:
        """One piece of the response (its text and its tokens); returns the text that may be shown now. Token by
        token when the tokens spell the text, as the local tier reads it: the token that completes a stop
        string is counted, and nothing after it."""
        if self.ended_here:
            return ""
        pieces = [(t.text, [t]) for t in tokens] if "".join(t.text for t in tokens) == content else [(content, tokens)]
        for text, toks in pieces:
            for t in toks:
                if self.tokens == 0 and self.watch and self._abstains(t):
                    return self.rest()
                self.tokens += 1
                self.logprobs.append(t.logprob)
                entropy, margin = toplogprobs.spread(_with_chosen(t))
                self.entropies.append(entropy)
                self.margins.append(margin)
            self.text += text
            hits = [(self.text.find(s), s) for s in self.stops if s in self.text]
            if hits:
                cut, self.stopped_by = min(hits)
                self.text = self.text[:cut]
                self.finish = "stop"
                return self.rest()
        safe = len(self.text) - self.holdback if self.stops else len(self.text)
        if safe <= self.emitted:
            return ""
        shown, self.emitted = self.text[self.emitted : safe], safe
        return shown

    def _abstains(self, t: TopToken) -> bool:
        """The first position: the watched strings' log-probabilities, and whether ``abstain_at`` ends the answer."""
        found = toplogprobs.first_tokens(_with_chosen(t), self.watch)
        self.first = {w: lp for w, (_, lp) in found.items()}
        p_abstain = toplogprobs.first_mass(found)
        if self.abstain_at is None or p_abstain < self.abstain_at:
            return False
        self.text = self.watch[0]
        self.logprobs.append(math.log(p_abstain))
        self.finish = "abstain"
        return True

    def rest(self) -> str:
        """The text not shown yet (the held-back tail, once the answer is over)."""
        shown, self.emitted = self.text[self.emitted :], len(self.text)
        return shown


def _with_chosen(t: TopToken) -> tuple[tuple[str, float], ...]:
    """The top k at a token's position, with the generated token itself (a server may list it apart)."""
    return t.top if any(tok == t.text for tok, _ in t.top) else (*t.top, (t.text, t.logprob))


def _finish(reason: str | None, logprobs: bool) -> str:
    """The Generation's finish_reason for a server's: an endpoint tier is sent no stop strings, so a server's
    "stop" there is the model's end of text ("eos", as the local tier says)."""
    if logprobs and reason == "stop":
        return "eos"
    return reason or "stop"


def _split_prompt(prompt: str) -> tuple[list[dict[str, str]] | None, str]:
    """``render(messages)`` output and the text appended to it (the start of the assistant's reply); (None, "") for
    plain text."""
    try:
        parsed, end = json.JSONDecoder().raw_decode(prompt)
    except ValueError:
        return None, ""
    if isinstance(parsed, list) and all(isinstance(m, dict) and "role" in m for m in parsed):
        return parsed, prompt[end:]
    return None, ""


def _top_tokens(logprobs: Any) -> list[TopToken] | None:
    """The tokens of a choice's ``logprobs``: the chat form (``{"content": [{"token", "logprob", "top_logprobs":
    [{"token", "logprob"}]}]}``) or the completions form (``{"tokens", "token_logprobs", "top_logprobs": [{token:
    logprob}]}``). [] when there are none; None when it is neither form."""
    if logprobs is None:
        return []
    if not isinstance(logprobs, dict):
        return None
    try:
        if "content" in logprobs:
            return [
                TopToken(
                    toplogprobs.token_text(str(e["token"])),
                    float(e["logprob"]),
                    tuple(
                        (toplogprobs.token_text(str(a["token"])), float(a["logprob"]))
                        for a in e.get("top_logprobs") or ()
                    ),
                )
                for e in logprobs["content"] or ()
            ]
        if "tokens" in logprobs:
            tops = logprobs.get("top_logprobs") or [None] * len(logprobs["tokens"])
            return [
                TopToken(
                    toplogprobs.token_text(str(tok)),
                    float(lp),
                    tuple((toplogprobs.token_text(str(k)), float(v)) for k, v in (top or {}).items()),
                )
                for tok, lp, top in zip(logprobs["tokens"], logprobs["token_logprobs"], tops, strict=True)
                if lp is not None
            ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return None


def scored(generation: Generation, continuations: Sequence[str], seconds: float) -> Scored:
    """``score()``'s answer from a one-token generation that watched the continuations."""
    logprobs = {c: generation.first_logprobs.get(c, -math.inf) for c in continuations}
    return Scored(logprobs, generation.tokens_in, generation.tokens_in, seconds)


# ---------------------------------------------------------------------- parsing helpers


def _first_choice(obj: dict[str, Any]) -> dict[str, Any] | None:
    choices = obj.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _message_of(obj: Any) -> str | None:
    """The human message in an error body such as {"error": {"message": ...}} or {"detail": ...}."""
    if isinstance(obj, dict):
        for key in ("error", "message", "detail", "msg"):
            value = obj.get(key)
            if isinstance(value, str) and value.strip():
                return value
            if isinstance(value, (dict, list)):
                found = _message_of(value)
                if found:
                    return found
    if isinstance(obj, list):
        for item in obj:
            found = _message_of(item)
            if found:
                return found
    return None


def _error_in(obj: Any) -> str | None:
    if isinstance(obj, dict) and obj.get("error"):
        return _one_line(_message_of(obj) or json.dumps(obj["error"])[:_EXCERPT_CHARS], _EXCERPT_CHARS)
    return None


def _usage_int(usage: dict[str, Any] | None, key: str) -> int | None:
    if not usage:
        return None
    value = usage.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _prompt_bytes(body: bytes) -> int:
    """UTF-8 bytes of the messages' text in a request body (the whole body if it cannot be read)."""
    try:
        messages = json.loads(body)["messages"]
        return sum(len(str(m.get("content") or "").encode("utf-8")) for m in messages)
    except (ValueError, KeyError, TypeError, AttributeError):
        return len(body)
