"""The app over the document library, in a real terminal, against `ask --all --json` on the same questions.

One ask service answers both (issue 21), so the app says "Not in your documents" exactly when the CLI's
JSON says ``not_found``, shows the same answer, and its export holds the same JSON object per turn. The
installed app runs in a pty read by pyte (tests/terminal.py); the real SmolLM2 model answers and the real
embedding model (nomic-embed-text-v1.5, whose measured similarity floor turns off-topic questions away)
ranks the passages.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import EMBEDDING_SHA, cli_path, tier_toml
from .terminal import Terminal

pytestmark = pytest.mark.slow

OFF_TOPIC = "Which player scored the winning goal in the 1998 World Cup final?"
ON_TOPIC = "When does the first ferry to Skara leave?"
DONE = re.compile(r"\[\d\] \S+|No passage contains|Not in your documents")  # what the end of an answer draws


@pytest.fixture
def library(model_path: Path, embedding_model_path: Path, tmp_path: Path, hermetic_home: Path) -> Path:
    """A config with the real embedding model, and a small library indexed (with vectors) by the CLI."""
    config = tmp_path / "models.toml"
    config.write_text(
        tier_toml("small", model_path, max_tokens=24)
        + tier_toml("large", model_path, max_tokens=24, cost=10.0)
        + '[cascade]\nrouter = "threshold"\nthreshold = 0.0\n'
        + f'[embedding]\npath = "{embedding_model_path}"\nsha256 = "{EMBEDDING_SHA}"\n',
        encoding="utf-8",
    )
    folder = tmp_path / "harbour"
    folder.mkdir()
    (folder / "ferry.txt").write_text(
        "Ferries to Skara run all year. The first ferry to Skara leaves at 06:40 from pier 3.\n", encoding="utf-8"
    )
    (folder / "festival.txt").write_text("The harbour festival of Kell takes place every August.\n", encoding="utf-8")
    added = cli("docs", "add", str(folder), config=config, home=hermetic_home)
    assert added.returncode == 0, added.stderr
    listed = json.loads(cli("docs", "list", "--json", config=config, home=hermetic_home).stdout)
    assert all(d["embedded"] == d["passages"] for d in listed)  # every passage has its vector
    return config


def cli(*args: str, config: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AUTOMIX_LOCAL_HOME": str(home)}
    return subprocess.run(
        [cli_path(), "--config", str(config), *args], env=env, capture_output=True, text=True, timeout=300
    )


def ask_json(question: str, config: Path, home: Path) -> dict:
    proc = cli("ask", "--all", "--json", "--no-save", question, config=config, home=home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def exported(home: Path, before: set[Path], timeout: float = 10) -> dict:
    """The JSON the app's export (ctrl+s) wrote after ``before`` was listed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = set(home.rglob("exports/conversation-*.json")) - before
        if new:
            (path,) = new
            time.sleep(0.2)  # written in one call; let it land
            return json.loads(path.read_text(encoding="utf-8"))
        time.sleep(0.1)
    raise AssertionError("the app wrote no export")


def same_answer(app: dict, cli: dict) -> None:
    """The app's saved turn and the CLI's JSON: the same object but for timings and the conversation."""
    assert app.keys() == cli.keys()
    for key in ("question", "answer", "answer_shown", "tier", "decision", "abstained", "not_found"):
        assert app[key] == cli[key], key
    assert app["not_found_reason"] == cli["not_found_reason"] and app["citations"] == cli["citations"]
    assert [s["answer"] for s in app["steps"]] == [s["answer"] for s in cli["steps"]]
    drop = {"seconds"}
    assert {k: v for k, v in app["retrieval"].items() if k not in drop} == {
        k: v for k, v in cli["retrieval"].items() if k not in drop
    }
    assert app["source"] == cli["source"] == {"kind": "library"}


def test_the_app_says_not_in_your_documents_exactly_when_ask_does(library: Path, hermetic_home: Path):
    cli_says = {q: ask_json(q, library, hermetic_home) for q in (OFF_TOPIC, ON_TOPIC)}
    assert cli_says[OFF_TOPIC]["not_found"] is True and cli_says[OFF_TOPIC]["not_found_reason"] == "retrieval"
    assert cli_says[ON_TOPIC]["not_found"] is False
    argv = [cli_path(), "--config", str(library)]
    with Terminal(argv, env={"AUTOMIX_LOCAL_HOME": str(hermetic_home)}, cols=130, rows=40) as term:
        term.wait_for("all models ready", timeout=240)
        term.press("ctrl+b")  # hide the context pane: the chat's lines are read below
        term.press("ctrl+f")
        term.wait_for("Document library", timeout=10)
        term.wait_for("2 documents, 2 passages · BM25 ready · vectors 2/2", timeout=10)
        term.type("w")
        term.wait_for("asking: the whole document library", timeout=10)
        for question in (OFF_TOPIC, ON_TOPIC):
            term.type(question)
            term.press("enter")
            answer = cli_says[question]
            shown = " ".join(answer["answer_shown"].split())
            screen = term.wait_for(
                lambda s, shown=shown: DONE.search(s) is not None and shown in " ".join(s.split()),
                timeout=240,
                what=f"the CLI's answer to {question}",
            )
            assert f"❯ {question}" in screen
            time.sleep(0.5)  # the rest of the frame
            assert ("Not in your documents" in term.text()) is answer["not_found"]
            before = set(hermetic_home.rglob("exports/conversation-*.json"))
            term.press("ctrl+s")
            (saved,) = exported(hermetic_home, before)["turns"]
            same_answer(saved, answer)
            term.press("ctrl+n")  # the next question without this one's turn: as the CLI asks it
            term.wait_for(lambda s, q=question: f"❯ {q}" not in s, timeout=10, what="the chat cleared")
        term.wait_for("Ask your documents…", timeout=10)  # a new conversation keeps what it asks
