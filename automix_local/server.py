"""`automix-local serve`: the cascade as an OpenAI-compatible HTTP endpoint (FastAPI + uvicorn + SSE).

The server only consumes the cascade's event stream, as the app and the CLI do. Requests map onto it so:

* ``model``: ``automix`` is the cascade; a local tier's name asks that tier alone (its model is the one the
  cascade holds: nothing loads twice). A remote tier cannot be asked by name: whether a question may leave
  is the cascade's decision under the privacy policy.
* ``messages``: system (and developer) messages are the context; earlier user/assistant pairs are the
  conversation's turns; the last user message is the question. With ``documents`` (a list of document
  names from the library, ``[]`` for all of it) or ``doc`` (one name) in the body, the context is
  retrieved from the document library instead.
* The response is a chat completion whose ``model`` names the tier that answered; ``usage`` sums the
  tiers; the whole trace goes in an ``automix`` field and in ``x-automix-*`` headers.

Streaming (``"stream": true``), defined for a cascade: a tier's answer is streamed once it is *kept* — a
kept small answer at once, as one chunk; the last tier, which nothing checks, token by token as it comes.
With ``"stream_provisional": true`` every tier streams at once; on escalation a separator chunk follows
(``automix.event = "escalated"``, and a visible line in the content), then the escalated answer. The
stream ends with a chunk carrying ``finish_reason`` and the trace, then ``data: [DONE]``. Never a 200 with
an empty answer: an answer that is empty says so.

Concurrency: the models answer one question at a time. Requests wait in one FIFO queue ([server]
queue_size); beyond it, or after queue_timeout seconds, ``503`` with ``Retry-After``. A client that
disconnects cancels its own question (the model is freed at the next token); no request can cancel
another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from . import prompts
from .ask import Answer, AskEvent, AskService, Done, Question, Source
from .backends.base import Backend
from .cascade import (
    Answered,
    Cascade,
    Decided,
    TierStarted,
    Token,
    Trace,
)
from .config import Config, TierConfig
from .errors import AutomixError, UsageError
from .explain import shown_answer
from .policy import override
from .schema import Invalid, Key, read_dataclass
from .streams import Returning

CASCADE_MODEL = "automix"
ASK_OVER_HTTP = (
    'remote = "ask" in models.toml: nobody can be asked over HTTP, so it is treated as "never" '
    '(nothing was sent); set remote = "allow" to let the server\'s questions leave'
)


class ServeError(UsageError):
    """The server cannot start as asked. str() is the one line shown to the user."""


class ApiError(AutomixError):
    """A request refused with an OpenAI-style error body (``http_status`` set per request)."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.http_status, self.api_code = status, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        if self.status == 401:
            kind = "authentication_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- the request


@dataclass
class ChatRequest:
    model: str
    question: str
    context: str
    history: list[tuple[str, str]]
    stream: bool = False
    provisional: bool = False
    include_usage: bool = False
    scope: list[str] | None = None  # document names ([] for the whole library); None: the messages' context


ROLES = ("system", "developer", "user", "assistant", "tool")


@dataclass(frozen=True)
class TextPart:
    type: Annotated[str, Key("the part's kind: only text is supported", choices=("text",))]
    text: Annotated[str, Key("the text")] = ""


@dataclass(frozen=True)
class Message:
    role: Annotated[str, Key("who says it", choices=ROLES)]
    content: Annotated[str | tuple[TextPart, ...] | None, Key("a string or a list of text parts")] = None

    @property
    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "\n".join(part.text for part in self.content)


@dataclass(frozen=True)
class StreamOptions:
    include_usage: Annotated[bool, Key("a last chunk with the usage alone")] = False


@dataclass(frozen=True)
class ChatBody:
    """The request body of ``POST /v1/chat/completions``, read by the same reader as models.toml
    (``schema.read_dataclass``): each key declared once; OpenAI options the server does not use are ignored."""

    messages: Annotated[
        tuple[Message, ...],
        Key("the conversation, the question last", required="messages is missing: send at least one user message"),
    ]
    model: Annotated[str, Key("the model asked: automix (the cascade) or a local tier's name")] = CASCADE_MODEL
    stream: Annotated[bool, Key("stream server-sent events")] = False
    stream_provisional: Annotated[bool, Key("stream every tier's answer at once (escalations follow)")] = False
    stream_options: Annotated[StreamOptions | None, Key("include_usage")] = None
    documents: Annotated[tuple[str, ...] | None, Key("library documents to answer from ([] for all of it)")] = None
    doc: Annotated[str | None, Key("one library document to answer from")] = None


def parse_request(body: bytes, models: list[str]) -> ChatRequest:
    """The request body as a ``ChatRequest``; an ``ApiError`` (400/404) names what is wrong, in one line."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    try:
        chat = read_dataclass(ChatBody, data, json=True, ignore_unknown=True)
    except Invalid as exc:
        raise ApiError(400, str(exc), param=exc.key.split(".")[0] or None) from None
    if chat.model not in models:
        raise ApiError(
            404,
            f"model {chat.model!r} does not exist here: ask {', '.join(repr(m) for m in models)}",
            code="model_not_found",
            param="model",
        )
    if not chat.messages:
        raise ApiError(400, "messages is empty: send at least one user message", param="messages")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    asked: str | None = None
    for m in chat.messages:
        if m.role in ("system", "developer"):
            system.append(m.text)
        elif m.role == "user":
            if asked is not None:  # two user messages in a row: the earlier one had no answer
                turns.append((asked, ""))
            asked = m.text
        elif m.role == "assistant" and asked is not None:
            turns.append((asked, m.text))
            asked = None
    if asked is None or not asked.strip():
        raise ApiError(400, "the last message must be the user's question, and not empty", param="messages")
    scope = list(chat.documents) if chat.documents is not None else ([chat.doc] if chat.doc is not None else None)
    return ChatRequest(
        model=chat.model,
        question=asked.strip(),
        context="\n\n".join(t for t in system if t.strip()),
        history=[(q, a) for q, a in turns if q.strip() and a.strip()],
        stream=chat.stream,
        provisional=chat.stream_provisional,
        include_usage=chat.stream_options is not None and chat.stream_options.include_usage,
        scope=scope,
    )


# --------------------------------------------------------------------------- the queue


class Busy(Exception):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Gate:
    """One question at a time, the rest waiting in FIFO order (asyncio.Lock wakes its waiters in order);
    at most ``size`` waiting, each at most ``timeout`` seconds. ``release`` is called by the worker thread
    when its question has really stopped (after a cancel, too)."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size, self.timeout = size, timeout
        self._lock = asyncio.Lock()
        self.waiting = 0
        self.service = 5.0  # seconds one question takes, a running mean (for Retry-After)
        self._loop: asyncio.AbstractEventLoop | None = None

    def retry_after(self) -> int:
        return max(1, math.ceil(self.service * (self.waiting + 1)))

    async def acquire(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._lock.locked() and self.waiting >= self.size:
            raise Busy(f"the server is busy: {self.waiting} questions are waiting (queue_size)", self.retry_after())
        self.waiting += 1
        try:
            await asyncio.wait_for(self._lock.acquire(), self.timeout)
        except TimeoutError:
            raise Busy(
                f"the server is busy: no model was free within {self.timeout:g} s (queue_timeout)", self.retry_after()
            ) from None
        finally:
            self.waiting -= 1

    def release(self, seconds: float | None = None) -> None:
        """Thread-safe: the worker calls it from its own thread."""
        if seconds is not None:
            self.service = 0.7 * self.service + 0.3 * seconds
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._lock.release)


# --------------------------------------------------------------------------- running a question


_DONE = object()


class Job:
    """One question run by the cascade in a worker thread; its events arrive on an asyncio queue. ``cancel``
    stops it at the next event (the generator is closed, which ends the model's decode and frees it)."""

    def __init__(self, run: Callable[[], Generator[AskEvent, None, Answer]], gate: Gate) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._cancel = threading.Event()
        self._run, self._gate = run, gate
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        threading.Thread(target=self._work, name="automix-serve-question", daemon=True).start()

    def cancel(self) -> None:
        self._cancel.set()

    def _put(self, item: Any) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def _work(self) -> None:
        t0 = time.perf_counter()
        events: Returning[AskEvent, Answer] | None = None
        try:
            events = Returning(self._run())
            for event in events:
                if self._cancel.is_set():
                    break
                self._put(event)
            else:
                self.answer = events.value
        except BaseException as exc:  # handed to the request; the server goes on
            self.error = exc
        finally:
            if events is not None:
                events.close()  # a cancelled question: GeneratorExit ends the decode loop, the model is free
            self.finished.set()
            self._gate.release(time.perf_counter() - t0 if self.answer is not None else None)
            self._put(_DONE)

    async def events(self) -> AsyncIterator[AskEvent]:
        while True:
            item = await self.queue.get()
            if item is _DONE:
                return
            yield item


class LiveText:
    """What a streamed answer may show while it is being written: its clean form (prompts.clean_answer) so
    far, holding back what cleaning could still change — the last characters (a closing period or quote)
    and the whole text while it could become an abstention, which is shown as the document not saying."""

    HOLD = 2

    def __init__(self) -> None:
        self.raw = ""
        self.sent = ""

    def feed(self, delta: str) -> str:
        self.raw += delta
        clean = prompts.clean_answer(self.raw)
        low = clean.lower().lstrip("\"' ")
        if prompts.ABSTAIN.startswith(low) or not clean or clean[0] in "\"'":
            return ""
        ready = clean[: max(0, len(clean) - self.HOLD)]
        if not ready.startswith(self.sent) or len(ready) <= len(self.sent):
            return ""
        out, self.sent = ready[len(self.sent) :], ready
        return out

    def finish(self, answer: str) -> str:
        """The rest of ``answer`` (as shown) after what was sent; nothing if what was sent is not its start."""
        rest = answer[len(self.sent) :] if answer.startswith(self.sent) else ""
        self.sent += rest
        return rest


# --------------------------------------------------------------------------- responses


def usage(trace: Trace) -> dict[str, int]:
    p = sum(s.tokens_in for s in trace.steps)
    c = sum(s.tokens_out for s in trace.steps)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def trace_headers(trace: Trace | None, tier: str, decision: str) -> dict[str, str]:
    h = {"x-automix-tier": tier, "x-automix-decision": decision}
    if trace is not None:
        if trace.confidence is not None:
            h["x-automix-confidence"] = f"{trace.confidence:.4f}"
        egress = [str(s.egress_id) for s in trace.steps if s.egress_id is not None]
        h["x-automix-egress"] = ",".join(egress) or "none"
    return h


@dataclass
class Server:
    """The state behind the HTTP routes: one cascade (the models), the queue, the key."""

    config: Config
    api_key: str | None = None
    cascade: Cascade | None = None
    notices: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        policy = self.config.policy
        has_remote = any(t.is_remote for t in self.config.tiers)
        if policy.remote == "ask":
            first = self.config.tiers[0]
            if first.is_endpoint:  # said here: the cascade would only see the "never" it is turned into
                raise ServeError(
                    f"tier '{first.name}' runs on an endpoint and answers first, and {ASK_OVER_HTTP.split(':')[0]}: "
                    'nobody can be asked over HTTP; a team running its own engines sets [policy] remote = "allow" '
                    'and send = "full" (docs/serve.md)'
                )
            policy = override(policy, {"remote": "never"})
            if has_remote:
                self.notices.append(ASK_OVER_HTTP)
        self.policy = policy
        if self.cascade is None:
            self.cascade = Cascade(self.config, policy=policy, approve=None)
        self.service = AskService(self.config, self.cascade, policy=policy, notices=self.notices)
        self.gate: Gate | None = None
        self._singles: dict[str, Cascade] = {}

    @property
    def models(self) -> list[str]:
        return [CASCADE_MODEL, *(t.name for t in self.config.tiers if not t.is_remote)]

    def cascade_for(self, model: str) -> Cascade:
        """The cascade, or one tier alone answering with the cascade's own model (no second copy loaded)."""
        main = self.cascade
        assert main is not None
        if model == CASCADE_MODEL:
            return main
        if model not in self._singles:
            index = [t.name for t in self.config.tiers].index(model)
            tier = self.config.tiers[index]
            alone = replace(
                self.config,
                tiers=(tier,),
                cascade=replace(self.config.cascade, calibration=None, router="threshold", agreement_samples=0),
            )

            def same_model(tier: TierConfig, index: int = index) -> Backend:
                return main.backend(index)

            self._singles[model] = Cascade(alone, policy=self.policy, backend_factory=same_model)
        return self._singles[model]

    def close(self) -> None:
        self.service.close()
        for c in self._singles.values():
            c._backends.clear()  # the cascade's own backends: closed once, below
            c.close()
        if self.cascade is not None:
            self.cascade.close()

    def question(self, req: ChatRequest) -> Callable[[], Generator[AskEvent, None, Answer]]:
        """What the worker thread runs: the ask service over the request's source, with the model asked."""
        if req.scope is not None:
            source = Source.library(req.scope)
        elif req.context.strip():
            source = Source.context(req.context)
        else:
            raise ApiError(
                400,
                "no context: put the text to answer from in a system message, or name documents from the "
                'library ("documents": [...], [] for all of it)',
                param="messages",
            )
        question = Question(req.question, source, history=tuple(req.history), save=self.config.server.save)
        cascade = self.cascade_for(req.model)
        return lambda: self.service.ask(question, cascade)


def _error_for(exc: BaseException) -> ApiError:
    """Any failure as the HTTP error it maps to (``AutomixError.http_status``, errors.py)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, AutomixError):
        from .documents.library import LibraryError

        param = "documents" if isinstance(exc, LibraryError) else None
        return ApiError(exc.http_status, str(exc), code=exc.api_code, param=param)
    return ApiError(500, f"internal error: {type(exc).__name__}: {exc}")


def create_app(server: Server) -> Any:
    """The ASGI app over ``server``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.gate = Gate(server.config.server.queue_size, server.config.server.queue_timeout)
        yield
        server.close()

    app = FastAPI(title="automix-local", lifespan=lifespan, docs_url=None, redoc_url=None)

    def refuse(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status, headers=err.headers)

    @app.middleware("http")
    async def authenticate(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if server.api_key and request.url.path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), server.api_key):
                return refuse(
                    ApiError(
                        401,
                        "missing or wrong API key: send Authorization: Bearer <key>",
                        code="invalid_api_key",
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                )
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        cascade = server.cascade
        assert cascade is not None and server.gate is not None
        return {
            "status": "ok",
            "tiers": [
                {"name": t.name, "remote": t.is_remote, "loaded": cascade.ready(i)}
                for i, t in enumerate(server.config.tiers)
            ],
            "queue": {"waiting": server.gate.waiting, "size": server.gate.size},
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": now, "owned_by": "automix-local"} for m in server.models],
        }

    async def read_body(request: Request) -> bytes:
        limit = server.config.server.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the request body is {declared} bytes, over the limit of {limit} (max_request_bytes)")
        chunks, size = [], 0

        async def collect() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"the request body is over the limit of {limit} bytes (max_request_bytes)")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(collect(), server.config.server.read_timeout)
        except TimeoutError:
            took = server.config.server.read_timeout
            raise ApiError(408, f"the request body took over {took:g} s to arrive (read_timeout)") from None
        return b"".join(chunks)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        try:
            req = parse_request(await read_body(request), server.models)
        except ApiError as err:
            return refuse(err)
        gate = server.gate
        assert gate is not None
        try:
            await gate.acquire()
        except Busy as busy:
            return refuse(ApiError(503, str(busy), code="server_busy", headers={"Retry-After": str(busy.retry_after)}))
        try:
            job = Job(server.question(req), gate)
        except ApiError as err:
            gate.release()
            return refuse(err)
        except BaseException:
            gate.release()
            raise
        cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if req.stream:
            return await _stream(request, server, req, job, cid, created, refuse, EventSourceResponse)
        return await _complete(request, job, req, cid, created, refuse)

    return app


async def _watch(request: Any, job: Job) -> None:
    """Cancel the job when the client goes away."""
    while not job.finished.is_set():
        if await request.is_disconnected():
            job.cancel()
            return
        await asyncio.sleep(0.25)


async def _complete(request: Any, job: Job, req: ChatRequest, cid: str, created: int, refuse: Any) -> Any:
    watcher = asyncio.create_task(_watch(request, job))
    try:
        async for _ in job.events():
            pass
    finally:
        watcher.cancel()
    if job.error is not None:
        return refuse(_error_for(job.error))
    answer = job.answer
    if answer is None:  # cancelled: the client is gone
        return JSONResponse({}, status_code=499)
    trace = answer.trace
    content, model = answer.text or "(the model gave an empty answer)", trace.tier or CASCADE_MODEL
    body = {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage(trace),
        "automix": answer.to_json(),
    }
    return JSONResponse(body, headers=trace_headers(trace, model, trace.decision))


async def _stream(
    request: Any, server: Server, req: ChatRequest, job: Job, cid: str, created: int, refuse: Any, sse: Any
) -> Any:
    """Wait until what is streamed first is known (a kept answer, the last tier starting, or — provisional —
    the first tier starting), then answer with an SSE stream carrying the rest."""
    cascade = server.cascade_for(req.model)
    n = len(cascade.tiers)
    # a router that judges the last tier (the trust router) may hold its answer back: it is sent once judged
    hold = cascade.router.judges_last and not req.provisional
    events = job.events()
    watcher = asyncio.create_task(_watch(request, job))
    first: list[AskEvent] = []
    tier, decision = "", "provisional"
    try:
        async for event in events:
            first.append(event)
            if isinstance(event, TierStarted) and (req.provisional or (event.index == n - 1 and not hold)):
                decision = "provisional" if req.provisional else "escalate" if event.index else "direct"
                tier = event.tier
                break
            if isinstance(event, Decided) and event.decision.action in ("keep", "abstain"):
                tier, decision = event.tier, event.decision.action
                break
        else:
            if job.error is not None:
                return refuse(_error_for(job.error))
    finally:
        watcher.cancel()

    async def replay() -> AsyncIterator[AskEvent]:
        for e in first:
            yield e
        async for e in events:
            yield e

    async def body() -> AsyncIterator[dict[str, str]]:
        out = _Chunks(cid, created, req, n, hold)
        try:
            yield out.chunk({"role": "assistant", "content": ""}, tier or CASCADE_MODEL)
            async for event in replay():
                for c in out.on(event):
                    yield c
            if job.error is not None:
                yield {"data": json.dumps(_error_for(job.error).body())}
                yield {"data": "[DONE]"}
            elif out.finished is not None:  # None: cancelled, the client is gone
                for c in out.end(out.finished):
                    yield c
        finally:
            job.cancel()  # a client gone mid-stream: its question stops at the next token

    return sse(body(), headers=trace_headers(None, tier or CASCADE_MODEL, decision), ping=15)


class _Chunks:
    """The SSE chunks of one streamed answer, made from the cascade's events: the streaming tier's text as it
    comes (the last tier's, or every tier's when provisional), a kept answer at once, a separator on
    escalation, a fallback answer when the remote tier failed, and the closing chunks with the trace."""

    def __init__(self, cid: str, created: int, req: ChatRequest, tiers: int, hold: bool = False) -> None:
        self.cid, self.created, self.req, self.tiers = cid, created, req, tiers
        self.hold = hold  # the last tier's answer waits for its judgement (it may be held back: "not sure")
        self.live: LiveText | None = None  # the text of the tier being streamed
        self.live_tier = ""
        self.answers: dict[str, str] = {}
        self.shown_any = False
        self.finished: Answer | None = None  # from the Done event: the worker may not have stored it yet

    def chunk(self, delta: dict[str, Any], model: str, finish: str | None = None, **extra: Any) -> dict[str, str]:
        body = {
            "id": self.cid,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        } | extra
        return {"data": json.dumps(body, ensure_ascii=False)}

    def _text(self, text: str, tier: str) -> Iterator[dict[str, str]]:
        if text:
            self.shown_any = True
            yield self.chunk({"content": text}, tier)

    def on(self, event: AskEvent) -> Iterator[dict[str, str]]:
        if isinstance(event, TierStarted):
            streaming = self.req.provisional or (event.index == self.tiers - 1 and not self.hold)
            self.live, self.live_tier = (LiveText(), event.tier) if streaming else (None, "")
            if streaming and self.shown_any:
                sep = f"\n\n— escalated to {event.tier} —\n\n"
                yield self.chunk({"content": sep}, event.tier, automix={"event": "escalated", "to_tier": event.tier})
        elif isinstance(event, Token) and self.live is not None and event.tier == self.live_tier:
            yield from self._text(self.live.feed(event.text), event.tier)
        elif isinstance(event, Answered):
            self.answers[event.tier] = event.answer
            if self.live is not None and event.tier == self.live_tier:
                yield from self._text(self.live.finish(shown_answer(event.answer)), event.tier)
        elif isinstance(event, Decided) and event.decision.action == "keep" and self.live is None:
            yield from self._text(shown_answer(self.answers.get(event.tier, "")), event.tier)
        elif isinstance(event, Done):
            self.finished = event.answer
        # RemoteFailed, Escalated: in the trace; a fallback answer is sent by end() if it was not streamed

    def end(self, answer: Answer) -> Iterator[dict[str, str]]:
        trace, final = answer.trace, answer.text
        model = trace.tier or CASCADE_MODEL
        live = self.live
        if answer.not_sure and self.shown_any:  # provisional text was streamed, then held back
            yield self.chunk({"content": f"\n\n— not sure —\n\n{final}"}, model)
        elif not self.shown_any or (live is not None and live.sent != final and trace.tier != self.live_tier):
            # nothing shown yet, or a fallback to an earlier local answer after a remote failure
            if self.shown_any:
                yield self.chunk({"content": "\n\n— answered locally —\n\n"}, model)
            yield self.chunk({"content": final or "(the model gave an empty answer)"}, model)
        yield self.chunk({}, model, "stop", automix=answer.to_json())
        if self.req.include_usage:
            usage_only = {"id": self.cid, "object": "chat.completion.chunk", "created": self.created}
            yield {"data": json.dumps(usage_only | {"model": model, "choices": [], "usage": usage(trace)})}
        yield {"data": "[DONE]"}


def serve(config: Config, host: str, port: int, api_key: str | None, log: Callable[[str], None] = print) -> None:
    """Run the server until Ctrl+C."""
    import uvicorn

    if not is_loopback(host) and not api_key:
        raise ServeError(
            f"--host {host} is reachable from other machines: set an API key in an environment variable and "
            "name it with --api-key-env NAME (the key is never read from the command line)"
        )
    server = Server(config, api_key=api_key)
    app = create_app(server)
    names = ", ".join(server.models)
    log(f"serving at http://{host}:{port}/v1 — models: {names}; Ctrl+C stops")
    for note in server.notices:
        log(f"note: {note}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
