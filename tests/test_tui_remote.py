"""The app escalating to a remote tier: the egress receipt under `ask`, per-conversation overrides.

Real SmolLM2 small tier, a real recording HTTP server as the remote tier, driven by Textual's Pilot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Static, TextArea

from automix_local.config import load_config
from automix_local.explain import shown_answer
from automix_local.storage import Store
from automix_local.tui.app import AutomixApp
from automix_local.tui.screens import AuditScreen, EgressScreen
from automix_local.tui.widgets import AnswerBlock

from .conftest import SQUAD_CONTEXT, tier_toml
from .remote_server import RecordingServer
from .test_tui import ask, wait_until


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        s.answer = "Rollo"
        yield s


@pytest.fixture
def make_app(model_path: Path, write_config, tmp_path: Path, server: RecordingServer):
    ctx = tmp_path / "normans.txt"
    ctx.write_text(SQUAD_CONTEXT)

    def make(policy: str) -> AutomixApp:
        text = tier_toml("small", model_path, max_tokens=16)
        text += (
            f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{server.base_url}"\nmodel = "gpt-test"\n'
            "timeout = 5\ncost = 50\n"
        )
        text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\n[policy]\n' + policy
        return AutomixApp(load_config(write_config(text)), ctx)

    return make


async def receipt_shown(app: AutomixApp, pilot) -> None:
    """The receipt is up, mounted, and the safe choice ("Don't send") has the focus."""

    def ready() -> bool:
        screen = app.screen
        return (
            isinstance(screen, EgressScreen)
            and bool(screen.query("#decline"))
            and (screen.focused is screen.query_one("#decline", Button))
        )

    await wait_until(pilot, ready, timeout=60, what="egress receipt with the safe button focused")
    await pilot.pause()


async def test_ask_shows_the_receipt_and_sends_nothing_when_declined(make_app, server: RecordingServer):
    app = make_app('remote = "ask"\nsend = "question"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        assert "remote ask · send question" in str(app.query_one("#status").content)
        await ask(app, pilot)
        await receipt_shown(app, pilot)
        payload = app.screen.query_one("#payload", TextArea).text
        assert json.loads(payload)["messages"][-1]["content"].startswith("Question: Who was the leader")
        assert server.requests == []  # shown, not sent
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        assert server.requests == []
        notes = [str(s.content) for s in app.query(".notice-line").results(Static)]
        assert any("declined" in n for n in notes)
        block = app.query_one(AnswerBlock)
        assert block.tier == "small" and "answered locally" in str(block.badge.content)


async def test_ask_approved_sends_and_badges_the_remote_answer(make_app, server: RecordingServer):
    app = make_app('remote = "ask"\nsend = "full"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await receipt_shown(app, pilot)
        shown = app.screen.receipt.payload
        await pilot.click("#send")
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        assert [r["body"] for r in server.requests] == [shown]
        blocks = list(app.query(AnswerBlock).results(AnswerBlock))
        assert [b.tier for b in blocks] == ["small", "remote"]
        assert blocks[-1].text == "Rollo" and "☁ remote" in str(blocks[-1].badge.content)
        assert "audit #1" in str(blocks[-1].badge.content)
        app.settings.audit()  # the egress log in the app: the row, and the exact bytes that left
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen), timeout=10, what="egress log")
        await pilot.pause()
        assert app.screen.query_one(DataTable).row_count == 1
        assert app.screen.query_one("#payload", TextArea).text.encode() == shown
        await pilot.press("escape")


async def test_per_conversation_override_is_enforced_and_saved(make_app, server: RecordingServer):
    app = make_app('remote = "allow"\nsend = "full"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.models_state == "ready", what="models loaded")
        app.settings.set_policy("remote", "never")
        assert "local only (this conversation)" in str(app.query_one("#status").content)
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        assert server.requests == []
        cid = app.conversation_id
    store = Store(app.config.paths.data_dir / "conversations.db")
    conv = store.load(cid)
    store.close()
    assert conv.policy == {"remote": "never"} and conv.document and conv.document.endswith("normans.txt")


async def test_remote_failure_shows_the_local_answer_and_says_so(make_app, server: RecordingServer):
    server.mode = "500"
    app = make_app('remote = "allow"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(pilot, lambda: app.answering is None, timeout=60, what="answer finished")
        blocks = list(app.query(AnswerBlock).results(AnswerBlock))
        assert "failed" in str(blocks[-1].badge.content) and blocks[-1].has_class("superseded")
        assert not blocks[0].has_class("superseded")
        assert app.last_answer and blocks[0].text == shown_answer(app.last_answer)  # the local answer is kept
        notes = [str(s.content) for s in app.query(".notice-line").results(Static)]
        assert any("best local answer" in n for n in notes)


async def test_cancel_during_a_remote_stream_stops_it_and_logs_it(make_app, server: RecordingServer):
    server.mode, server.delay = "trickle", 0.3
    app = make_app('remote = "allow"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await wait_until(
            pilot,
            lambda: any(b.tier == "remote" and b.text for b in app.query(AnswerBlock).results(AnswerBlock)),
            timeout=60,
            what="remote tokens",
        )
        await pilot.press("escape")
        await wait_until(
            pilot,
            lambda: app.workers._workers == set() or not any(w.group == "answer" and w.is_running for w in app.workers),
            timeout=5,
            what="answer worker to stop",
        )
        assert app.query_one("#question").value.startswith("Who was the leader")
    from automix_local.audit import EgressLog

    log = EgressLog(app.config.paths.egress_log)
    (entry,) = log.entries()
    log.close()
    assert entry.outcome == "cancelled"


async def test_saved_versus_always_large_counts_a_per_token_price(model_path: Path, write_config, tmp_path: Path):
    """A remote tier priced per million tokens: the session's "always-remote" figure is what its call cost,
    not zero (the app once counted only per-call and per-1k prices)."""
    with RecordingServer() as server:
        server.answer = "Rollo"
        server.usage = (300, 2)  # the remote's own count: 300 × 1 + 2 × 2 units
        ctx = tmp_path / "normans.txt"
        ctx.write_text(SQUAD_CONTEXT)
        text = tier_toml("small", model_path, max_tokens=16)
        text += (
            f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{server.base_url}"\nmodel = "m"\n'
            "timeout = 5\ncost = 0\ncost_input_per_1m = 1000000\ncost_output_per_1m = 2000000\n"
        )
        text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\n[policy]\nremote = "allow"\nsend = "full"\n'
        app = AutomixApp(load_config(write_config(text)), ctx)
        async with app.run_test(size=(120, 40)) as pilot:
            await ask(app, pilot)
            await wait_until(pilot, lambda: app.answering is None, timeout=120, what="answer finished")
            assert app.session.large_cost == pytest.approx(304.0)
            assert "vs 304.00 always-remote" in str(app.query_one("#totals", Static).content)


async def test_names_are_replaced_on_the_receipt_and_put_back_in_the_answer_shown(
    make_app, server: RecordingServer, ner_model_path: Path
):
    """redact = ["names"] in the app: the receipt lists what each placeholder replaced (shown here only), the
    request that leaves holds the placeholders, and the answer shown has the value back."""
    server.answer = "[PERSON_1]"
    app = make_app(f'remote = "ask"\nsend = "full"\nredact = ["names"]\n[ner]\npath = "{ner_model_path}"\n')
    async with app.run_test(size=(120, 40)) as pilot:
        await ask(app, pilot)
        await receipt_shown(app, pilot)
        receipt = app.screen.receipt
        person = receipt.replaced["[PERSON_1]"]
        assert "Rollo" in receipt.replaced.values() and "Rollo" not in receipt.payload.decode()
        meta = str(app.screen.query_one("#meta", Static).content)
        assert f"[PERSON_1] ← {person}" in meta and "replaced (shown here only)" in meta
        await pilot.click("#send")
        await wait_until(pilot, lambda: app.answering is None, what="answer finished")
        (request,) = server.requests
        assert request["body"] == receipt.payload
        assert not re.search(rf"\b{re.escape(person)}\b", request["body"].decode())  # "Norseman" may stay
        blocks = list(app.query(AnswerBlock).results(AnswerBlock))
        assert blocks[-1].tier == "remote" and blocks[-1].text == person  # put back, on this machine
