"""Real HTTP servers for the remote-tier tests.

* :class:`RecordingServer` — an OpenAI-compatible chat-completions server on 127.0.0.1 that records
  every request (before answering) and can be told to misbehave (``mode``). A request that asks for
  ``logprobs`` is answered one token a chunk with them (``tokens``), in the chat form on /chat/completions
  and the legacy form on /completions (which it also serves).
* :class:`LlamaServer` — the real ``python -m llama_cpp.server`` serving a GGUF on a free port.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MODES = (
    "ok",  # SSE stream of the answer in a few chunks (+ usage if asked for) + [DONE]
    "json",  # a plain JSON completion, ignoring "stream": true
    "slow",  # waits `delay` seconds, then answers as "ok"
    "trickle",  # streams a chunk every `delay` seconds, forever
    "429",  # Too Many Requests with Retry-After: `retry_after`
    "500",  # Internal Server Error with a JSON error body
    "401",  # Unauthorized with a JSON error body
    "404",  # Not Found with a JSON error body
    "garbage",  # 200 event stream whose data lines are not JSON
    "error_event",  # one chunk, then an {"error": ...} event
    "drop",  # two chunks (chunked encoding), then the connection closes without [DONE]
    "truncated",  # Content-Length promises the whole stream, half of it arrives, then the connection closes
    "framing",  # the answer in every legal SSE framing (CRLF, CR, comments, multi-line data), `chunk_size` a write
    "html",  # 200 with an HTML page instead of an event stream
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chunks(text: str, n: int = 3) -> list[str]:
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(obj: Any) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
    return f"data: {data}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10  # seconds: a client that connects and sends nothing cannot hold shutdown

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # ------------------------------------------------------------------ recording
    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body,
            "json": parsed,
            "time": time.monotonic(),
        }
        self.server.owner._add(entry)
        if self.server.owner.on_request is not None:
            self.server.owner.on_request(entry)
        return entry

    def do_GET(self) -> None:
        self._record()
        if self.path.rstrip("/").endswith("/models"):
            owner = self.server.owner
            self._send_json(200, {"object": "list", "data": [{"id": owner.model, "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route for GET {self.path}"}})

    def do_POST(self) -> None:
        entry = self._record()
        owner = self.server.owner
        mode = owner._mode_for_request()
        path = self.path.rstrip("/")
        self.text_route = not path.endswith("/chat/completions") and path.endswith("/completions")
        if not path.endswith("/chat/completions") and not self.text_route:
            self._send_json(404, {"error": {"message": f"no route for POST {self.path}"}})
            return
        asked = entry["json"] if isinstance(entry["json"], dict) else {}
        self.with_logprobs = bool(asked.get("logprobs"))
        want_usage = bool((asked.get("stream_options") or {}).get("include_usage"))
        try:
            getattr(self, f"_mode_{mode}")(want_usage)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------ helpers
    def _send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def _start_stream(self, chunked: bool = True, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunk_obj(self, content: str | None = None, finish: str | None = None, role: bool = False) -> dict:
        delta: dict[str, str] = {}
        if role:
            delta["role"] = "assistant"
        if content is not None:
            delta["content"] = content
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.server.owner.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _token_obj(self, token: str, logprob: float, top: dict[str, float]) -> dict:
        """One token's chunk with its log-probabilities, in the form of the route asked."""
        if self.text_route:
            lps = {"tokens": [token], "token_logprobs": [logprob], "top_logprobs": [top], "text_offset": [0]}
            choice = {"index": 0, "text": token, "logprobs": lps, "finish_reason": None}
            return {
                "id": "cmpl-test",
                "object": "text_completion",
                "model": self.server.owner.model,
                "choices": [choice],
            }
        obj = self._chunk_obj(token)
        alternatives = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]
        entry = {"token": token, "logprob": logprob, "bytes": None, "top_logprobs": alternatives}
        obj["choices"][0]["logprobs"] = {"content": [entry], "refusal": None}
        return obj

    def _events(self, want_usage: bool) -> list[bytes]:
        owner = self.server.owner
        events = [b": keep-alive\n\n"]
        if not self.text_route:
            events.append(_sse(self._chunk_obj(role=True)))
        if self.with_logprobs:
            events += [_sse(self._token_obj(*t)) for t in owner.token_list()]
        else:
            events += [_sse(self._chunk_obj(part)) for part in _chunks(owner.answer)]
        if self.text_route:
            done = {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"}
            events.append(_sse({"id": "cmpl-test", "object": "text_completion", "choices": [done]}))
        else:
            events.append(_sse(self._chunk_obj(finish="stop")))
        if want_usage and owner.usage is not None:
            usage = _usage(*owner.usage)
            final = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "choices": [], "usage": usage}
            events.append(_sse(final))
        events.append(_sse("[DONE]"))
        return events

    def _error(self, status: int, message: str, extra: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "test_error", "code": status}}, extra)

    # ------------------------------------------------------------------ modes
    def _mode_ok(self, want_usage: bool) -> None:
        self._start_stream()
        for event in self._events(want_usage):
            self._write_chunk(event)
        self._end_chunks()

    def _mode_json(self, want_usage: bool) -> None:
        owner = self.server.owner
        prompt, completion = owner.usage or (0, 0)
        self._send_json(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": owner.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": owner.answer}, "finish_reason": "stop"}
                ],
                "usage": _usage(prompt, completion),
            },
        )

    def _mode_slow(self, want_usage: bool) -> None:
        if self.server.owner._stop.wait(self.server.owner.delay):
            return
        self._mode_ok(want_usage)

    def _mode_trickle(self, want_usage: bool) -> None:
        owner = self.server.owner
        self._start_stream()
        self._write_chunk(_sse(self._chunk_obj(role=True)))
        while not owner._stop.is_set():
            self._write_chunk(_sse(self._chunk_obj("x ")))
            if owner._stop.wait(owner.delay):
                break

    def _mode_429(self, want_usage: bool) -> None:
        retry_after = self.server.owner.retry_after
        extra = {"Retry-After": str(retry_after)} if retry_after is not None else None
        self._error(429, "Rate limit reached for requests", extra)

    def _mode_500(self, want_usage: bool) -> None:
        self._error(500, "The server had an error while processing your request")

    def _mode_401(self, want_usage: bool) -> None:
        self._error(401, "Incorrect API key provided")

    def _mode_404(self, want_usage: bool) -> None:
        self._error(404, f"The model '{self.server.owner.model}' does not exist")

    def _mode_garbage(self, want_usage: bool) -> None:
        self._start_stream()
        self._write_chunk(b"data: this is not json\n\n")
        self._write_chunk(_sse("[DONE]"))
        self._end_chunks()

    def _mode_error_event(self, want_usage: bool) -> None:
        self._start_stream()
        self._write_chunk(_sse(self._chunk_obj(_chunks(self.server.owner.answer)[0])))
        self._write_chunk(_sse({"error": {"message": "model overloaded mid-stream", "type": "server_error"}}))
        self._write_chunk(_sse("[DONE]"))
        self._end_chunks()

    def _mode_framing(self, want_usage: bool) -> None:
        a, b, c = (json.dumps(self._chunk_obj(part)) for part in _chunks(self.server.owner.answer))
        split = b.index('"delta"')  # one event's JSON over two data lines: joined with a newline, still JSON
        stream = (
            f": ping\r\n\r\ndata: {a}\r\n\r\n"
            f"event: message\ndata: {b[:split]}\ndata:{b[split:]}\nid: 7\nretry: 10\n\n"
            f"data: {c}\r\r"
            f"data: {json.dumps(self._chunk_obj(finish='stop'))}\n\ndata: [DONE]\n\n"
        ).encode()
        self._start_stream()
        size = self.server.owner.chunk_size
        for i in range(0, len(stream), size):
            self._write_chunk(stream[i : i + size])
        self._end_chunks()

    def _mode_html(self, want_usage: bool) -> None:
        body = b"<html><body>Sign in to continue</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _mode_drop(self, want_usage: bool) -> None:
        self._start_stream()
        for part in _chunks(self.server.owner.answer)[:2]:
            self._write_chunk(_sse(self._chunk_obj(part)))
        self._abort()

    def _mode_truncated(self, want_usage: bool) -> None:
        body = b"".join(self._events(want_usage))
        self._start_stream(chunked=False, length=len(body))
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self._abort()

    def _abort(self) -> None:
        """Close the connection now, mid-response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined on close
    block_on_close = True
    owner: RecordingServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        self.owner.errors.append(repr(exc))


class RecordingServer:
    """A fake OpenAI-compatible server on 127.0.0.1 that records requests and injects faults.

    Use as a context manager. ``mode`` (see :data:`MODES`) applies to ``fail_times`` requests (None:
    every request); after that the server answers as "ok".
    """

    def __init__(
        self,
        mode: str = "ok",
        *,
        answer: str = "Paris",
        delay: float = 1.0,
        retry_after: str | float | None = 1,
        fail_times: int | None = None,
        usage: tuple[int, int] | None = (11, 2),
        model: str = "test-model",
        tls: ssl.SSLContext | None = None,
        chunk_size: int = 1000,
        tokens: list[tuple[str, float, dict[str, float]]] | None = None,
    ) -> None:
        # with logprobs asked for: the answer's tokens, each (text, log-probability, top alternatives); None: the
        # answer in three tokens, each at log-probability -0.1 with one alternative at -3
        self.tokens = tokens
        # called with each request as it is recorded, before it is answered (a test looks at the world then)
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self.chunk_size = chunk_size  # bytes a write, in "framing" mode
        self.tls = tls  # serve https (on "localhost") with this server-side context
        self.mode = mode
        self.answer = answer
        self.delay = delay
        self.retry_after = retry_after
        self.fail_times = fail_times
        self.usage = usage
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []  # unexpected handler exceptions
        self._failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; expected one of {MODES}")
        self._mode = value

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        if self.tls is not None:
            return f"https://localhost:{self.port}/v1"
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def token_list(self) -> list[tuple[str, float, dict[str, float]]]:
        if self.tokens is not None:
            return self.tokens
        return [(part, -0.1, {part: -0.1, "x": -3.0}) for part in _chunks(self.answer)]

    def _add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _mode_for_request(self) -> str:
        with self._lock:
            if self._mode in ("ok", "json"):
                return self._mode
            if self.fail_times is not None and self._failures >= self.fail_times:
                return "ok"
            self._failures += 1
            return self._mode

    def start(self) -> RecordingServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="recording-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()  # joins handler threads
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = self._thread = None

    def __enter__(self) -> RecordingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LlamaServer:
    """``python -m llama_cpp.server`` on a free 127.0.0.1 port, serving one GGUF under ``alias``.

    Its output goes to a temporary log file (``log_text()``), never to the terminal.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        alias: str = "smollm2",
        *,
        n_ctx: int = 2048,
        n_threads: int = 1,
        startup_timeout: float = 60.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--use_mlock",
            "False",
            "--verbose",
            "False",
            *self.extra_args,
        ]

    def log_text(self, tail: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def _models_ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/v1/models")
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def start(self) -> LlamaServer:
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model not found: {self.model_path}")
        self.port = free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )
        end = time.monotonic() + self.startup_timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                log = self.log_text()
                self.stop()
                raise RuntimeError(f"llama_cpp.server exited with code {code} during startup:\n{log}")
            if self._models_ready():
                return self
            time.sleep(0.2)
        log = self.log_text()
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer GET /v1/models within {self.startup_timeout:g} s:\n{log}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            try:
                os.unlink(self._log.name)
            except OSError:
                pass
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class HttpProxy:
    """A real HTTP proxy on 127.0.0.1, as a corporate one behaves: ``CONNECT host:port`` opens a tunnel (an
    https endpoint), and a request in absolute form (``POST http://host:port/path``) is forwarded in origin
    form without the proxy's own headers (an http:// endpoint). Records each request's target and
    Proxy-Authorization, then relays bytes both ways. Usable as a context manager; ``.url`` is
    "http://127.0.0.1:PORT"."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.auth: list[str | None] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)  # accept() wakes up to see the stop flag
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> HttpProxy:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._accept.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            t = threading.Thread(target=self._tunnel, args=(client,), daemon=True)
            self._threads.append(t)
            t.start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            raw_head, rest = head.split(b"\r\n\r\n", 1)
            lines = raw_head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
            self.targets.append(target)
            self.auth.append(headers.get("Proxy-Authorization"))
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                first = b""
            else:  # forward: origin form, without the headers meant for the proxy
                url = urlsplit(target)
                host, port = url.hostname or "", str(url.port or 80)
                kept = [h for h in lines[1:] if not h.lower().startswith(("proxy-authorization:", "proxy-connection:"))]
                origin = url.path + (f"?{url.query}" if url.query else "")
                first = "\r\n".join([f"{method} {origin} {version}", *kept]).encode("latin-1") + b"\r\n\r\n" + rest
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                if method == "CONNECT":
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                else:
                    upstream.sendall(first)
                pipe = threading.Thread(target=_relay, args=(upstream, client), daemon=True)
                pipe.start()
                _relay(client, upstream)
                pipe.join(timeout=5)


def _relay(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
