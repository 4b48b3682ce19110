"""The egress log: every request to a remote tier, written before it is sent.

SQLite in the data directory (``egress.sqlite``). A row holds the time, the tier, the endpoint's host
and URL, the model, the exact payload bytes and their SHA-256, the redaction counts, the send mode,
how many HTTP attempts carried the payload, and the outcome. API keys are never stored: they travel
in a header, and headers are not logged.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AutomixError

MIGRATIONS: list[str] = [
    """
    CREATE TABLE egress (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        tier TEXT NOT NULL,
        host TEXT NOT NULL,
        url TEXT NOT NULL,
        model TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        payload BLOB NOT NULL,
        send TEXT NOT NULL,
        redactions TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        outcome TEXT NOT NULL DEFAULT 'pending',
        detail TEXT,
        answer_chars INTEGER,
        seconds REAL
    );
    CREATE INDEX egress_by_time ON egress(time);
    """,
]


class AuditError(AutomixError):
    """The egress log cannot be used. str() is the one line shown to the user."""


@dataclass(frozen=True)
class Receipt:
    """The exact request about to leave: what `ask` shows and what the log stores."""

    tier: str
    host: str
    url: str
    model: str
    payload: bytes
    send: str
    redactions: dict[str, int]
    reason: str = ""
    # placeholder -> the value it replaced: shown on this machine (the receipt), never logged or sent
    replaced: dict[str, str] = field(default_factory=dict, repr=False)

    def what_was_replaced(self) -> str:
        """'[PERSON_1] ← Maria Gonzalez; …' for the receipt shown locally ('' when nothing was)."""
        return "; ".join(f"{k} ← {v}" for k, v in self.replaced.items())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()

    @property
    def size(self) -> int:
        return len(self.payload)

    def pretty(self) -> str:
        """The payload as indented JSON (the bytes sent are the compact form)."""
        try:
            return json.dumps(json.loads(self.payload), indent=2, ensure_ascii=False)
        except ValueError:
            return self.payload.decode("utf-8", "replace")


@dataclass(frozen=True)
class Entry:
    id: int
    time: float
    tier: str
    host: str
    url: str
    model: str
    bytes: int
    sha256: str
    payload: builtins.bytes  # the exact bytes sent (``bytes`` above is their count)
    send: str
    redactions: dict[str, int]
    attempts: int
    outcome: str  # "pending" | "ok" | "error" | "cancelled"
    detail: str | None
    answer_chars: int | None
    seconds: float | None

    def to_json(self, with_payload: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.time)),
            "tier": self.tier,
            "host": self.host,
            "url": self.url,
            "model": self.model,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "send": self.send,
            "redactions": self.redactions,
            "attempts": self.attempts,
            "outcome": self.outcome,
            "detail": self.detail,
            "answer_chars": self.answer_chars,
            "seconds": self.seconds,
        }
        if with_payload:
            d["payload"] = self.payload.decode("utf-8", "replace")
        return d


_COLUMNS = (
    "id, time, tier, host, url, model, bytes, sha256, payload, send, redactions, attempts, outcome, detail, "
    "answer_chars, seconds"
)


class EgressLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise AuditError(f"{path}: written by a newer automix-local (schema {version}); upgrade to read it")
            for i in range(version, len(MIGRATIONS)):
                self.db.executescript(f"BEGIN; {MIGRATIONS[i]} PRAGMA user_version = {i + 1}; COMMIT;")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise AuditError(f"{path}: cannot open the egress log ({exc})") from None

    def record(self, receipt: Receipt) -> int:
        """Write the request before it is sent; returns its id. Raises AuditError if it cannot be written
        (the caller must then not send)."""
        try:
            cur = self.db.execute(
                "INSERT INTO egress (time, tier, host, url, model, bytes, sha256, payload, send, redactions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    receipt.tier,
                    receipt.host,
                    receipt.url,
                    receipt.model,
                    receipt.size,
                    receipt.sha256,
                    receipt.payload,
                    receipt.send,
                    json.dumps(receipt.redactions, sort_keys=True),
                ),
            )
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{self.path}: cannot write the egress log ({exc}); nothing was sent") from None
        return int(cur.lastrowid or 0)

    def attempt(self, entry_id: int, n: int) -> None:
        """Called before each HTTP attempt: the row counts every time the payload left."""
        self.db.execute("UPDATE egress SET attempts = ? WHERE id = ?", (n, entry_id))

    def finish(
        self,
        entry_id: int,
        outcome: str,
        detail: str | None = None,
        answer_chars: int | None = None,
        seconds: float | None = None,
    ) -> None:
        self.db.execute(
            "UPDATE egress SET outcome = ?, detail = ?, answer_chars = ?, seconds = ? WHERE id = ?",
            (outcome, detail, answer_chars, seconds, entry_id),
        )

    def entries(self, since: float | None = None, limit: int | None = None) -> list[Entry]:
        sql = f"SELECT {_COLUMNS} FROM egress"
        args: list[Any] = []
        if since is not None:
            sql += " WHERE time >= ?"
            args.append(since)
        sql += " ORDER BY id"
        rows = self.db.execute(sql, args).fetchall()
        if limit is not None:
            rows = rows[-limit:]
        return [_entry(r) for r in rows]

    def get(self, entry_id: int) -> Entry | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM egress WHERE id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def close(self) -> None:
        self.db.close()


def _entry(row: tuple[Any, ...]) -> Entry:
    return Entry(
        id=row[0],
        time=row[1],
        tier=row[2],
        host=row[3],
        url=row[4],
        model=row[5],
        bytes=row[6],
        sha256=row[7],
        payload=bytes(row[8]),
        send=row[9],
        redactions=json.loads(row[10] or "{}"),
        attempts=row[11],
        outcome=row[12],
        detail=row[13],
        answer_chars=row[14],
        seconds=row[15],
    )


def parse_since(text: str, now: float | None = None) -> float:
    """``--since``: an ISO date/time (2026-11-22, 2026-11-22T10:00) or an age (30m, 2h, 7d)."""
    import datetime as dt
    import re

    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return now - float(m.group(1)) * unit
    try:
        d = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a date/time such as 2026-11-22 or 2026-11-22T10:00, or an age such as 2h or 7d"
        ) from None
    if d.tzinfo is None:
        d = d.astimezone()  # local time, as the user typed it
    return d.timestamp()
