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

TIMING = {"seconds", "answer_seconds", "verify_seconds", "prompt_seconds", "gen_seconds", "conversation"}


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


# --------------------------------------------------------------------------- the service on scripted tiers

CONTEXT = "Carol Diaz joined the company in 2001. Alice Park joined in 2010. Carol Diaz left the company in 2015."


@pytest.fixture
def scripted(tmp_path: Path):
    """An ask service over two scripted tiers (threshold 0.5): the small tier is sure (0.9) unless told."""
    from automix_local.ask import AskService
    from automix_local.cascade import Cascade

    from .fake_tier import Script, scripted_config, scripted_factory

    made = []

    def make(small: Script | None = None, large: Script | None = None, **kw: object):
        config = scripted_config(tmp_path, ["small", "large"], cascade={"threshold": 0.5}, **kw)  # type: ignore[arg-type]
        factory = scripted_factory(
            small=small or Script({"Who joined in 2001?": "Carol Diaz", "*": "2015"}, verdict=0.9),
            large=large or Script("2015"),
        )
        service = AskService(config, Cascade(config, backend_factory=factory))
        made.append(service)
        return service, factory

    yield make
    for service in made:
        service.close()
        service.cascade.close()


def drain(service, question):
    from automix_local.streams import Returning

    events = Returning(service.ask(question))
    seen = list(events)
    return seen, events.value


def test_every_question_is_a_saved_turn_whose_trace_is_the_answer_object(scripted):
    from automix_local.ask import Done, Question, Source

    service, _ = scripted()
    seen, answer = drain(service, Question("Who joined in 2001?", Source.context(CONTEXT)))
    assert isinstance(seen[-1], Done) and seen[-1].answer is answer
    assert answer.text == "Carol Diaz" and answer.trace.decision == "keep" and answer.egress == []
    conv = service.store().load(answer.conversation)
    assert conv.context == CONTEXT and conv.scope is None and [t.status for t in conv.turns] == ["done"]
    assert conv.turns[0].trace == answer.to_json() and conv.turns[0].id == answer.turn


def test_closing_the_service_waits_for_the_turn_being_saved(scripted, monkeypatch: pytest.MonkeyPatch):
    """The app closes the service when it quits, maybe while its worker thread saves an answer: the close must wait
    for that write (a SQLite connection closed while in use crashed the process: a segfault in CI). The write is
    slowed down to hold the race open; the database is real."""
    import threading
    import time

    from automix_local.ask import Question, Source
    from automix_local.storage import Store

    writing, slow = threading.Event(), Store.finish_turn

    def finish_turn(self, *args, **kw):
        writing.set()
        time.sleep(0.3)
        return slow(self, *args, **kw)

    monkeypatch.setattr(Store, "finish_turn", finish_turn)
    service, _ = scripted()
    done: list[object] = []
    worker = threading.Thread(target=lambda: done.append(drain(service, Question("Who?", Source.context(CONTEXT)))))
    worker.start()
    assert writing.wait(10)
    service.close()  # while the answer is being written
    worker.join(10)
    assert done and not worker.is_alive()
    answer = done[0][1]  # type: ignore[index]
    reopened = Store(service.store_path)
    try:
        assert [t.status for t in reopened.load(answer.conversation).turns] == ["done"]
    finally:
        reopened.close()


def test_a_follow_up_reads_only_the_turns_asked_over_the_same_source(scripted):
    from automix_local.ask import Question, Source

    service, factory = scripted()
    first = drain(service, Question("Who joined in 2001?", Source.context(CONTEXT)))[1]
    cid = first.conversation
    other = drain(service, Question("What is two plus two?", Source.nothing(), conversation=cid))[1]
    assert other.trace.turns == 0 and "Who joined in 2001?" not in factory["small"].calls[-1].prompt
    follow = drain(service, Question("When did she leave?", conversation=cid))[1]  # the conversation's context
    assert follow.trace.turns == 1 and follow.source.kind == "context"
    assert "Who joined in 2001?" in factory["small"].calls[-1].prompt and CONTEXT in factory["small"].calls[-1].prompt
    assert [t.question for t in service.store().load(cid).turns][-1] == "When did she leave?"


def test_a_closed_ask_is_a_cancelled_turn_and_a_failed_one_an_error_turn(scripted):
    from automix_local.ask import Question, Source
    from automix_local.backends.base import BackendError
    from automix_local.errors import AutomixError

    from .fake_tier import Script

    service, _ = scripted(small=Script("Carol Diaz joined the company then", token_delay=0.001))
    events = service.ask(Question("Who joined in 2001?", Source.context(CONTEXT)))
    next(events), next(events)  # the question is saved and the small tier has started
    events.close()
    store = service.store()
    assert [t.status for t in store.load(store.conversations()[0].id).turns] == ["cancelled"]
    failing, _ = scripted(small=Script(fail=BackendError("the model file went away")))
    with pytest.raises(AutomixError, match="went away"):
        drain(failing, Question("Who joined in 2001?", Source.context(CONTEXT)))
    turn = failing.store().load(failing.store().conversations()[0].id).turns[-1]
    assert turn.status == "error" and turn.answer == "the model file went away"


def test_a_store_that_cannot_be_opened_does_not_stop_the_answer(scripted):
    from automix_local.ask import Question, Source

    service, _ = scripted()
    service.store_path.parent.mkdir(parents=True, exist_ok=True)
    service.store_path.write_bytes(b"this is not a database" * 100)
    answer = drain(service, Question("Who joined in 2001?", Source.context(CONTEXT)))[1]
    assert answer.text == "Carol Diaz" and answer.conversation is None
    assert (
        answer.warnings
        and answer.warnings[0].startswith("not saved: ")
        and "conversation database" in answer.warnings[0]
    )


def test_a_conversations_policy_change_is_saved_and_applies_to_its_follow_ups(scripted):
    from automix_local.ask import Question, Source

    service, _ = scripted()
    first = drain(service, Question("Who joined in 2001?", Source.context(CONTEXT), policy={"send": "full"}))[1]
    assert service.store().load(first.conversation).policy == {"send": "full"}
    drain(service, Question("When did she leave?", conversation=first.conversation))
    assert service.cascade.policy.send == "full"
    drain(service, Question("Who joined in 2001?", Source.context(CONTEXT)))  # a new conversation: models.toml's
    assert service.cascade.policy.send == service.config.policy.send == "question"


def test_an_empty_context_and_an_empty_question_are_usage_errors(scripted):
    from automix_local.ask import EmptyContext, Question, Source
    from automix_local.errors import UsageError

    service, factory = scripted()
    with pytest.raises(EmptyContext) as empty:
        drain(service, Question("Who?", Source.context("  \n")))
    assert empty.value.exit_code == 2 and empty.value.http_status == 400
    with pytest.raises(UsageError):
        drain(service, Question("   ", Source.context(CONTEXT)))
    assert "small" not in factory  # no model was asked for


def test_nothing_relevant_in_the_library_is_a_saved_not_found_answer_and_no_model_is_asked(scripted, tmp_path: Path):
    from automix_local.ask import Question, Retrieval, Source
    from automix_local.documents.library import Library, default_path

    service, factory = scripted()
    folder = tmp_path / "towns"
    folder.mkdir()
    for town, trade, sight in TOWNS:  # more than fits the window: passages are retrieved
        line = f"In {town} the people are known for {trade}, and visitors come to see {sight}. "
        (folder / f"{town.lower()}.txt").write_text(line * 40, encoding="utf-8")
    with Library(default_path(service.config.paths.data_dir)) as lib:
        lib.add([folder])
    seen, answer = drain(service, Question("Which zebra plays the bassoon?", Source.library()))
    assert isinstance(seen[0], Retrieval) and answer.not_found and answer.not_found_reason == "retrieval"
    assert answer.text.startswith("Not in your documents") and answer.trace.steps == [] and answer.trace.cost == 0
    assert factory["small"].count("stream") == 0  # no model was asked
    saved = service.store().load(answer.conversation)
    assert saved.scope == [] and saved.turns[0].trace["not_found"] is True
    found = drain(service, Question("What is Corvo known for?", Source.library(["corvo.txt"])))[1]
    assert found.source.names == ("corvo.txt",) and found.retrieved is not None
    assert factory["small"].count("stream") == 1 and "wool weaving" in factory["small"].calls[-1].prompt
