"""`automix-local serve` over real HTTP: the official openai SDK and curl against uvicorn on 127.0.0.1,
serving the real SmolLM2 cascade; the remote tier is the recording server of tests/remote_server.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import uvicorn

from automix_local.audit import EgressLog
from automix_local.config import Config, load_config
from automix_local.paths import default_paths
from automix_local.server import LiveText, ServeError, Server, create_app, serve

from .conftest import SQUAD_CONTEXT, cli_path, tier_toml
from .remote_server import RecordingServer, free_port

Q = "Who was the leader of the Norse raiders?"
MESSAGES = [{"role": "system", "content": SQUAD_CONTEXT}, {"role": "user", "content": Q}]


@contextmanager
def running(config: Config, api_key: str | None = None) -> Iterator[tuple[str, Server]]:
    """The server's ASGI app under a real uvicorn on a free port of 127.0.0.1."""
    server = Server(config, api_key=api_key)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        uv.should_exit = True
        thread.join(30)


@pytest.fixture
def cascade_config(model_path: Path, write_config: Callable[[str], Path]) -> Callable[..., Config]:
    """Two real SmolLM2 tiers; ``router`` and the rest of [cascade]/[server] as given."""

    def make(cascade: str = 'router = "threshold"\nthreshold = 0.0\n', server: str = "") -> Config:
        text = tier_toml("small", model_path, cost=1.0, max_tokens=16)
        text += tier_toml("large", model_path, cost=10.0, max_tokens=16)
        text += f"\n[cascade]\n{cascade}\n[server]\n{server}\n"
        return load_config(write_config(text), default_paths())

    return make


def client(url: str, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=120)


def test_the_openai_sdk_lists_the_models_and_gets_an_answer_with_its_trace(cascade_config):
    with running(cascade_config()) as (url, _):
        c = client(url)
        assert [m.id for m in c.models.list()] == ["automix", "small", "large"]
        raw = c.chat.completions.with_raw_response.create(model="automix", messages=MESSAGES)
        done = raw.parse()
        assert raw.headers["x-automix-tier"] == "small" and raw.headers["x-automix-decision"] == "keep"
        assert 0 <= float(raw.headers["x-automix-confidence"]) <= 1 and raw.headers["x-automix-egress"] == "none"
        assert done.model == "small" and done.choices[0].finish_reason == "stop"
        trace = done.model_extra["automix"]
        answer = done.choices[0].message.content
        assert answer and answer == trace["answer_shown"]
        assert [s["tier"] for s in trace["steps"]] == ["small"] and trace["steps"][0]["decision"] == "keep"
        steps = trace["steps"]
        assert done.usage.prompt_tokens == sum(s["tokens_in"] for s in steps) > 100
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["tiers"][0]["loaded"] and health["queue"]["waiting"] == 0


def test_streamed_an_escalation_shows_only_the_kept_answer_or_both_when_provisional(cascade_config):
    """Default: a tier is streamed once kept; here every answer escalates (random, p = 1), so the stream
    is the large tier's answer alone. Provisional: the small answer at once, a separator chunk, then the
    large one. Either way the last chunk carries the trace and the stream ends with [DONE]."""
    with running(cascade_config('router = "random"\nrandom_p = 1.0\n')) as (url, _):
        c = client(url)
        stream = c.chat.completions.create(
            model="automix", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        *chunks, usage_only = list(stream)
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        trace = chunks[-1].model_extra["automix"]
        assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].model == "large"
        assert [s["tier"] for s in trace["steps"]] == ["small", "large"]
        assert text == trace["answer_shown"] and text
        assert all(ch.model == "large" for ch in chunks)
        assert usage_only.choices == [] and usage_only.usage is not None  # asked for: the usage in a last chunk
        assert usage_only.usage.prompt_tokens == sum(s["tokens_in"] for s in trace["steps"])

        chunks = list(
            c.chat.completions.create(
                model="automix", messages=MESSAGES, stream=True, extra_body={"stream_provisional": True}
            )
        )
        marks = [i for i, ch in enumerate(chunks) if (ch.model_extra.get("automix") or {}).get("event") == "escalated"]
        assert len(marks) == 1
        before = "".join(ch.choices[0].delta.content or "" for ch in chunks[1 : marks[0]])
        after = "".join(ch.choices[0].delta.content or "" for ch in chunks[marks[0] + 1 :])
        trace = chunks[-1].model_extra["automix"]
        assert before == trace["steps"][0]["answer"] and after == trace["answer_shown"]
        assert "escalated to large" in chunks[marks[0]].choices[0].delta.content


def test_curl_streamed_and_not_through_the_installed_command(cascade_config, hermetic_home: Path):
    """The installed `automix-local serve`, and curl: a plain JSON answer, and an SSE stream ending in [DONE]."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    config = cascade_config()
    port = free_port()
    proc = subprocess.Popen(
        [cli_path(), "--config", str(config.source_file), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.2)
        body = json.dumps({"model": "automix", "messages": MESSAGES})
        out = subprocess.run(
            ["curl", "-sS", "-i", f"{url}/v1/chat/completions", "-H", "Content-Type: application/json", "-d", body],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        head, _, payload = out.replace("\r\n", "\n").partition("\n\n")
        assert "200 OK" in head and "x-automix-tier: small" in head.lower()
        assert json.loads(payload)["choices"][0]["message"]["content"]
        streamed = subprocess.run(
            [
                "curl",
                "-sS",
                "-N",
                f"{url}/v1/chat/completions",
                "-H",
                "Content-Type: application/json",
                "-d",
                json.dumps({"model": "small", "messages": MESSAGES, "stream": True}),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        datas = [line[len("data: ") :] for line in streamed.splitlines() if line.startswith("data: ")]
        assert datas[-1] == "[DONE]" and len(datas) > 3
        last = json.loads(datas[-2])
        assert last["model"] == "small" and last["automix"]["decision"] == "direct"
        text = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in datas[:-1])
        assert text == last["automix"]["answer_shown"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_requests_get_one_line_and_the_right_status(cascade_config):
    config = cascade_config(server="max_request_bytes = 4096\n")
    with running(config) as (url, _):
        post = lambda body, **kw: httpx.post(f"{url}/v1/chat/completions", content=body, timeout=60, **kw)  # noqa: E731
        r = post(b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
        r = post(json.dumps({"model": "automix"}))
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        r = post(json.dumps({"model": "gpt-9", "messages": MESSAGES}))
        assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
        assert "'automix'" in r.json()["error"]["message"]
        r = post(json.dumps({"messages": [{"role": "user", "content": Q}]}))
        assert r.status_code == 400 and "no context" in r.json()["error"]["message"]
        r = post(json.dumps({"messages": [{"role": "system", "content": "x " * 5000}, MESSAGES[1]]}))
        assert r.status_code == 413 and "max_request_bytes" in r.json()["error"]["message"]
    with running(cascade_config()) as (url, _):
        long = {"messages": [{"role": "system", "content": "The sea is wide. " * 900}, MESSAGES[1]]}
        for stream in (False, True):
            r = httpx.post(f"{url}/v1/chat/completions", json=long | {"stream": stream}, timeout=60)
            msg = r.json()["error"]["message"]
            assert r.status_code == 400 and msg.startswith("the context is too long for tier 'small'")
            assert "nothing was truncated" in msg and "\n" not in msg


def test_the_queue_answers_in_order_and_refuses_beyond_it_with_retry_after(cascade_config):
    """queue_size = 1: with one question running and one waiting, the others get 503 + Retry-After at once;
    every request is answered or refused, none is lost."""
    config = cascade_config(cascade='router = "random"\nrandom_p = 1.0\n', server="queue_size = 1\n")
    with running(config) as (url, _):
        results: list[httpx.Response] = []
        lock = threading.Lock()

        def ask() -> None:
            r = httpx.post(f"{url}/v1/chat/completions", json={"messages": MESSAGES}, timeout=120)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=ask) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.05)
        for t in threads:
            t.join(180)
        codes = sorted(r.status_code for r in results)
        assert len(results) == 5 and set(codes) == {200, 503} and codes.count(200) >= 2
        for r in results:
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1 and r.json()["error"]["code"] == "server_busy"
            else:
                assert r.json()["choices"][0]["message"]["content"]


def test_a_client_that_goes_away_frees_the_model_for_the_next(cascade_config):
    config = cascade_config(cascade='router = "random"\nrandom_p = 1.0\n', server="queue_size = 0\n")
    with running(config) as (url, server):
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json={"messages": MESSAGES, "stream": True, "stream_provisional": True},
            timeout=60,
        ) as r:
            next(r.iter_lines())  # the first chunk: the question is running
        deadline = time.monotonic() + 30
        while server.gate is not None and server.gate._lock.locked():  # the worker stops at its next token
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": MESSAGES}, timeout=120)
        assert r.status_code == 200  # queue_size = 0: it would be 503 if the first still held the model


def test_an_api_key_is_required_when_set_and_off_loopback(cascade_config):
    config = cascade_config()
    with running(config, api_key="s3cret") as (url, _):
        with pytest.raises(openai.AuthenticationError):
            client(url, "wrong").models.list()
        r = httpx.get(f"{url}/v1/models")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert next(m.id for m in client(url, "s3cret").models.list()) == "automix"
    with pytest.raises(ServeError, match="--api-key-env"):
        serve(config, "0.0.0.0", free_port(), None)


def test_cli_refuses_an_unset_key_variable(hermetic_home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    out = subprocess.run(
        [cli_path(), "serve", "--api-key-env", "NO_SUCH_KEY"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "NO_SUCH_KEY" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([cli_path(), "serve", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--api-key-env" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("mode", ["never", "ask", "allow"])
def test_the_privacy_policy_and_the_egress_log_apply_to_served_questions(
    model_path: Path, write_config: Callable[[str], Path], hermetic_home: Path, mode: str
):
    """Every question escalates to a remote tier (the recording server). Under never, and under ask (nobody
    to ask over HTTP), nothing reaches it and the response says why; under allow, what it received is
    in the egress log under the id the response names."""
    with RecordingServer() as remote:
        text = tier_toml("small", model_path, cost=1.0, max_tokens=16)
        text += (
            f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{remote.base_url}"\nmodel = "m"\n'
            'timeout = 5\nretries = 0\ncost = 50.0\n[cascade]\nrouter = "random"\nrandom_p = 1.0\n'
            f'[policy]\nremote = "{mode}"\n'
        )
        config = load_config(write_config(text), default_paths())
        with running(config) as (url, _):
            c = client(url)
            assert [m.id for m in c.models.list()] == ["automix", "small"]  # a remote tier is not asked by name
            raw = c.chat.completions.with_raw_response.create(model="automix", messages=MESSAGES)
            done = raw.parse()
        trace = done.model_extra["automix"]
        sent = [r for r in remote.requests if r["path"].endswith("/chat/completions")]
        if mode == "allow":
            assert len(sent) == 1 and done.model == "remote"
            egress = raw.headers["x-automix-egress"]
            log = EgressLog(config.paths.egress_log)
            row = log.get(int(egress))
            log.close()
            assert row is not None and row.payload == sent[0]["body"] and row.outcome == "ok"
        else:
            assert sent == [] and done.model == "small" and raw.headers["x-automix-egress"] == "none"
            if mode == "ask":
                assert "nobody can be asked over HTTP" in trace["notice"]


def test_a_remote_tier_cut_off_mid_stream_falls_back_to_the_local_answer_in_the_stream(
    model_path: Path, write_config: Callable[[str], Path], hermetic_home: Path
):
    """The remote tier (the last, so streamed) sends "Pari" and drops the connection: the stream says the
    answer was given locally, then sends the small tier's answer, and the trace names it."""
    with RecordingServer(mode="drop") as remote:
        text = tier_toml("small", model_path, cost=1.0, max_tokens=16)
        text += (
            f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{remote.base_url}"\nmodel = "m"\n'
            'timeout = 5\nretries = 0\ncost = 50.0\n[cascade]\nrouter = "random"\nrandom_p = 1.0\n'
            '[policy]\nremote = "allow"\n'
        )
        with running(load_config(write_config(text), default_paths())) as (url, _):
            chunks = list(client(url).chat.completions.create(model="automix", messages=MESSAGES, stream=True))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    trace = chunks[-1].model_extra["automix"]
    assert trace["tier"] == "small" and chunks[-1].model == "small"
    partial, _, local = text.partition("\n\n— answered locally —\n\n")
    assert partial and "Pari".startswith(partial)  # what was shown of the remote answer (LiveText holds a tail back)
    assert local == trace["answer_shown"] and local


def test_live_text_shows_the_clean_answer_and_holds_an_abstention_back():
    live = LiveText()
    shown = "".join(live.feed(d) for d in ["Answer: ", "Rol", "lo of ", "Normandy", "."])
    assert "Answer" not in shown and shown + live.finish("Rollo of Normandy") == "Rollo of Normandy"
    live = LiveText()
    assert "".join(live.feed(d) for d in ["un", "answer", "able"]) == ""
    assert live.finish("The document does not say.") == "The document does not say."


def test_serve_module_starts_nothing_until_asked():
    """Importing the server loads llama.cpp's library (before numpy: issue 24, tests/test_import_order.py) but
    no model, and starts no thread."""
    code = (
        "import threading, automix_local.server, sys, llama_cpp.llama as L; "
        "print(threading.active_count(), 'llama_cpp.llama_cpp' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1 True", out.stderr


def test_questions_over_the_document_library_cite_their_passages(cascade_config, hermetic_home: Path, tmp_path: Path):
    """ "documents": [] asks the whole library (indexed by `docs add`), "doc" one document; the trace names
    the cited passages; a question nothing matches is "not in your documents", with no model asked."""
    config = cascade_config()
    folder = tmp_path / "papers"
    folder.mkdir()
    (folder / "kettle.md").write_text(
        "# Kettle manual\n\n## Descaling\nIn hard water areas, descale the kettle every four weeks with white "
        "vinegar.\n",
        encoding="utf-8",
    )
    (folder / "festival.txt").write_text("The harbour festival of Kell takes place every August.\n", encoding="utf-8")
    for town, trade in (("Arlen", "copper mining"), ("Brisk", "salt trading"), ("Corvo", "wool weaving")):
        # more than fits the window: passages are retrieved, and a question nothing matches is not found
        body = " ".join(f"In {town} the people are known for {trade}, and visitors come often." for _ in range(60))
        (folder / f"{town.lower()}.txt").write_text(body + "\n", encoding="utf-8")
    added = subprocess.run(
        [cli_path(), "--config", str(config.source_file), "docs", "add", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    with running(config) as (url, _):
        c = client(url)
        ask = [{"role": "user", "content": "How often should the kettle be descaled?"}]
        done = c.chat.completions.create(model="automix", messages=ask, extra_body={"documents": []})
        trace = done.model_extra["automix"]
        assert len(trace["retrieval"]["documents"]) == 5 and trace["retrieval"]["mode"] == "retrieved"
        assert done.choices[0].message.content and trace["not_found"] in (True, False)
        for cited in trace["citations"]:  # the same citations as `ask --all --json`
            assert {"n", "document", "start", "end", "text"} <= cited.keys()
            assert cited["document"] in trace["retrieval"]["documents"]
        one = c.chat.completions.create(
            model="automix",
            messages=[{"role": "user", "content": "When is the harbour festival?"}],
            extra_body={"doc": "festival.txt"},
        )
        assert one.model_extra["automix"]["retrieval"]["documents"] == ["festival.txt"]
        nope = c.chat.completions.create(
            model="automix",
            messages=[{"role": "user", "content": "Which zebra plays the bassoon?"}],
            extra_body={"documents": []},
            stream=True,
        )
        chunks = list(nope)
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text.startswith("Not in your documents") and chunks[-1].model_extra["automix"]["not_found"] is True
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": ask, "documents": ["nope.md"]}, timeout=60)
        assert r.status_code == 400 and "nope.md" in r.json()["error"]["message"]


def test_a_client_too_slow_to_send_its_body_gets_408(cascade_config):
    import socket

    with running(cascade_config(server="read_timeout = 0.5\n")) as (url, _):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"messages\": [")  # fmt: skip
            raw = b""
            while b"read_timeout" not in raw:  # headers and body may arrive in separate segments
                chunk = s.recv(4096)
                if not chunk:
                    break
                raw += chunk
        reply = raw.decode()
        assert reply.startswith("HTTP/1.1 408") and "read_timeout" in reply


def test_a_stream_ends_with_its_trace_even_when_the_worker_is_slow_to_finish(cascade_config, monkeypatch):
    """The Done event can reach the stream before the worker thread has stored the answer (CI caught a
    stream cut before its last chunk): the stream reads the answer from the event. Injected here by a worker
    that pauses between its last event and its return."""
    with running(cascade_config()) as (url, server):
        real = server.question

        def slow(req):
            run = real(req)

            def paused():
                answer = yield from run()
                time.sleep(0.5)
                return answer

            return paused

        monkeypatch.setattr(server, "question", slow)
        r = httpx.post(f"{url}/v1/chat/completions", json={"messages": MESSAGES, "stream": True}, timeout=120)
        datas = [line[len("data: ") :] for line in r.text.splitlines() if line.startswith("data: ")]
        assert datas[-1] == "[DONE]" and json.loads(datas[-2])["choices"][0]["finish_reason"] == "stop"
