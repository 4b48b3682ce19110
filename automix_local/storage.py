"""Conversations in SQLite: context, questions, answers and traces, saved as they happen.

WAL mode, so a crash loses at most the answer being generated. The schema is versioned in
``PRAGMA user_version`` and upgraded by ordered migration steps.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AutomixError

MIGRATIONS: list[str] = [
    # 1: conversations and their turns
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        context TEXT NOT NULL DEFAULT '',
        config_file TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        question TEXT NOT NULL,
        answer TEXT,
        tier TEXT,
        status TEXT NOT NULL DEFAULT 'pending',
        trace TEXT,
        created REAL NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns(conversation_id, id);
    """,
    # 2: per-conversation privacy: a policy override (JSON: remote/send) and the file the context came from
    """
    ALTER TABLE conversations ADD COLUMN policy TEXT;
    ALTER TABLE conversations ADD COLUMN document TEXT;
    """,
    # 3: what the conversation asks over when it is not its context: JSON null (the context), [] (the whole
    # document library) or a list of document names
    """
    ALTER TABLE conversations ADD COLUMN scope TEXT;
    """,
    # 4: each local tier's measured speed on this machine (speeds.py): exponentially weighted sums of seconds
    # and tokens, per tier, model file and where it runs (a changed model or setup starts afresh)
    """
    CREATE TABLE tier_speeds (
        tier TEXT NOT NULL,
        model TEXT NOT NULL,
        setup TEXT NOT NULL,
        prompt_seconds REAL NOT NULL,
        prompt_tokens REAL NOT NULL,
        gen_seconds REAL NOT NULL,
        gen_tokens REAL NOT NULL,
        observations INTEGER NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (tier, model, setup)
    );
    """,
]
DATABASE = "conversations.db"  # the history database's file name in the data dir
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(AutomixError):
    """The conversation database cannot be used. str() is the one line shown to the user."""


@dataclass(frozen=True)
class SpeedSums:
    """One local tier's running speed estimate as stored: exponentially weighted sums of the seconds and tokens
    it was observed to take (``speeds.SpeedBook`` does the arithmetic)."""

    prompt_seconds: float = 0.0
    prompt_tokens: float = 0.0
    gen_seconds: float = 0.0
    gen_tokens: float = 0.0
    observations: int = 0


@dataclass
class Turn:
    id: int
    question: str
    answer: str | None
    tier: str | None
    status: str  # "pending" | "done" | "cancelled" | "error"
    trace: dict[str, Any] | None
    created: float


@dataclass
class Conversation:
    id: int
    title: str
    context: str
    config_file: str | None
    created: float
    updated: float
    policy: dict[str, str] | None = None  # per-conversation override of [policy] remote / send
    document: str | None = None  # the file the context was read from (for private rules)
    scope: list[str] | None = None  # None: asked over the context; []: the whole library; else document names
    turns: list[Turn] = field(default_factory=list)


_CONV = "id, title, context, config_file, created, updated, policy, document, scope"


def _conversation(row: tuple[Any, ...]) -> Conversation:
    cid, title, context, config_file, created, updated = row[:6]
    return Conversation(
        cid,
        title,
        context,
        config_file,
        created,
        updated,
        policy=json.loads(row[6]) if row[6] else None,
        document=row[7],
        scope=json.loads(row[8]) if row[8] is not None else None,
    )


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open the conversation database ({exc})") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer automix-local (schema {version} > {SCHEMA_VERSION}); upgrade"
            )
        for step in range(version, SCHEMA_VERSION):
            self.db.executescript(f"BEGIN; {MIGRATIONS[step]} PRAGMA user_version = {step + 1}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ conversations
    def create(self, title: str, context: str = "", config_file: str | None = None) -> int:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO conversations(title, context, config_file, created, updated) VALUES (?, ?, ?, ?, ?)",
            (title, context, config_file, now, now),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_context(self, cid: int, context: str) -> None:
        self.db.execute("UPDATE conversations SET context = ?, updated = ? WHERE id = ?", (context, time.time(), cid))

    def set_privacy(self, cid: int, policy: dict[str, str] | None, document: str | None) -> None:
        self.db.execute(
            "UPDATE conversations SET policy = ?, document = ? WHERE id = ?",
            (json.dumps(policy) if policy else None, document, cid),
        )

    def set_scope(self, cid: int, scope: list[str] | None) -> None:
        """Ask this conversation over the context (None), the whole library ([]) or the documents named."""
        self.db.execute(
            "UPDATE conversations SET scope = ? WHERE id = ?", (json.dumps(scope) if scope is not None else None, cid)
        )

    def set_title(self, cid: int, title: str) -> None:
        self.db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, cid))

    def delete(self, cid: int) -> None:
        self.db.execute("DELETE FROM conversations WHERE id = ?", (cid,))

    def conversations(self) -> list[Conversation]:
        rows = self.db.execute(f"SELECT {_CONV} FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [_conversation(r) for r in rows]

    def load(self, cid: int) -> Conversation:
        row = self.db.execute(f"SELECT {_CONV} FROM conversations WHERE id = ?", (cid,)).fetchone()
        if row is None:
            raise StoreError(f"no conversation {cid}")
        conv = _conversation(row)
        for r in self.db.execute(
            "SELECT id, question, answer, tier, status, trace, created FROM turns"
            " WHERE conversation_id = ? ORDER BY id",
            (cid,),
        ):
            conv.turns.append(Turn(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None, r[6]))
        return conv

    # ------------------------------------------------------------------ turns
    def add_turn(self, cid: int, question: str) -> int:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO turns(conversation_id, question, created) VALUES (?, ?, ?)", (cid, question, now)
        )
        self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def finish_turn(
        self, tid: int, status: str, answer: str | None = None, tier: str | None = None, trace: dict | None = None
    ) -> None:
        self.db.execute(
            "UPDATE turns SET status = ?, answer = ?, tier = ?, trace = ? WHERE id = ?",
            (status, answer, tier, json.dumps(trace) if trace is not None else None, tid),
        )

    # ------------------------------------------------------------------ tier speeds
    def speed_sums(self) -> dict[tuple[str, str, str], SpeedSums]:
        """Every stored speed estimate, by (tier, model file, setup)."""
        rows = self.db.execute(
            "SELECT tier, model, setup, prompt_seconds, prompt_tokens, gen_seconds, gen_tokens, observations"
            " FROM tier_speeds"
        )
        return {(r[0], r[1], r[2]): SpeedSums(*r[3:]) for r in rows}

    def update_speed_sums(
        self, tier: str, model: str, setup: str, update: Callable[[SpeedSums], SpeedSums]
    ) -> SpeedSums:
        """Replace one estimate by ``update(stored)`` (empty sums when none is stored) in one write transaction,
        so that two processes updating the same tier each build on the other's last write; returns it."""
        key = (tier, model, setup)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            row = self.db.execute(
                "SELECT prompt_seconds, prompt_tokens, gen_seconds, gen_tokens, observations FROM tier_speeds"
                " WHERE tier = ? AND model = ? AND setup = ?",
                key,
            ).fetchone()
            new = update(SpeedSums(*row) if row else SpeedSums())
            self.db.execute(
                "INSERT OR REPLACE INTO tier_speeds(tier, model, setup, prompt_seconds, prompt_tokens, gen_seconds,"
                " gen_tokens, observations, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key,
                    new.prompt_seconds,
                    new.prompt_tokens,
                    new.gen_seconds,
                    new.gen_tokens,
                    new.observations,
                    time.time(),
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return new
