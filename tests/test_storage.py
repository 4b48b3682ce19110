"""Conversation storage on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from automix_local.storage import SCHEMA_VERSION, Store, StoreError


def test_roundtrip_wal_and_schema_version(tmp_path: Path):
    db = tmp_path / "c.db"
    store = Store(db)
    cid = store.create("first question", "the context", "/cfg/models.toml")
    t1 = store.add_turn(cid, "Q1?")
    store.finish_turn(t1, "done", "A1", "small", {"tier": "small", "steps": []})
    t2 = store.add_turn(cid, "Q2?")  # a crash now loses only this answer
    store.close()

    again = Store(db)
    conv = again.load(cid)
    assert conv.context == "the context" and conv.title == "first question"
    assert [(t.question, t.answer, t.status) for t in conv.turns] == [("Q1?", "A1", "done"), ("Q2?", None, "pending")]
    assert conv.turns[0].trace == {"tier": "small", "steps": []} and conv.turns[1].id == t2
    assert [c.id for c in again.conversations()] == [cid]
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path: Path):
    db = tmp_path / "c.db"
    Store(db).close()
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer automix-local"):
        Store(db)


def test_not_a_database(tmp_path: Path):
    db = tmp_path / "c.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the conversation database"):
        Store(db)


def test_delete_cascades(tmp_path: Path):
    store = Store(tmp_path / "c.db")
    cid = store.create("t")
    store.add_turn(cid, "q")
    store.delete(cid)
    assert store.conversations() == []
    assert store.db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0


def test_document_scope_is_saved_and_an_old_database_is_upgraded(tmp_path: Path):
    db = tmp_path / "c.db"
    # a database written before the scope existed (schema 2), with a conversation in it
    raw = sqlite3.connect(db, isolation_level=None)
    from automix_local.storage import MIGRATIONS

    for step in MIGRATIONS[:2]:
        raw.executescript(step)
    raw.execute("PRAGMA user_version = 2")
    raw.execute("INSERT INTO conversations(title, context, created, updated) VALUES ('old', 'ctx', 1, 1)")
    raw.close()

    store = Store(db)
    old = store.conversations()[0]
    assert old.scope is None and old.context == "ctx"  # asked over its context, as before
    lib = store.create("library")
    store.set_scope(lib, [])
    two = store.create("two documents")
    store.set_scope(two, ["kettle.md", "manual.pdf"])
    store.close()

    again = Store(db)
    assert again.load(lib).scope == []
    assert again.load(two).scope == ["kettle.md", "manual.pdf"]
    again.set_scope(two, None)
    assert again.load(two).scope is None
