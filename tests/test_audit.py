"""The egress log on a real SQLite file, and `automix-local audit` over it."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from automix_local.audit import AuditError, EgressLog, Receipt, parse_since
from automix_local.cli import main
from automix_local.paths import default_paths


def receipt(payload: bytes = b'{"model":"m","messages":[]}', tier: str = "remote") -> Receipt:
    return Receipt(
        tier=tier,
        host="127.0.0.1:9",
        url="http://127.0.0.1:9/v1/chat/completions",
        model="m",
        payload=payload,
        send="question",
        redactions={"email": 1},
    )


def test_record_attempt_finish_roundtrip(tmp_path: Path):
    log = EgressLog(tmp_path / "egress.sqlite")
    r = receipt()
    eid = log.record(r)
    e = log.get(eid)
    assert e is not None and e.outcome == "pending" and e.attempts == 0  # written before anything is sent
    log.attempt(eid, 1)
    log.attempt(eid, 2)
    log.finish(eid, "ok", answer_chars=5, seconds=0.5)
    e = log.get(eid)
    assert e is not None
    assert (e.payload, e.bytes, e.sha256) == (r.payload, len(r.payload), r.sha256)
    assert e.attempts == 2 and e.outcome == "ok" and e.redactions == {"email": 1}
    log.close()
    again = EgressLog(tmp_path / "egress.sqlite")  # reopened: nothing lost, no second migration
    assert [x.id for x in again.entries()] == [eid]


def test_since_filters(tmp_path: Path):
    log = EgressLog(tmp_path / "e.sqlite")
    a = log.record(receipt())
    log.db.execute("UPDATE egress SET time = ? WHERE id = ?", (time.time() - 3 * 86400, a))
    b = log.record(receipt())
    assert [e.id for e in log.entries(since=parse_since("1d"))] == [b]
    assert [e.id for e in log.entries()] == [a, b]


def test_parse_since():
    now = 1_000_000.0
    assert parse_since("2h", now) == now - 7200
    assert parse_since("30m", now) == now - 1800
    assert parse_since("2026-11-22T10:00") > 0
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_not_a_database(tmp_path: Path):
    bad = tmp_path / "e.sqlite"
    bad.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(AuditError, match="cannot open the egress log"):
        EgressLog(bad)


def test_newer_schema_refused(tmp_path: Path):
    p = tmp_path / "e.sqlite"
    db = sqlite3.connect(p)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(AuditError, match="newer"):
        EgressLog(p)


def test_cli_audit_empty(capsys: pytest.CaptureFixture[str]):
    assert main(["audit"]) == 0
    assert "nothing has been sent" in capsys.readouterr().out
    assert main(["audit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_audit_lists_and_shows_exact_payload(capfdbinary: pytest.CaptureFixture[bytes]):
    log = EgressLog(default_paths().egress_log)
    payload = '{"model":"m","messages":[{"role":"user","content":"Où est [EMAIL_1] ?"}]}'.encode()
    eid = log.record(receipt(payload))
    log.finish(eid, "error", "remote tier 'remote': HTTP 500")
    log.close()
    assert main(["audit"]) == 0
    out = capfdbinary.readouterr().out.decode()
    assert "127.0.0.1:9" in out and "error: remote tier 'remote': HTTP 500" in out and "1 email" in out
    assert main(["audit", "--json"]) == 0
    rows = json.loads(capfdbinary.readouterr().out)
    assert rows[0]["sha256"] == receipt(payload).sha256 and rows[0]["bytes"] == len(payload)
    assert "payload" not in rows[0]
    assert main(["audit", "--show", str(eid)]) == 0
    out = capfdbinary.readouterr().out
    assert out == payload + b"\n"  # exactly the bytes that left
    assert main(["audit", "--show", str(eid), "--json"]) == 0
    assert json.loads(capfdbinary.readouterr().out)["payload"] == payload.decode()
    assert main(["audit", "--show", "99"]) == 1
    assert "no egress entry #99" in capfdbinary.readouterr().err.decode()
    assert main(["audit", "--since", "soon"]) == 2
