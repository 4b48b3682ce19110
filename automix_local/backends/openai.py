"""A remote tier: any OpenAI-compatible ``/v1/chat/completions`` server, streamed over SSE.

Standard library only (``http.client``). The rules:

* One deadline: ``tier.timeout`` seconds bound the whole call — DNS, connect, retries, waits and
  streaming. Every connect and read gets the remaining time as its socket timeout, and a watchdog
  shuts the socket at the deadline, so a server that trickles bytes cannot hold the call open.
* Retries (at most ``tier.retries`` extra attempts, only before any text was yielded): connection
  refused, HTTP 429 (``Retry-After`` honoured, capped at 30 s and at the deadline) and 5xx (backoff
  0.5 s, 1 s, 2 s …). Never on 400/401/403/404, DNS failures or once text has been streamed.
* Every failure is a :class:`RemoteError` whose ``str()`` is one line for the user and whose
  ``kind`` says what went wrong. The API key is sent in the ``Authorization`` header only; it never
  appears in a message, an exception or a log.

Proxies: ``https_proxy``/``http_proxy`` (and the upper-case forms) are honoured with an HTTP CONNECT
tunnel (``http://[user:pass@]host:port`` proxies; TLS stays end to end), and ``no_proxy`` bypasses them.

Limitations: a DNS lookup that outlives the deadline is abandoned in a daemon thread; one connection
per call (no keep-alive reuse).
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import http.client
import ipaddress
import json
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import TierConfig
from .base import BackendError, Generation, Scored

KINDS = ("refused", "dns", "timeout", "auth", "rate_limit", "server", "http", "protocol", "config", "cancelled")
USER_AGENT = "automix-local"
MAX_RETRY_AFTER = 30.0  # seconds: the longest Retry-After the client will honour
BACKOFF_BASE = 0.5  # seconds: first backoff after a refused connection or a 5xx, doubled each time
DEFAULT_REMOTE_N_CTX = 128_000
_ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error response read for its message
_EXCERPT_CHARS = 160
_READ_SIZE = 16 * 1024


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
    """The chat/completions URL, split for ``http.client``."""

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
    host: str
    port: int
    auth: str | None  # "user:password", sent as Proxy-Authorization: Basic

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


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
    auth = None
    if parts.username is not None:
        auth = f"{parts.username}:{parts.password or ''}"
    return Proxy(parts.hostname, parts.port or 8080, auth)


def parse_endpoint(base_url: str, tier_name: str = "?") -> Endpoint:
    """``base_url`` ("http://host:8000/v1", trailing slash or full .../chat/completions) -> Endpoint."""
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
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
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
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


class _Attempt:
    """One HTTP attempt: its connection, socket and response, and a watchdog that shuts the socket at the deadline."""

    def __init__(self, conn: http.client.HTTPConnection, deadline: _Deadline) -> None:
        self.conn = conn
        self.deadline = deadline
        self.sock: socket.socket | None = None  # captured after connect: http.client drops conn.sock on "close"
        self.resp: http.client.HTTPResponse | None = None
        self.fired = False  # the watchdog shut the socket
        self.cancelled = False  # OpenAIBackend.close() shut it
        self._timer = threading.Timer(max(0.0, deadline.remaining()) + 0.05, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def out_of_time(self) -> bool:
        return self.fired or self.deadline.expired

    def set_timeout(self, cap: float | None = None) -> None:
        """Give the socket the time left (at least a millisecond), so no single read outlives the deadline."""
        left = max(0.001, self.deadline.remaining())
        if self.sock is not None:
            self.sock.settimeout(left if cap is None else min(left, cap))

    def _fire(self) -> None:
        self.fired = True
        self._shutdown()

    def cancel(self) -> None:
        """Stop the attempt from another thread: a blocked read wakes up and the call fails."""
        self.cancelled = True
        self._shutdown()

    def _shutdown(self) -> None:
        sock = self.sock
        if sock is not None:
            try:
                # socket.socket.shutdown, not SSLSocket.shutdown: wakes a blocked read without unwrapping TLS
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._timer.cancel()
        if self.resp is not None:
            self.resp.close()
        self.conn.close()
        if self.sock is not None:
            self.sock.close()


class _Timeout(Exception):
    pass


def _resolve(host: str, port: int, deadline: _Deadline) -> list[tuple[Any, ...]]:
    """getaddrinfo bounded by the deadline (getaddrinfo itself ignores socket timeouts)."""
    try:
        ipaddress.ip_address(host)
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except ValueError:
        pass
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=lookup, name=f"automix-dns-{host}", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline.remaining()))
    if worker.is_alive():
        raise _Timeout(f"DNS lookup of {host}")
    if "error" in box:
        raise box["error"]
    return box["infos"]


def _make_connector(deadline: _Deadline) -> Callable[..., socket.socket]:
    """A replacement for socket.create_connection that honours the deadline (DNS included)."""

    def connect(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        infos = _resolve(host, port, deadline)
        error: OSError | None = None
        for family, socktype, proto, _canon, sockaddr in infos:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise _Timeout(f"connecting to {host}:{port}")
            sock = socket.socket(family, socktype, proto)
            try:
                sock.settimeout(remaining)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                if isinstance(exc, TimeoutError):
                    raise
                error = exc
        raise error or OSError(f"getaddrinfo returned no addresses for {host}")

    return connect


class OpenAIBackend:
    """A remote tier behind an OpenAI-compatible chat-completions endpoint."""

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
        self.endpoint = parse_endpoint(tier.base_url, tier.name)
        self.model = tier.model
        self._attempt: _Attempt | None = None  # the attempt in progress, for close()

    # ------------------------------------------------------------------ Backend protocol bits
    @property
    def uses_chat_template(self) -> bool:
        return True

    def render(self, messages: Sequence[dict[str, str]]) -> str:
        """The messages as JSON: what ``stream()`` accepts back as its prompt."""
        return json.dumps([dict(m) for m in messages], ensure_ascii=False)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def score(self, prompt: str, continuations: Sequence[str]) -> Scored:
        raise RemoteError(
            f"remote tier '{self.name}': remote tiers cannot score continuations (use them as the large tier only)",
            "config",
        )

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
        ``watch_first`` / ``abstain_at`` / ``hidden`` are ignored: a remote API gives no first-token
        probabilities or hidden states."""
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

    def _interrupted(self, current: _Attempt, what: str, partial: str, attempt: int) -> RemoteError:
        """The error for an attempt cut short by the deadline or by close()."""
        if current.cancelled and not current.out_of_time:
            return self._err(
                f"the call to {self._where()} was cancelled ({what})", "cancelled", partial, attempts=attempt
            )
        return self._timeout_error(what, partial, attempt)

    def _connection(self, deadline: _Deadline) -> http.client.HTTPConnection:
        ep = self.endpoint
        timeout = max(0.001, deadline.remaining())
        conn: http.client.HTTPConnection
        proxy = find_proxy(ep, self._env, self.name)
        host, port = (proxy.host, proxy.port) if proxy else (ep.host, ep.port)
        if ep.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        if proxy is not None:  # CONNECT tunnel: the proxy sees the host, never the payload of an https call
            tunnel_headers = {}
            if proxy.auth is not None:
                token = base64.b64encode(proxy.auth.encode()).decode()
                tunnel_headers["Proxy-Authorization"] = f"Basic {token}"
            conn.set_tunnel(ep.host.strip("[]"), ep.port, headers=tunnel_headers)
        conn._create_connection = _make_connector(deadline)  # type: ignore[attr-defined]
        return conn

    # ------------------------------------------------------------------ the call
    def stream_body(
        self, body: bytes, on_attempt: Callable[[int], None] | None = None
    ) -> Generator[str, None, Generation]:
        """POST exactly ``body``; yield text deltas as they arrive; return the Generation."""
        headers = self._headers()  # before any socket: a missing key fails here
        deadline = _Deadline(float(self.tier.timeout))
        t0 = time.perf_counter()
        attempt = 0
        while True:
            attempt += 1
            if deadline.expired:
                raise self._timeout_error("gave up before sending", attempts=attempt - 1)
            if on_attempt is not None:
                on_attempt(attempt)
            current = self._attempt = _Attempt(self._connection(deadline), deadline)
            try:
                wait = self._send(current, body, headers, attempt)
                if wait is None:
                    return (yield from self._read_success(current, body, t0, attempt))
            finally:
                current.close()
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

    def _send(
        self,
        current: _Attempt,
        body: bytes,
        headers: dict[str, str],
        attempt: int,
    ) -> float | None:
        """One attempt up to the response headers: None when a 200 is ready to read, else seconds to wait to retry."""
        where = self._where()
        deadline = current.deadline
        conn = current.conn
        try:
            conn.connect()
            current.sock = conn.sock
            if current.fired:  # the deadline passed while connecting
                raise _Timeout("connecting")
            if current.cancelled:
                raise ConnectionAbortedError("cancelled")
            current.set_timeout()
            conn.request("POST", self.endpoint.path, body=body, headers=headers)
            current.set_timeout()
            current.resp = resp = conn.getresponse()
        except _Timeout as exc:
            raise self._timeout_error(str(exc), attempts=attempt) from None
        except socket.gaierror as exc:
            raise self._err(
                f"cannot resolve host {self.endpoint.host} ({_one_line(exc.strerror or str(exc))}; check base_url)",
                "dns",
                attempts=attempt,
            ) from None
        except TimeoutError:
            what = "connecting" if current.sock is None else "waiting for the response"
            raise self._timeout_error(what, attempts=attempt) from None
        except ConnectionRefusedError:
            wait = self._backoff(attempt, deadline)
            if wait is not None:
                return wait
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise self._err(
                f"connection refused by {where} (is the server running?){tries}", "refused", attempts=attempt
            ) from None
        except ssl.SSLError as exc:
            if current.out_of_time or current.cancelled:
                raise self._interrupted(current, "TLS handshake", "", attempt) from None
            raise self._err(
                f"TLS error talking to {where}: {_one_line(str(exc), 200)}", "http", attempts=attempt
            ) from None
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            if current.out_of_time or current.cancelled:
                raise self._interrupted(current, "waiting for the response", "", attempt) from None
            wait = self._backoff(attempt, deadline)
            if wait is not None:
                return wait
            raise self._err(
                f"{where} closed the connection without answering ({type(exc).__name__})", "server", attempts=attempt
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            if current.out_of_time or current.cancelled:
                raise self._interrupted(current, "waiting for the response", "", attempt) from None
            detail = _one_line(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__, 200)
            kind = "refused" if isinstance(exc, OSError) else "protocol"
            raise self._err(f"cannot talk to {where}: {detail}", kind, attempts=attempt) from None

        status = resp.status
        if status == 200:
            return None
        excerpt = self._error_excerpt(current)
        reason = _one_line(resp.reason or http.client.responses.get(status, ""))
        label = f"HTTP {status}{f' {reason}' if reason else ''} from {where}"
        tail = f": {excerpt}" if excerpt else ""
        if status == 429:
            asked = retry_after_seconds(resp.getheader("Retry-After"))
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

    def _error_excerpt(self, current: _Attempt) -> str:
        """A short one-line excerpt of an error response's message ("" if none could be read)."""
        resp = current.resp
        assert resp is not None
        data = b""
        try:
            while len(data) < _ERROR_BODY_LIMIT and not current.out_of_time and not resp.isclosed():
                current.set_timeout(cap=2.0)
                chunk = resp.read1(_READ_SIZE)
                if not chunk:
                    break
                data += chunk
        except (OSError, http.client.HTTPException, ValueError):
            pass
        text = data.decode("utf-8", "replace").strip()
        if not text:
            return ""
        message = None
        try:
            parsed = json.loads(text)
            message = _message_of(parsed)
        except ValueError:
            pass
        if message is None:
            ctype = (resp.getheader("Content-Type") or "").lower()
            if "html" in ctype or text.lstrip().startswith("<"):
                return ""
            message = text
        return _one_line(message, _EXCERPT_CHARS)

    # ------------------------------------------------------------------ reading a 200
    def _read_success(
        self,
        current: _Attempt,
        body: bytes,
        t0: float,
        attempt: int,
    ) -> Generator[str, None, Generation]:
        resp = current.resp
        assert resp is not None
        ctype = (resp.getheader("Content-Type") or "").lower()
        text_parts: list[str] = []
        first_at: float | None = None
        usage: dict[str, Any] | None = None
        finish: str | None = None
        saw_done = False
        where = self._where()

        def partial() -> str:
            return "".join(text_parts)

        def fail(message: str, kind: str = "protocol") -> RemoteError:
            return self._err(message, kind, partial(), status=200, attempts=attempt)

        def chunks() -> Iterator[bytes]:
            while True:
                if current.out_of_time or current.cancelled:
                    raise self._interrupted(current, "streaming", partial(), attempt)
                current.set_timeout()
                try:
                    data = resp.read1(_READ_SIZE)
                except TimeoutError:
                    raise self._timeout_error("streaming", partial(), attempt) from None
                except (http.client.IncompleteRead, ValueError) as exc:
                    if current.out_of_time or current.cancelled:
                        raise self._interrupted(current, "streaming", partial(), attempt) from None
                    raise fail(f"{where} cut the response off mid-stream ({type(exc).__name__})") from None
                except (OSError, http.client.HTTPException) as exc:
                    if current.out_of_time or current.cancelled:
                        raise self._interrupted(current, "streaming", partial(), attempt) from None
                    raise fail(f"connection to {where} broke mid-stream ({type(exc).__name__})") from None
                if not data:
                    if current.out_of_time or current.cancelled:
                        raise self._interrupted(current, "streaming", partial(), attempt)
                    if resp.length:  # Content-Length promised more than arrived
                        raise fail(f"{where} closed the connection before the response was complete")
                    return
                yield data

        if "json" in ctype and "event-stream" not in ctype:
            # a server that ignored "stream": true and answered with one JSON completion
            raw = b"".join(chunks())
            try:
                parsed = json.loads(raw.decode("utf-8"))
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
            if content is not None and not isinstance(content, str):
                raise fail(f"{where} sent a completion whose content is not text")
            finish = choice.get("finish_reason") or "stop"
            usage = parsed.get("usage") if isinstance(parsed.get("usage"), dict) else None
            if content:
                first_at = time.perf_counter()
                text_parts.append(content)
                yield content
            saw_done = True
        else:
            for event, data in _sse_events(chunks(), fail, where):
                if data == "[DONE]":
                    saw_done = True
                    break
                try:
                    parsed = json.loads(data)
                except ValueError:
                    raise fail(f"{where} sent a stream event that is not JSON: {_one_line(data, 60)!r}") from None
                if not isinstance(parsed, dict):
                    raise fail(f"{where} sent a stream event that is not a JSON object")
                err = _error_in(parsed)
                if err is not None or event == "error":
                    raise fail(f"{where} reported an error mid-stream: {err or _one_line(data, _EXCERPT_CHARS)}")
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
                if content:
                    if first_at is None:
                        first_at = time.perf_counter()
                    text_parts.append(content)
                    yield content
            if not saw_done and finish is None:
                raise fail(f"the stream from {where} ended without [DONE] or a finish_reason")

        end = time.perf_counter()
        text = partial()
        tokens_in = _usage_int(usage, "prompt_tokens")
        tokens_out = _usage_int(usage, "completion_tokens")
        if tokens_in is None:
            tokens_in = _prompt_bytes(body) // 4
        if tokens_out is None:
            tokens_out = estimate_tokens(text)
        first = first_at if first_at is not None else end
        return Generation(
            text=text,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            tokens_evaluated=tokens_in,
            prompt_seconds=first - t0,
            gen_seconds=end - first,
            finish_reason=finish or "stop",
        )


# ---------------------------------------------------------------------- parsing helpers


def _sse_events(chunks: Iterator[bytes], fail: Callable[[str], RemoteError], where: str) -> Iterator[tuple[str, str]]:
    """(event name, data) for each server-sent event; data lines of one event are joined with newlines."""
    buffer = b""
    data_lines: list[str] = []
    event = "message"

    def decode(raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"{where} sent a stream that is not UTF-8 text") from None

    for chunk in chunks:
        buffer += chunk
        pos = 0
        while True:
            cut = _line_end(buffer, pos)
            if cut is None:
                break
            line = decode(buffer[pos : cut[0]])
            pos = cut[1]
            if not line:
                if data_lines:
                    yield event, "\n".join(data_lines)
                data_lines, event = [], "message"
                continue
            if line.startswith(":"):
                continue  # a comment / keep-alive ping
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data_lines.append(value)
            elif field == "event":
                event = value or "message"
            elif field not in ("id", "retry"):
                raise fail(f"{where} did not send an event stream (unexpected line {_one_line(line, 60)!r})")
        buffer = buffer[pos:]
    line = decode(buffer).rstrip("\r\n")
    if line.startswith("data:"):  # a last event without its blank line
        value = line[5:]
        data_lines.append(value[1:] if value.startswith(" ") else value)
    if data_lines:
        yield event, "\n".join(data_lines)


def _line_end(buffer: bytes, pos: int) -> tuple[int, int] | None:
    """(end of the line starting at pos, start of the next) or None if incomplete; a trailing CR waits for more."""
    nl = buffer.find(b"\n", pos)
    cr = buffer.find(b"\r", pos, nl if nl != -1 else len(buffer))
    if cr == -1:
        return None if nl == -1 else (nl, nl + 1)
    if cr + 1 == len(buffer):
        return None
    return cr, cr + 2 if buffer[cr + 1] == 0x0A else cr + 1


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
