"""One question flow: the CLI and the server ask through the same service and give the same Answer."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from automix_local.config import load_config
from automix_local.paths import default_paths

from .conftest import cli_path, tier_toml
from .test_docs_cli import TOWNS
from .test_server import running

TIMING = {"seconds", "answer_seconds", "verify_seconds", "conversation"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=300)


def shape(obj: object) -> object:
    """The JSON's structure and values, less what differs between two runs of the same question (timings,
    the conversation's id)."""
    if isinstance(obj, dict):
        return {k: shape(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [shape(v) for v in obj]
    return obj


@pytest.fixture
def library_config(model_path: Path, write_config, tmp_path: Path) -> Path:
    cfg = write_config(tier_toml("small", model_path, max_tokens=24) + '[cascade]\nrouter = "always_small"\n')
    folder = tmp_path / "towns"
    folder.mkdir()
    for town, trade, sight in TOWNS:  # more than fits the window: passages are retrieved
        body = " ".join(
            f"In {town} the people are known for {trade}, and visitors come to see {sight}." for _ in range(40)
        )
        (folder / f"{town.lower()}.txt").write_text(body + "\n", encoding="utf-8")
    assert run("docs", "add", str(folder), "--config", str(cfg)).returncode == 0
    return cfg


@pytest.mark.parametrize(
    "question, found",
    [("What is Corvo known for?", True), ("Which zebra plays the bassoon?", False)],
)
def test_ask_and_serve_give_the_same_answer_object(library_config: Path, question: str, found: bool):
    """The same question over the same documents: the same answer, citations, not-found decision and JSON shape
    from `ask --all --json` and from serve's `automix` field (a not-found answer too, with seconds and cost)."""
    cli = json.loads(run("ask", "--all", "--json", "--config", str(library_config), question).stdout)
    with running(load_config(library_config, default_paths())) as (url, _):
        body = {"messages": [{"role": "user", "content": question}], "documents": []}
        served = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120).json()
    over_http = served["automix"]
    assert shape(over_http) == shape(cli)
    assert served["choices"][0]["message"]["content"] == cli["answer_shown"]
    assert cli["not_found"] is (not found) and cli["source"] == {"kind": "library"}
    assert isinstance(cli["seconds"], float) and cli["cost"] >= 0 and "seconds" in cli["retrieval"]
    if found:
        assert cli["citations"] and cli["citations"][0]["document"] == "corvo.txt" and cli["steps"]
    else:
        assert cli["decision"] == "not_found" and cli["not_found_reason"] == "retrieval" and cli["steps"] == []
        assert cli["answer_shown"].startswith("Not in your documents") and cli["cost"] == 0
