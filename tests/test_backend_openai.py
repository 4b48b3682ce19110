"""The remote tier's client against real servers: llama_cpp.server with SmolLM2, and a fault-injecting fake."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from automix_local.backends.base import Generation, run_to_end
from automix_local.backends.openai import Endpoint, OpenAIBackend, RemoteError, parse_endpoint, retry_after_seconds
from automix_local.config import TierConfig

from .remote_server import HttpProxy, LlamaServer, RecordingServer, free_port

pytestmark = pytest.mark.timeout(60)

MESSAGES = [
    {"role": "system", "content": "Answer in one word."},
    {"role": "user", "content": "What is the capital of France? «Ünïcode»"},
]
SLACK = 1.5  # seconds a failing call may run past its timeout


def make_backend(base_url: str, env: dict[str, str] | None = None, **tier: object) -> OpenAIBackend:
    kw: dict[str, object] = {"timeout": 10.0, "retries": 2, **tier}
    return OpenAIBackend(
        TierConfig(name="gpt", backend="openai", base_url=base_url, model="test-model", **kw),  # type: ignore[arg-type]
        env={} if env is None else env,
    )


@dataclass
class Call:
    deltas: list[str] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    generation: Generation | None = None
    error: RemoteError | None = None
    elapsed: float = 0.0


def call(backend: OpenAIBackend, body: bytes | None = None) -> Call:
    """Run one stream_body to its end, recording deltas, attempts, the result or the RemoteError, and the time."""
    result = Call()
    body = backend.payload(MESSAGES, max_tokens=16) if body is None else body
    t0 = time.monotonic()
    gen = backend.stream_body(body, on_attempt=result.attempts.append)
    try:
        while True:
            result.deltas.append(next(gen))
    except StopIteration as done:
        result.generation = done.value
    except RemoteError as exc:
        result.error = exc
    result.elapsed = time.monotonic() - t0
    return result


def failed(result: Call, kind: str) -> RemoteError:
    assert result.error is not None, f"expected a {kind} error, got {result.generation}"
    exc = result.error
    assert exc.kind == kind, str(exc)
    message = str(exc)
    assert "\n" not in message and message.startswith("remote tier 'gpt': "), message
    return exc


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as srv:
        yield srv
    assert not srv.errors


# --------------------------------------------------------------------------- the real llama_cpp.server


@pytest.fixture(scope="module")
def llama_server(model_path: Path) -> Iterator[LlamaServer]:
    with LlamaServer(model_path, alias="smollm2") as srv:
        yield srv


def test_llama_server_streams_a_chat_answer(llama_server: LlamaServer) -> None:
    backend = OpenAIBackend(
        TierConfig(name="local", backend="openai", base_url=llama_server.base_url, model="smollm2", timeout=60.0),
        env={},
    )
    assert backend.endpoint.url == f"{llama_server.base_url}/chat/completions"
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    body = backend.payload(messages, max_tokens=24)
    assert json.loads(body) == {
        "model": "smollm2",
        "messages": messages,
        "max_tokens": 24,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    deltas: list[str] = []
    gen = backend.stream_body(body)
    while True:
        try:
            deltas.append(next(gen))
        except StopIteration as done:
            result: Generation = done.value
            break
    assert len(deltas) > 1, "the answer should arrive in several deltas"
    assert result.text == "".join(deltas) and result.text.strip()
    assert "Paris" in result.text
    assert result.tokens_in > 0 and result.tokens_out > 0 and result.tokens_evaluated == result.tokens_in
    assert result.finish_reason in ("stop", "length")
    assert result.prompt_seconds >= 0 and result.gen_seconds >= 0 and result.token_logprobs == []
    # temperature 0 is deterministic, and the server honours stop strings
    again = run_to_end(backend.stream_body(body))
    assert again.text == result.text
    stopped = run_to_end(backend.stream_body(backend.payload(messages, max_tokens=24, stop=["Paris"])))
    assert "Paris" not in stopped.text
    backend.close()


# --------------------------------------------------------------------------- endpoint and payload


@pytest.mark.parametrize(
    ("base_url", "url", "host", "port", "scheme", "path"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions", "127.0.0.1", 8000, "http", None),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions", "127.0.0.1", 8000, "http", None),
        ("https://api.example.com/v1/chat/completions", None, "api.example.com", 443, "https", "/v1/chat/completions"),
        (
            "HTTP://Host.Example:80",
            "http://host.example/chat/completions",
            "host.example",
            80,
            "http",
            "/chat/completions",
        ),
        (
            "https://x.example/openai/v1?api-version=1",
            "https://x.example/openai/v1/chat/completions?api-version=1",
            "x.example",
            443,
            "https",
            "/openai/v1/chat/completions?api-version=1",
        ),
    ],
)
def test_endpoint(base_url: str, url: str | None, host: str, port: int, scheme: str, path: str | None) -> None:
    url = url or base_url
    expected = Endpoint(url=url, host=host, port=port, scheme=scheme, path=path or "/v1/chat/completions")
    assert parse_endpoint(base_url) == expected
    assert make_backend(base_url).endpoint == expected


@pytest.mark.parametrize("base_url", ["ftp://example.com/v1", "127.0.0.1:8000/v1", "http:///v1", "http://u:p@host/v1"])
def test_bad_base_url_is_a_config_error(base_url: str) -> None:
    with pytest.raises(RemoteError) as info:
        make_backend(base_url)
    assert info.value.kind == "config" and "\n" not in str(info.value)


def test_server_receives_exactly_the_payload(server: RecordingServer) -> None:
    backend = make_backend(server.base_url)
    body = backend.payload(MESSAGES, max_tokens=16, temperature=0.0)
    assert body == backend.payload(MESSAGES, max_tokens=16, temperature=0.0)  # deterministic
    expected = {
        "model": "test-model",
        "messages": MESSAGES,
        "max_tokens": 16,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert body == json.dumps(expected, ensure_ascii=False, separators=(",", ":")).encode()
    result = call(backend, body)
    assert result.error is None and result.deltas == ["Pa", "ri", "s"] and result.attempts == [1]
    gen = result.generation
    assert gen is not None and gen.text == "Paris" and gen.finish_reason == "stop"
    assert (gen.tokens_in, gen.tokens_out, gen.tokens_evaluated) == (11, 2, 11)  # the stream's usage
    assert gen.seconds <= result.elapsed + 0.01
    (request,) = server.requests
    assert request["method"] == "POST" and request["path"] == "/v1/chat/completions"
    assert request["body"] == body
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "text/event-stream"
    assert headers["user-agent"].startswith("automix-local")
    assert "authorization" not in headers


def test_token_estimates_without_usage(server: RecordingServer) -> None:
    server.usage = None
    backend = make_backend(server.base_url)
    gen = call(backend).generation
    assert gen is not None and gen.text == "Paris"
    prompt_bytes = sum(len(m["content"].encode()) for m in MESSAGES)
    assert gen.tokens_in == gen.tokens_evaluated == prompt_bytes // 4
    assert gen.tokens_out == len("Paris") // 4


def test_plain_json_completion_is_accepted(server: RecordingServer) -> None:
    server.mode = "json"
    result = call(make_backend(server.base_url))
    assert result.error is None and result.deltas == ["Paris"]
    assert result.generation is not None and result.generation.text == "Paris"
    assert (result.generation.tokens_in, result.generation.tokens_out) == (11, 2)


def test_backend_protocol_adaptor(server: RecordingServer) -> None:
    backend = make_backend(server.base_url)
    assert backend.uses_chat_template and backend.n_ctx >= 100_000
    assert backend.count_tokens("x" * 40) == 10
    gen = run_to_end(backend.stream(backend.render(MESSAGES), max_tokens=8, stop=["\n"], seed=3))
    assert gen.text == "Paris"
    sent = server.posts[-1]["json"]
    assert sent["messages"] == MESSAGES and sent["stop"] == ["\n"] and sent["seed"] == 3
    run_to_end(backend.stream("plain question", max_tokens=8))
    assert server.posts[-1]["json"]["messages"] == [{"role": "user", "content": "plain question"}]
    assert "seed" not in server.posts[-1]["json"] and "stop" not in server.posts[-1]["json"]
    with pytest.raises(RemoteError) as info:
        backend.score("prompt", ["yes", "no"])
    assert info.value.kind == "config"


def test_models_route(server: RecordingServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
        assert json.load(resp)["data"][0]["id"] == "test-model"
    assert server.requests[-1]["method"] == "GET"


# --------------------------------------------------------------------------- the API key


def test_authorization_header_from_env(server: RecordingServer) -> None:
    backend = make_backend(server.base_url, env={"TEST_REMOTE_KEY": "sk-test-123"}, api_key_env="TEST_REMOTE_KEY")
    assert call(backend).error is None
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test-123"
    assert b"sk-test-123" not in server.requests[0]["body"]


def test_missing_key_fails_before_any_request(server: RecordingServer) -> None:
    backend = make_backend(server.base_url, env={"OTHER": "x"}, api_key_env="TEST_REMOTE_KEY")
    result = call(backend)
    exc = failed(result, "auth")
    assert "TEST_REMOTE_KEY" in str(exc) and "api_key_env" in str(exc)
    assert result.attempts == [] and server.requests == []
    assert failed(call(make_backend(server.base_url, env={"K": ""}, api_key_env="K")), "auth")


def test_401_is_not_retried_and_never_shows_the_key(server: RecordingServer) -> None:
    server.mode = "401"
    backend = make_backend(server.base_url, env={"TEST_REMOTE_KEY": "sk-secret-999"}, api_key_env="TEST_REMOTE_KEY")
    result = call(backend)
    exc = failed(result, "auth")
    assert result.attempts == [1] and len(server.requests) == 1
    assert "401" in str(exc) and "TEST_REMOTE_KEY" in str(exc) and "Incorrect API key" in str(exc)
    assert "sk-secret-999" not in str(exc) + repr(exc.args)


def test_404_is_an_http_error_with_the_server_message(server: RecordingServer) -> None:
    server.mode = "404"
    result = call(make_backend(server.base_url))
    exc = failed(result, "http")
    assert exc.status == 404 and "does not exist" in str(exc) and result.attempts == [1]


# --------------------------------------------------------------------------- retries


def test_429_honours_retry_after_then_succeeds(server: RecordingServer) -> None:
    server.mode, server.fail_times, server.retry_after = "429", 1, "1"
    result = call(make_backend(server.base_url))
    assert result.error is None and result.generation is not None and result.generation.text == "Paris"
    assert result.attempts == [1, 2] and len(server.requests) == 2
    assert server.requests[1]["time"] - server.requests[0]["time"] >= 1.0
    assert result.elapsed >= 1.0


def test_429_wait_beyond_the_deadline_fails_at_once(server: RecordingServer) -> None:
    server.mode, server.retry_after = "429", "20"
    result = call(make_backend(server.base_url, timeout=3.0))
    exc = failed(result, "rate_limit")
    assert "20" in str(exc) and "timeout" in str(exc)
    assert result.elapsed < 1.0 and len(server.requests) == 1


def test_429_gives_up_after_the_retries(server: RecordingServer) -> None:
    server.mode, server.retry_after = "429", "0"
    result = call(make_backend(server.base_url, retries=1))
    failed(result, "rate_limit")
    assert result.attempts == [1, 2] and len(server.requests) == 2


def test_retry_after_http_date() -> None:
    now = 1_445_412_475.0  # 5 s before Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == pytest.approx(5.0)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now + 60) == 0.0
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_500_once_then_ok(server: RecordingServer) -> None:
    server.mode, server.fail_times = "500", 1
    result = call(make_backend(server.base_url))
    assert result.error is None and result.generation is not None and result.generation.text == "Paris"
    assert result.attempts == [1, 2] and len(server.requests) == 2
    assert server.requests[0]["body"] == server.requests[1]["body"]


def test_500_forever_is_a_server_error_within_the_deadline(server: RecordingServer) -> None:
    server.mode = "500"
    result = call(make_backend(server.base_url, retries=10, timeout=2.0))
    exc = failed(result, "server")
    assert "500" in str(exc) and "had an error" in str(exc)
    assert 2 <= len(result.attempts) <= 3 and result.elapsed < 2.0 + SLACK


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as reserved:  # bound but not listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result = call(make_backend(f"http://127.0.0.1:{port}/v1", timeout=5.0, retries=2))
    exc = failed(result, "refused")
    assert f"127.0.0.1:{port}" in str(exc) and "is the server running?" in str(exc)
    assert result.attempts == [1, 2, 3] and result.elapsed < 5.0 + SLACK


def test_dns_failure_is_fast_and_not_retried() -> None:
    result = call(make_backend("http://nonexistent.invalid/v1", timeout=3.0))
    if result.error is None or result.error.kind != "dns":
        pytest.skip(f"this resolver does not fail nonexistent.invalid quickly: {result.error}")
    failed(result, "dns")
    assert result.attempts == [1] and result.elapsed < 3.0 + SLACK
    assert "nonexistent.invalid" in str(result.error)


# --------------------------------------------------------------------------- timeouts


def test_slow_server_times_out(server: RecordingServer) -> None:
    server.mode, server.delay = "slow", 5.0
    result = call(make_backend(server.base_url, timeout=1.0))
    failed(result, "timeout")
    assert 0.9 <= result.elapsed < 1.0 + SLACK and result.attempts == [1]


def test_trickle_is_cut_at_the_deadline(server: RecordingServer) -> None:
    server.mode, server.delay = "trickle", 0.3
    result = call(make_backend(server.base_url, timeout=1.5))
    exc = failed(result, "timeout")
    assert result.deltas and exc.partial == "".join(result.deltas)
    assert result.elapsed < 1.5 + SLACK


def test_close_interrupts_a_stream(server: RecordingServer) -> None:
    server.mode, server.delay = "trickle", 0.2
    backend = make_backend(server.base_url, timeout=20.0)
    timer = threading.Timer(0.5, backend.close)
    timer.start()
    result = call(backend)
    timer.join()
    exc = failed(result, "cancelled")
    assert "cancelled" in str(exc) and exc.partial == "".join(result.deltas)
    assert result.elapsed < 3.0


# --------------------------------------------------------------------------- broken streams


def test_drop_mid_stream_keeps_the_partial_text(server: RecordingServer) -> None:
    server.mode = "drop"
    result = call(make_backend(server.base_url))
    exc = failed(result, "protocol")
    assert exc.partial == "Pari" == "".join(result.deltas)
    assert result.attempts == [1]


def test_truncated_body(server: RecordingServer) -> None:
    server.mode = "truncated"
    result = call(make_backend(server.base_url))
    exc = failed(result, "protocol")
    assert exc.partial == "".join(result.deltas)
    assert result.attempts == [1]


def test_garbage_stream(server: RecordingServer) -> None:
    server.mode = "garbage"
    exc = failed(call(make_backend(server.base_url)), "protocol")
    assert "not JSON" in str(exc) and exc.partial == ""


def test_error_event_mid_stream(server: RecordingServer) -> None:
    server.mode = "error_event"
    exc = failed(call(make_backend(server.base_url)), "protocol")
    assert "overloaded" in str(exc) and exc.partial == "Pa"


# --------------------------------------------------------------------------- SSE framing


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_any_legal_framing_in_any_chunking(server: RecordingServer, size: int) -> None:
    server.mode, server.chunk_size = "framing", size
    result = call(make_backend(server.base_url))
    assert result.error is None and result.deltas == ["Pa", "ri", "s"]
    assert result.generation is not None and result.generation.finish_reason == "stop"


def test_a_page_instead_of_a_stream_is_a_protocol_error(server: RecordingServer) -> None:
    server.mode = "html"
    exc = failed(call(make_backend(server.base_url)), "protocol")
    assert "event stream" in str(exc) and "text/html" in str(exc) and exc.partial == ""


def test_tls_failure_is_one_line(server: RecordingServer) -> None:
    backend = make_backend(server.base_url.replace("http://", "https://"), timeout=3.0)
    assert backend.endpoint.scheme == "https" and backend.endpoint.port == server.port
    result = call(backend)
    exc = failed(result, "http")
    assert "TLS" in str(exc) and result.attempts == [1] and result.elapsed < 3.0 + SLACK


# --------------------------------------------------------------------------- proxies


def test_http_proxy_from_the_environment_forwards_an_http_call(server: RecordingServer) -> None:
    with HttpProxy() as proxy:
        env = {"http_proxy": proxy.url.replace("http://", "http://alice:s3cret@")}
        backend = make_backend(server.base_url, env=env)
        body = backend.payload(MESSAGES, max_tokens=16)
        result = call(backend, body)
    assert result.error is None and "".join(result.deltas) == "Paris"
    assert proxy.targets == [backend.endpoint.url]  # an http:// endpoint: the request, handed to the proxy
    assert proxy.auth == ["Basic " + base64.b64encode(b"alice:s3cret").decode()]
    (post,) = server.posts
    assert post["body"] == body and "Proxy-Authorization" not in post["headers"]  # exactly the body, no credentials


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.1:8080", ".0.0.1"])
def test_no_proxy_bypasses_the_proxy(server: RecordingServer, no_proxy: str) -> None:
    with HttpProxy() as proxy:
        result = call(make_backend(server.base_url, env={"HTTP_PROXY": proxy.url, "NO_PROXY": no_proxy}))
    assert result.error is None and proxy.targets == [] and len(server.posts) == 1


def test_unsupported_proxy_scheme_is_a_config_error(server: RecordingServer) -> None:
    result = call(make_backend(server.base_url, env={"http_proxy": "socks5://127.0.0.1:1080"}))
    assert isinstance(result.error, RemoteError) and result.error.kind == "config"
    assert "socks5" in str(result.error) and server.requests == []


def test_dead_proxy_fails_fast_naming_it(server: RecordingServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    result = call(make_backend(server.base_url, env={"http_proxy": dead}, retries=0))
    assert isinstance(result.error, RemoteError) and result.error.kind == "refused"
    assert "via proxy 127.0.0.1" in str(result.error) and server.requests == []


# --------------------------------------------------------------------------- https


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, made by the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    san = "subjectAltName=DNS:localhost,IP:127.0.0.1"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [*command, "-days", "2", "-subj", "/CN=localhost", "-addext", san],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _tls_server(certificate: tuple[Path, Path]) -> RecordingServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return RecordingServer(tls=ctx)


def test_https_with_a_trusted_certificate(certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # what a user with a private CA sets
    with _tls_server(certificate) as server:
        result = call(make_backend(server.base_url))
        assert result.error is None and "".join(result.deltas) == "Paris"
        assert len(server.posts) == 1


def test_https_with_an_untrusted_certificate_sends_nothing(certificate) -> None:
    with _tls_server(certificate) as server:
        result = call(make_backend(server.base_url, retries=0))
        assert isinstance(result.error, RemoteError) and result.error.kind == "http"
        assert "certificate" in str(result.error).lower() and "\n" not in str(result.error)
        assert server.posts == []  # the handshake failed before a byte of the payload left


def test_https_call_through_a_proxy_is_a_connect_tunnel(certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with _tls_server(certificate) as server, HttpProxy() as proxy:
        backend = make_backend(server.base_url, env={"HTTPS_PROXY": proxy.url})
        body = backend.payload(MESSAGES, max_tokens=16)
        result = call(backend, body)
        assert result.error is None and "".join(result.deltas) == "Paris"
        assert proxy.targets == [f"localhost:{server.port}"]  # the proxy saw the host only: TLS end to end
        assert [p["body"] for p in server.posts] == [body]
