"""Escalation to a remote tier under each policy, proven by what a real recording HTTP server received.

The remote tier is the real ``OpenAIBackend`` talking to an OpenAI-compatible server on 127.0.0.1 that
stores every request body before it answers (tests/remote_server.py), or to the real
`python -m llama_cpp.server`. The small tier is a scripted one (tests/fake_tier.py: it answers "2021" in
milliseconds) where only the policy and the request matter, and the real SmolLM2 GGUF in the end-to-end
tests (``real=True``, and the CLI's). The router is `random` with p = 1, so every question escalates.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automix_local.audit import EgressLog, Receipt
from automix_local.cascade import Blocked, Cascade, EgressPending, EgressSent, RemoteFailed
from automix_local.config import Config, load_config
from automix_local.paths import default_paths

from .conftest import ROOT, cli_path, tier_toml
from .fake_tier import Script, local_tier, scripted_factory
from .remote_server import LlamaServer, RecordingServer

EMAIL = "jane.doe@corp.example.com"
PHONE = "+1-202-555-0173"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
IP = "203.0.113.42"
SSN = "123-45-6789"
PII = (EMAIL, PHONE, CARD, IBAN, IP, SSN)

CONTEXT = (
    "Jane Doe joined the Lyon office in 2019 as head of procurement. "
    f"She can be reached at {EMAIL} or on {PHONE}. "
    f"Her expenses are paid to the card {CARD} and her salary to {IBAN}. "
    f"Her laptop has the address {IP}, and her social security number is {SSN}. "
    "The office moved to the Part-Dieu district in 2021."
)
QUESTION = "When did the office move to the Part-Dieu district?"


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def remote_config(model_path: Path, write_config: Callable[[str], Path], tmp_path: Path) -> Callable[..., Config]:
    """small + remote at ``url``; the small tier is scripted unless ``real`` (the SmolLM2 file)."""

    def make(
        url: str, policy: str = "", timeout: float = 5.0, retries: int = 1, tier: str = "", real: bool = False
    ) -> Config:
        if real:
            text = tier_toml("small", model_path, cost=1.0, max_tokens=16)
        else:
            text = local_tier(tmp_path, "small", cost=1.0, max_tokens=16)
        text += (
            f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{url}"\nmodel = "smollm2"\n'
            f"timeout = {timeout}\nretries = {retries}\ncost = 50.0\n{tier}\n"
        )
        text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\n'
        text += f"[policy]\n{policy}\n"
        return load_config(write_config(text), default_paths())

    return make


def run(config: Config, approve=None, real: bool = False, **kw) -> tuple[object, list[object]]:
    """Ask QUESTION over CONTEXT; local tiers are scripted (answering "2021") unless ``real``."""
    events: list[object] = []
    factory = None if real else scripted_factory(small=Script("2021"), large=Script("2021"))
    cascade = Cascade(config, approve=approve, backend_factory=factory)
    try:
        trace = cascade.ask(CONTEXT, QUESTION, events.append, **kw)
    finally:
        cascade.close()
    return trace, events


def bodies(server: RecordingServer) -> list[str]:
    return [r["body"].decode("utf-8") for r in server.requests if r["path"].endswith("/chat/completions")]


# --------------------------------------------------------------------------- remote = never / ask


def test_never_opens_no_socket(server: RecordingServer, remote_config):
    trace, events = run(remote_config(server.base_url, 'remote = "never"\nsend = "full"'))
    assert server.requests == []
    assert trace.tier == "small" and trace.decision == "blocked" and "never" in trace.notice
    assert any(isinstance(e, Blocked) for e in events)
    assert not default_paths().egress_log.exists()  # nothing left, so nothing was logged


def test_ask_with_nobody_to_ask_sends_nothing(server: RecordingServer, remote_config):
    trace, _ = run(remote_config(server.base_url, 'remote = "ask"'))
    assert server.requests == [] and trace.decision == "blocked" and "nobody was asked" in trace.notice


def test_ask_declined_sends_nothing_and_showed_the_exact_request(server: RecordingServer, remote_config):
    shown: list[Receipt] = []

    def decline(r: Receipt) -> bool:
        shown.append(r)
        assert server.requests == []  # nothing before approval
        return False

    trace, events = run(remote_config(server.base_url, 'remote = "ask"\nsend = "question"'), approve=decline)
    assert server.requests == []
    assert len(shown) == 1 and json.loads(shown[0].payload)["messages"][-1]["content"] == f"Question: {QUESTION}"
    assert trace.tier == "small" and "declined" in trace.notice
    assert [type(e).__name__ for e in events if isinstance(e, EgressPending | Blocked)] == ["EgressPending", "Blocked"]


def test_ask_approved_sends_exactly_the_shown_bytes_and_logs_them(server: RecordingServer, remote_config):
    shown: list[Receipt] = []

    def approve(r: Receipt) -> bool:
        shown.append(r)
        return True

    server.answer = "2021"
    config = remote_config(server.base_url, 'remote = "ask"\nsend = "full"', real=True)
    trace, events = run(config, approve=approve, real=True)
    assert [r["body"] for r in server.requests] == [shown[0].payload]  # byte for byte what was shown
    assert trace.tier == "remote" and trace.answer == "2021" and trace.decision == "route"
    sent = next(e for e in events if isinstance(e, EgressSent))
    log = EgressLog(default_paths().egress_log)
    entry = log.get(sent.entry_id)
    log.close()
    assert entry is not None and entry.payload == shown[0].payload and entry.sha256 == shown[0].sha256
    assert entry.outcome == "ok" and entry.attempts == 1 and entry.host == f"127.0.0.1:{server.port}"
    assert trace.steps[-1].egress_id == sent.entry_id


# --------------------------------------------------------------------------- send / redact / private


def test_send_question_sends_only_the_question(server: RecordingServer, remote_config):
    run(remote_config(server.base_url, 'remote = "allow"\nsend = "question"'))
    (body,) = bodies(server)
    assert QUESTION in body
    for sentence in ("Jane Doe joined", "Part-Dieu district in 2021", *PII):
        assert sentence not in body


def test_send_relevant_sends_only_the_passage(server: RecordingServer, remote_config):
    run(remote_config(server.base_url, 'remote = "allow"\nsend = "relevant"'))
    (body,) = bodies(server)
    assert QUESTION in body
    user = json.loads(body)["messages"][-1]["content"]
    context_sent = user.split("Document:\n", 1)[1].split("\n\nQuestion:", 1)[0] if "Document:" in user else ""
    assert len(context_sent) < len(CONTEXT) / 2  # a window, not the document
    for value in PII:
        assert value not in body


def test_redact_keeps_planted_pii_off_the_network_and_maps_the_answer_back(server: RecordingServer, remote_config):
    server.answer = "Write to [EMAIL_1]"
    trace, events = run(remote_config(server.base_url, 'remote = "allow"\nsend = "full"\nredact = ["all"]'))
    (body,) = bodies(server)
    assert "Part-Dieu" in body  # the context went…
    for value in PII:  # … without any of the planted personal data
        assert value not in body
        assert value.replace(" ", "") not in body
    assert "[EMAIL_1]" in body
    assert trace.answer == f"Write to {EMAIL}"  # mapped back locally
    sent = next(e for e in events if isinstance(e, EgressSent))
    assert sent.receipt.redactions.get("email") == 1 and sum(sent.receipt.redactions.values()) >= 6


def test_private_document_never_leaves(server: RecordingServer, remote_config, tmp_path: Path):
    doc = tmp_path / "hr" / "jane.md"
    policy = f'remote = "allow"\nsend = "full"\nprivate = ["{tmp_path / "hr"}/**"]'
    trace, _ = run(remote_config(server.base_url, policy), document=str(doc))
    assert server.requests == []
    assert trace.tier == "small" and "private" in trace.notice
    trace, _ = run(remote_config(server.base_url, policy), document=str(tmp_path / "pub.md"))
    assert len(bodies(server)) == 1  # a document outside the rule goes


def test_private_tag(server: RecordingServer, remote_config):
    trace, _ = run(remote_config(server.base_url, 'remote = "allow"\nprivate = ["tag:hr"]'), tags=("HR",))
    assert server.requests == [] and "private" in trace.notice


# --------------------------------------------------------------------------- faults: best local answer, logged


@pytest.mark.parametrize("mode", ["500", "drop", "garbage", "401"])
def test_remote_fault_falls_back_to_the_local_answer(server: RecordingServer, remote_config, mode: str):
    server.mode = mode
    trace, events = run(remote_config(server.base_url, 'remote = "allow"', retries=1))
    failed = next(e for e in events if isinstance(e, RemoteFailed))
    assert failed.fallback_tier == "small"
    assert trace.tier == "small" and trace.decision == "fallback" and "best local answer" in trace.notice
    assert trace.answer == trace.steps[0].answer
    log = EgressLog(default_paths().egress_log)
    (entry,) = log.entries()
    log.close()
    assert entry.outcome == "error" and entry.detail
    assert entry.attempts == len(bodies(server)) >= 1  # every send counted


def test_slow_remote_is_cut_at_the_timeout(server: RecordingServer, remote_config):
    server.mode, server.delay = "slow", 30.0
    t0 = time.perf_counter()
    trace, _ = run(remote_config(server.base_url, 'remote = "allow"', timeout=1.5, retries=0))
    assert time.perf_counter() - t0 < 5  # 1.5 s, never the server's 30 s
    assert trace.decision == "fallback" and trace.tier == "small"


def test_connection_refused_falls_back(remote_config):
    trace, _ = run(remote_config("http://127.0.0.1:9/v1", 'remote = "allow"', retries=0))
    assert trace.decision == "fallback" and "refused" in trace.notice


# --------------------------------------------------------------------------- the CLI, end to end


def test_cli_ask_remote_then_audit(server: RecordingServer, remote_config, tmp_path: Path, hermetic_home: Path):
    cfg = remote_config(server.base_url, 'remote = "allow"\nsend = "question"\nredact = ["email"]', real=True)
    ctx = tmp_path / "ctx.txt"
    ctx.write_text(CONTEXT)
    env = {"AUTOMIX_LOCAL_HOME": str(hermetic_home), "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(
        [cli_path(), "ask", "--config", str(cfg.source_file), "--context", str(ctx), "--json", f"Email {EMAIL}?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    assert trace["tier"] == "remote" and trace["steps"][-1]["redactions"] == {"email": 1}
    (body,) = bodies(server)
    assert EMAIL not in body
    audit = subprocess.run([cli_path(), "audit", "--json"], capture_output=True, text=True, env=env, timeout=60)
    (row,) = json.loads(audit.stdout)
    assert row["id"] == trace["steps"][-1]["egress_id"] and row["bytes"] == len(server.requests[0]["body"])
    shown = subprocess.run([cli_path(), "audit", "--show", str(row["id"])], capture_output=True, env=env, timeout=60)
    assert shown.stdout == server.requests[0]["body"] + b"\n"


def test_cli_ask_policy_override_never(server: RecordingServer, remote_config, tmp_path: Path, hermetic_home):
    cfg = remote_config(server.base_url, 'remote = "allow"', real=True)
    env = {"AUTOMIX_LOCAL_HOME": str(hermetic_home), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [
            cli_path(),
            "ask",
            "--config",
            str(cfg.source_file),
            "--context",
            "-",
            "--remote",
            "never",
            "--json",
            QUESTION,
        ],
        input=CONTEXT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["decision"] == "blocked" and server.requests == []


# --------------------------------------------------------------------------- the real llama.cpp server


@pytest.fixture(scope="module")
def llama_server(model_path: Path) -> Iterator[LlamaServer]:
    with LlamaServer(model_path) as s:
        yield s


def test_escalates_to_a_real_llama_cpp_server(llama_server: LlamaServer, remote_config):
    config = remote_config(llama_server.base_url, 'remote = "allow"\nsend = "full"', timeout=60, real=True)
    trace, _ = run(config, real=True)
    assert trace.tier == "remote" and trace.decision == "route" and trace.notice is None
    assert trace.answer.strip()
    step = trace.steps[-1]
    assert step.tokens_in > 0 and step.tokens_out > 0 and step.cost >= 50.0


def test_three_tiers_small_large_remote(server: RecordingServer, tmp_path: Path, write_config):
    """small → large (local) → remote: the relevant passage is chosen from the best local answer."""
    text = local_tier(tmp_path, "small", cost=1.0, max_tokens=16) + local_tier(tmp_path, "large", cost=3.0)
    text += f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{server.base_url}"\nmodel = "m"\n'
    text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\n[policy]\nremote = "allow"\nsend = "relevant"\n'
    server.answer = "2021"
    trace, events = run(load_config(write_config(text), default_paths()))
    assert [s.tier for s in trace.steps] == ["small", "large", "remote"]
    assert [e.to_tier for e in events if type(e).__name__ == "Escalated"] == ["large", "remote"]
    assert trace.answer == "2021" and trace.steps[1].decision == "route"
    (body,) = bodies(server)
    assert QUESTION in body and EMAIL not in body  # a window of the context, not the whole of it


@pytest.mark.parametrize("reply", ["y", "n"])
def test_cli_ask_policy_asks_on_the_terminal(server: RecordingServer, remote_config, hermetic_home, reply: str):
    """Under remote = "ask", `ask` prints the receipt to the terminal and sends only on "y" (a real pty)."""
    import os
    import pty

    cfg = remote_config(server.base_url, 'remote = "ask"\nsend = "question"', real=True)
    argv = [cli_path(), "ask", "--config", str(cfg.source_file), "--no-context", QUESTION]
    env = {**os.environ, "AUTOMIX_LOCAL_HOME": str(hermetic_home), "OMP_WAIT_POLICY": "PASSIVE"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal
        os.execve(argv[0], argv, env)
    out = b""
    deadline = time.monotonic() + 120
    try:
        while b"[y/N]" not in out and time.monotonic() < deadline:
            out += os.read(fd, 4096)
        assert b"egress receipt" in out and server.requests == []  # shown, nothing sent yet
        os.write(fd, reply.encode() + b"\n")
        while time.monotonic() < deadline:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    assert len(bodies(server)) == (1 if reply == "y" else 0)
    assert (b"declined" in out) is (reply == "n")


def test_always_large_onto_a_remote_tier_is_refused_with_the_fix(server: RecordingServer, model_path, write_config):
    text = tier_toml("small", model_path)
    text += f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{server.base_url}"\nmodel = "m"\n'
    text += '[cascade]\nrouter = "always_large"\n[policy]\nremote = "allow"\n'
    from automix_local.cascade import CascadeError

    with pytest.raises(CascadeError, match='starts at remote tier .*use router = "threshold"'):
        run(load_config(write_config(text), default_paths()))
    assert server.requests == []


def test_eval_run_refuses_a_remote_tier_before_writing_anything(remote_config, tmp_path: Path):
    from automix_local.evaluation import EvalError, run_eval

    out = tmp_path / "run"
    with pytest.raises(EvalError, match="is remote: `eval run` records local tiers only"):
        config = remote_config("http://127.0.0.1:9/v1", 'remote = "allow"')
        run_eval(config, ROOT / "tests" / "data" / "squad20.jsonl", out)
    assert not out.exists()


# --------------------------------------------------------------------------- follow-up questions

EARLIER = (("Who is the head of procurement?", "Jane Doe"), ("How can she be reached by email?", EMAIL))


@pytest.mark.parametrize("send", ["question", "relevant", "full"])
def test_earlier_turns_leave_only_as_the_policy_allows(server: RecordingServer, remote_config, send: str):
    """send = "question": the user's earlier questions, never what the document answered; "relevant" and
    "full": questions and answers as turns. Redacted like the rest, and in the receipt that was shown."""
    shown: list[Receipt] = []

    def approve(r: Receipt) -> bool:
        shown.append(r)
        return True

    config = remote_config(server.base_url, f'remote = "ask"\nsend = "{send}"\nredact = ["all"]')
    trace, _ = run(config, approve=approve, history=EARLIER)
    (body,) = bodies(server)
    assert body.encode() == shown[0].payload  # what left is what was shown
    assert trace.turns == 2
    messages = json.loads(body)["messages"]
    for question, _ in EARLIER:
        assert question in body
    assert EMAIL not in body  # an earlier answer is redacted like the context
    if send == "question":
        assert "Jane Doe" not in body and "[EMAIL_1]" not in body  # earlier answers are withheld
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[-1]["content"].index(EARLIER[0][0]) < messages[-1]["content"].index(QUESTION)
    else:
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert messages[2]["content"] == "Jane Doe" and messages[4]["content"] == "[EMAIL_1]"
        assert messages[-1]["content"] == f"Question: {QUESTION}"
        assert "with 2 earlier turns (questions and answers)" in shown[0].reason
