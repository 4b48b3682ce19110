"""Snapshots of the app's screens (pytest-textual-snapshot); nothing time-dependent is shown."""

from __future__ import annotations

import json
import time

from automix_local.config import load_config
from automix_local.paths import default_paths
from automix_local.storage import Store
from automix_local.tui.app import AutomixApp

from .conftest import ROOT, SQUAD_CONTEXT

CONFIG = ROOT / "tests" / "data" / "tui-snapshot.toml"

TRACE = {
    "question": "Who was the leader of the Norse raiders?",
    "answer": "Rollo",
    "tier": "large",
    "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "decision": "route",
    "confidence": None,
    "seconds": 3.2,
    "cost": 12.0,
    "steps": [
        {
            "tier": "small",
            "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "answer": "King Charles III",
            "confidence": 0.31,
            "tokens_in": 912,
            "tokens_out": 4,
            "seconds": 2.1,
            "cost": 2.0,
            "answer_seconds": 0.6,
            "verify_seconds": 1.5,
            "abstained": False,
            "decision": "route",
            "reason": "confidence 0.31 < threshold 0.50",
            "verifier": "logprob",
            "signal": "verifier_logprob",
        },
        {
            "tier": "large",
            "model": "SmolLM2-135M-Instruct.Q4_1.gguf",
            "answer": "Rollo",
            "confidence": None,
            "tokens_in": 230,
            "tokens_out": 2,
            "seconds": 1.1,
            "cost": 10.0,
            "answer_seconds": 1.1,
            "verify_seconds": 0.0,
            "abstained": False,
            "decision": None,
            "reason": None,
        },
    ],
}


async def _ready(pilot) -> None:
    """Wait for the models, then freeze what changes with time: notifications and the blinking cursor."""
    app = pilot.app
    t0 = time.monotonic()
    while app.models_state != "ready" and time.monotonic() - t0 < 120:
        await pilot.pause(0.05)
    app.clear_notifications()
    for box in app.query("Input"):
        box.cursor_blink = False
    await pilot.pause()


def test_main_screen(snap_compare, tmp_path):
    ctx = tmp_path / "normans.txt"
    ctx.write_text(SQUAD_CONTEXT)
    app = AutomixApp(load_config(CONFIG), ctx)
    assert snap_compare(app, terminal_size=(120, 36), run_before=_ready)


def test_trace_pane_of_a_reopened_conversation(snap_compare):
    store = Store(default_paths().data_dir / "conversations.db")
    cid = store.create("Normans", SQUAD_CONTEXT, str(CONFIG))
    tid = store.add_turn(cid, TRACE["question"])
    store.finish_turn(tid, "done", "Rollo", "large", TRACE)
    store.close()
    app = AutomixApp(load_config(CONFIG))

    async def open_it(pilot) -> None:
        await _ready(pilot)
        app._open_conversation(cid)
        await pilot.press("ctrl+t")
        await pilot.pause()
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(160, 36), run_before=open_it)


def test_missing_model_screen(snap_compare):
    app = AutomixApp(load_config(ROOT / "tests" / "data" / "tui-missing.toml"))

    async def shown(pilot) -> None:
        t0 = time.monotonic()
        while type(app.screen).__name__ != "MissingModelsScreen" and time.monotonic() - t0 < 30:
            await pilot.pause(0.05)
        for box in app.query("Input"):
            box.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 36), run_before=shown)


def test_egress_receipt_screen(snap_compare, tmp_path):
    """The `ask` policy's receipt: what would leave, byte for byte, with the safe button focused."""
    from automix_local.audit import Receipt
    from automix_local.prompts import remote_messages
    from automix_local.tui.screens import EgressScreen

    messages = remote_messages("What is the email of Jane?", "Her email is [EMAIL_1].", placeholders=True)
    payload = json.dumps(
        {"model": "gpt-test", "messages": messages, "max_tokens": 64, "temperature": 0.0, "stream": True},
        separators=(",", ":"),
    ).encode()
    receipt = Receipt(
        tier="cloud",
        host="api.example.com:443",
        url="https://api.example.com/v1/chat/completions",
        model="gpt-test",
        payload=payload,
        send="relevant",
        redactions={"email": 1},
        reason="the question and 23 of 141 context characters are sent; redacted 1 email",
    )
    ctx = tmp_path / "normans.txt"
    ctx.write_text(SQUAD_CONTEXT)
    app = AutomixApp(load_config(CONFIG), ctx)

    async def show(pilot) -> None:
        await _ready(pilot)
        app.push_screen(EgressScreen(receipt))
        await pilot.pause()
        for area in app.screen.query("TextArea"):
            area.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=show)
