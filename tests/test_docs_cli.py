"""`automix-local docs …` and `ask --doc/--all` through the installed entry point, on real files and SQLite."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from .conftest import cli_path, tier_toml
from .remote_server import RecordingServer

KETTLE = """# Kettle manual

## Descaling
In hard water areas, descale the kettle every four weeks with white vinegar.

## Warranty
The warranty lasts two years from the date of purchase.
"""

TOWNS = [
    ("Arlen", "copper mining", "the blue bridge"),
    ("Brisk", "salt trading", "the round tower"),
    ("Corvo", "wool weaving", "the old mill"),
    ("Dunmore", "glass blowing", "the clock square"),
    ("Elbury", "cheese making", "the stone harbour"),
    ("Fenwick", "boat building", "the white chapel"),
]


def remote_tier(server: RecordingServer) -> str:
    """A remote tier on the recording server, last in the cascade."""
    return (
        f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{server.base_url}"\nmodel = "m"\n'
        "timeout = 5\nretries = 1\ncost = 50.0\n"
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def config(model_path: Path, write_config) -> str:
    text = tier_toml("small", model_path, max_tokens=24) + tier_toml("large", model_path, max_tokens=24, cost=10)
    return str(write_config(text + '[cascade]\nrouter = "threshold"\nthreshold = 0.0\n'))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "papers"
    d.mkdir()
    (d / "kettle.md").write_text(KETTLE, encoding="utf-8")
    (d / "festival.txt").write_text("The harbour festival of Kell takes place every August.\n", encoding="utf-8")
    (d / "ferry.html").write_text(
        "<html><head><title>Ferries</title></head><body><h1>Ferries</h1>"
        "<p>The first ferry to Skara leaves at 06:40.</p></body></html>",
        encoding="utf-8",
    )
    return d


def test_docs_add_list_show_remove_reindex(config: str, folder: Path):
    added = run("docs", "add", str(folder), "--config", config)
    assert added.returncode == 0, added.stderr
    assert "3 indexed" in added.stdout
    listed = json.loads(run("docs", "list", "--json", "--config", config).stdout)
    assert sorted(d["name"] for d in listed) == ["ferry.html", "festival.txt", "kettle.md"]
    shown = run("docs", "show", "kettle.md", "--config", config)
    assert "Kettle manual › Descaling" in shown.stdout and "passages" in shown.stdout
    again = run("docs", "add", str(folder), "--config", config)
    assert "3 unchanged" in again.stdout
    (folder / "festival.txt").unlink()
    re = run("docs", "reindex", "--config", config)
    assert re.returncode == 0 and "1 removed" in re.stdout
    rm = run("docs", "remove", "kettle.md", "--config", config)
    assert rm.returncode == 0 and "removed kettle.md" in rm.stdout
    missing = run("docs", "show", "kettle.md", "--config", config)
    assert missing.returncode == 1 and "no document named 'kettle.md'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_bad_file_is_one_line_and_the_rest_is_indexed(config: str, folder: Path):
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    proc = run("docs", "add", str(folder), "--config", config)
    assert proc.returncode == 1  # something failed: scripts notice
    assert "3 indexed" in proc.stdout and "1 failed" in proc.stdout
    assert "broken.pdf" in proc.stderr and "Traceback" not in proc.stderr


def test_docs_add_says_which_encoding_it_assumed(config: str, folder: Path):
    (folder / "recette.txt").write_bytes("La crème brûlée coûte 5 € au café.\r\n".encode("cp1252"))
    proc = run("docs", "add", str(folder), "--config", config)
    assert proc.returncode == 0, proc.stderr
    assert "4 indexed" in proc.stdout
    assert "· recette.txt: not UTF-8, read as Windows-1252 (cp1252)" in proc.stdout
    assert "festival.txt: not UTF-8" not in proc.stdout


def test_ask_across_the_library_cites_the_passage(config: str, folder: Path):
    run("docs", "add", str(folder), "--config", config)
    proc = run("ask", "--all", "--json", "--config", config, "How often should the kettle be descaled?")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert {"citations", "not_found", "retrieval"} <= obj.keys()
    assert obj["retrieval"]["mode"] == "whole" and obj["retrieval"]["tokens"] <= obj["retrieval"]["budget"]
    for c in obj["citations"]:
        assert {"n", "document", "page", "heading", "start", "end", "text"} <= c.keys()
    tiny = str(Path(config).with_name("tiny-cap.toml"))
    Path(tiny).write_text(Path(config).read_text() + "[documents]\ncontext_tokens = 10\n")
    pinned = json.loads(run("ask", "--all", "--json", "--config", tiny, "How often is it descaled?").stdout)
    assert pinned["retrieval"]["mode"] == "whole"  # the cap is for retrieved passages: these fit whole
    one = run("ask", "--doc", "festival.txt", "--json", "--config", config, "When is the harbour festival?")
    obj = json.loads(one.stdout)
    assert obj["retrieval"]["documents"] == ["festival.txt"]
    nope = run("ask", "--doc", "nope.md", "--config", config, "When?")
    assert nope.returncode == 1 and "no document named 'nope.md'" in nope.stderr


def test_nothing_relevant_is_not_in_your_documents_without_asking_a_model(config: str, tmp_path: Path):
    d = tmp_path / "towns"
    d.mkdir()
    for town, trade, sight in TOWNS:  # more than fits the window: retrieval, not whole documents
        body = " ".join(
            f"In {town} the people are known for {trade}, and visitors come to see {sight}." for _ in range(40)
        )
        (d / f"{town.lower()}.txt").write_text(body + "\n", encoding="utf-8")
    run("docs", "add", str(d), "--config", config)
    hit = json.loads(run("ask", "--all", "--json", "--config", config, "What is Corvo known for?").stdout)
    assert hit["retrieval"]["mode"] == "retrieved" and hit["retrieval"]["left_out"] >= 0
    assert hit["retrieval"]["tokens"] <= hit["retrieval"]["budget"]
    capped = str(Path(config).with_name("capped.toml"))
    Path(capped).write_text(Path(config).read_text() + "[documents]\ncontext_tokens = 200\n")
    few = json.loads(run("ask", "--all", "--json", "--config", capped, "What is Corvo known for?").stdout)
    assert few["retrieval"]["budget"] == 200 and few["retrieval"]["tokens"] <= 200
    assert few["retrieval"]["passages"] < hit["retrieval"]["passages"]
    proc = run("ask", "--all", "--json", "--config", config, "Which zebra plays the bassoon?")
    obj = json.loads(proc.stdout)
    assert obj["not_found"] is True and obj["steps"] == [] and obj["decision"] == "not_found"
    text = run("ask", "--all", "--config", config, "Which zebra plays the bassoon?")
    assert text.stdout.startswith("Not in your documents")


def test_private_documents_never_leave_even_beside_others(model_path: Path, write_config, folder: Path):
    """send = "full" over the library: the remote tier gets the retrieved passages, minus a private document's."""
    with RecordingServer() as server:
        server.answer = "four weeks"
        text = tier_toml("small", model_path, max_tokens=16)
        text += remote_tier(server)
        text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\n'
        text += f'[policy]\nremote = "allow"\nsend = "full"\nprivate = ["{folder / "festival.txt"}"]\n'
        cfg = str(write_config(text))
        run("docs", "add", str(folder), "--config", cfg)
        proc = run("ask", "--all", "--json", "--config", cfg, "How often should the kettle be descaled?")
        assert proc.returncode == 0, proc.stderr
        (body,) = [r["body"].decode() for r in server.requests if r["path"].endswith("/chat/completions")]
    assert "descale the kettle every four weeks" in body  # the library's passages went
    assert "harbour festival" not in body  # … but never the private document's
    assert json.loads(proc.stdout)["tier"] == "remote"


def test_a_pdf_answer_is_cited_with_its_page(default_small_path: Path, write_config, tmp_path: Path):
    """A real PDF (made here with fpdf2): the answer comes from page 2, and the citation says so."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in (
        "Installation. Place the kettle on a flat, dry surface away from the edge of the counter.",
        "Warranty. The warranty lasts two years from the date of purchase and covers the heating element.",
        "Cleaning. Wipe the outside with a damp cloth; never put the kettle in a dishwasher.",
    ):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    folder = tmp_path / "manuals"
    folder.mkdir()
    pdf.output(str(folder / "kettle.pdf"))
    text = (
        tier_toml("small", default_small_path, max_tokens=24)
        + '[cascade]\nrouter = "always_small"\nlayout = "shared"\n'
    )
    cfg = str(write_config(text))
    assert run("docs", "add", str(folder), "--config", cfg).returncode == 0
    shown = json.loads(run("docs", "show", "kettle.pdf", "--json", "--config", cfg).stdout)
    assert shown["pages"] == 3 and [p["page"] for p in shown["passage_list"]] == [1, 2, 3]
    proc = run("ask", "--doc", "kettle.pdf", "--json", "--config", cfg, "How long does the warranty last?")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert "two years" in obj["answer"].lower() and obj["not_found"] is False
    assert obj["citations"] and obj["citations"][0]["page"] == 2 and obj["citations"][0]["supported"]
    plain = run("ask", "--doc", "kettle.pdf", "--config", cfg, "How long does the warranty last?")
    assert "kettle.pdf, p. 2" in plain.stdout


def test_send_relevant_over_the_library_sends_only_the_cited_passages(default_small_path: Path, write_config, folder):
    """Done-when of issue 12: the remote tier, when allowed, receives only the passages the local answer cites."""
    with RecordingServer() as server:
        server.answer = "every four weeks"
        text = tier_toml("small", default_small_path, max_tokens=16)
        text += remote_tier(server)
        text += '[cascade]\nrouter = "random"\nrandom_p = 1.0\nlayout = "shared"\n'
        text += '[policy]\nremote = "allow"\nsend = "relevant"\n'
        cfg = str(write_config(text))
        run("docs", "add", str(folder), "--config", cfg)
        proc = run("ask", "--all", "--json", "--config", cfg, "How often should the kettle be descaled?")
        assert proc.returncode == 0, proc.stderr
        (body,) = [r["body"].decode() for r in server.requests if r["path"].endswith("/chat/completions")]
    small = json.loads(proc.stdout)["steps"][0]["answer"]
    assert "four weeks" in small.lower()  # the local answer, found in the descaling passage
    assert "descale the kettle every four weeks" in body
    for other in ("warranty lasts two years", "harbour festival", "first ferry to Skara"):
        assert other not in body  # retrieved beside it, not cited: stays here


def test_a_saved_conversation_keeps_asking_its_documents(config: str, folder: Path):
    """The app saves what a conversation asks over; `ask --conversation ID` keeps asking it (and --all changes it)."""
    from automix_local.paths import default_paths
    from automix_local.storage import Store

    run("docs", "add", str(folder), "--config", config)
    db = default_paths().data_dir / "conversations.db"
    store = Store(db)  # as the app saves it
    cid = store.create("festival")
    store.set_scope(cid, ["festival.txt"])
    store.close()
    proc = run("ask", "--conversation", str(cid), "--json", "--config", config, "When is the harbour festival?")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["retrieval"]["documents"] == ["festival.txt"] and obj["conversation"] == cid
    wider = run("ask", "--conversation", str(cid), "--all", "--json", "--config", config, "And the kettle?")
    assert sorted(json.loads(wider.stdout)["retrieval"]["documents"]) == ["ferry.html", "festival.txt", "kettle.md"]
    conv = Store(db).load(cid)
    assert conv.scope == [] and [t.question for t in conv.turns] == ["When is the harbour festival?", "And the kettle?"]
    both = run("ask", "--all", "--no-context", "--config", config, "When?")
    assert both.returncode == 2 and "leave out --context and --no-context" in both.stderr


def test_a_corrupt_embedding_model_is_said_in_docs_add_and_docs_list(embedding_model_path: Path, folder: Path):
    """The default [embedding] model cut short on disk (its first 8 MB): indexing and listing say, in one line,
    that retrieval is BM25 alone, which file is wrong and the command that fixes it; not "not downloaded"."""
    from automix_local.config import load_config, packaged_default

    default = load_config(packaged_default())
    assert default.embedding is not None
    path = default.paths.models_dir / default.embedding.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    with embedding_model_path.open("rb") as f:
        path.write_bytes(f.read(8 << 20))
    config = str(packaged_default())
    warning = (
        f"vectors off, BM25 only: the embedding model at {path} has sha256 "
        f"{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}…, expected {default.embedding.sha256[:12]}…: corrupt "
        f"or a different file. Not loading it. Delete it and run: automix-local --config {config} models pull embedding"
    )
    added = run("docs", "add", str(folder), "--config", config)
    assert added.returncode == 0, added.stderr
    assert "3 indexed" in added.stdout and "not downloaded" not in added.stdout
    assert added.stderr.splitlines() == [warning]
    listed = run("docs", "list", "--config", config)
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr.splitlines() == [f"3 document(s), 4 passages · BM25 ready · {warning}"]
    as_json = run("docs", "list", "--json", "--config", config)
    assert len(json.loads(as_json.stdout)) == 3 and as_json.stderr.splitlines() == [warning]
