"""The document library on real files and a real SQLite file: passages, the FTS5 index, retrieval, packing."""

from __future__ import annotations

import itertools
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from automix_local.documents.library import Library, LibraryError, expand
from automix_local.documents.parse import parse
from automix_local.documents.passages import split
from automix_local.documents.retrieval import (
    bm25,
    cite,
    context_text,
    dense_scored,
    fts_query,
    fuse,
    pack,
    search,
    vector_matrix,
)

from .test_documents_parse import as_unprivileged, unprivileged_dir

MANUAL = """# Kettle manual

## Filling
Fill the kettle with fresh water up to the MAX line. Never fill it above the MAX line, or boiling water
may spill out of the spout.

## Descaling
In hard water areas, descale the kettle every four weeks. Use white vinegar mixed with an equal amount of
water, boil it once, leave it overnight and rinse twice.

## Warranty
The warranty lasts two years from the date of purchase and covers the heating element only.
"""

NOTES = "The harbour festival takes place every August in Kell.\n\nTickets cost twelve euros at the gate.\n"

PAGE = (
    "<html><head><title>Ferry times</title><style>p {color: red}</style></head><body>"
    "<h1>Ferry times</h1><p>The first ferry to Skara leaves at 06:40.</p>"
    "<h2>Winter</h2><p>In winter the last ferry leaves at 18:15.</p><script>var x = 'hidden';</script>"
    "</body></html>"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "kettle.md").write_text(MANUAL, encoding="utf-8")
    (d / "sub" / "notes.txt").write_text(NOTES, encoding="utf-8")
    (d / "ferry.html").write_text(PAGE, encoding="utf-8")
    (d / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a document")
    (d / ".hidden.md").write_text("# secret\nnot indexed\n", encoding="utf-8")
    return d


@pytest.fixture
def lib(tmp_path: Path):
    with Library(tmp_path / "library.sqlite") as library:
        yield library


def test_passages_keep_structure_spans_and_overlap(tmp_path: Path):
    f = tmp_path / "long.md"
    paragraph = " ".join(f"Sentence number {i} says something about the harbour." for i in range(60))
    f.write_text(f"# Top\n\n## Part\n\n{paragraph}\n\nA short closing paragraph.\n", encoding="utf-8")
    doc = parse(f)
    pieces = split(doc, max_words=80, overlap_words=10)
    assert len(pieces) > 3
    for p in pieces:
        assert doc.text[p.start : p.end] == p.text  # the span is exactly what was used
        assert len(p.text.split()) <= 80
        assert p.heading == ("Top", "Part")  # "# Top" alone is no passage
    inside = [p for p in pieces if "Sentence number" in p.text]
    assert all(a.end > b.start for a, b in itertools.pairwise(inside))  # cuts inside overlap
    assert pieces[-1].text.endswith("harbour.\n\nA short closing paragraph.")  # short paragraphs packed together


def test_a_windows_1252_file_is_indexed_searchable_and_its_encoding_reported(tmp_path: Path, lib: Library):
    f = tmp_path / "recette.txt"
    f.write_bytes("La crème brûlée coûte 5 € au café « Chez Zoé ».\r\nFermé le lundi.\r\n".encode("cp1252"))
    utf8 = tmp_path / "notes.txt"
    utf8.write_text(NOTES, encoding="utf-8")
    report = lib.add([f, utf8])
    assert sorted(report.indexed) == ["notes.txt", "recette.txt"] and not report.failed
    assert report.encodings == [("recette.txt", "cp1252")]  # only the file that is not UTF-8
    (hit,) = [lib.passage(pid) for pid in bm25(lib, "Combien coûte la crème brûlée?", None, 5)]
    assert hit.document == "recette.txt" and "5 € au café « Chez Zoé »" in hit.text


def test_add_indexes_a_folder_skips_the_rest_and_resumes(folder: Path, lib: Library):
    seen: list[tuple[int, int]] = []
    report = lib.add([folder], progress=lambda f, done, total, n: seen.append((done, total)))
    assert sorted(report.indexed) == ["ferry.html", "kettle.md", "notes.txt"]
    assert report.skipped == [str(folder / "photo.jpg")] and not report.failed
    assert seen[-1] == (3, 3) and report.passages >= 4
    docs = {d.name: d for d in lib.documents()}
    assert docs["kettle.md"].title == "Kettle manual" and docs["kettle.md"].passages >= 3
    again = lib.add([folder])
    assert sorted(again.unchanged) == ["ferry.html", "kettle.md", "notes.txt"] and not again.indexed
    (folder / "sub" / "notes.txt").write_text(NOTES + "\nParking is free on Sundays.\n", encoding="utf-8")
    changed = lib.add([folder])
    assert changed.indexed == ["notes.txt"]
    assert any("Parking" in p.text for p in lib.passages([lib.find("notes.txt").id]))


def test_reindex_drops_vanished_files_and_remove_forgets(folder: Path, lib: Library):
    lib.add([folder])
    (folder / "ferry.html").unlink()
    report = lib.reindex()
    assert report.removed == ["ferry.html"]
    assert [d.name for d in lib.documents()] == ["kettle.md", "notes.txt"]
    assert lib.remove(["kettle.md"]) == ["kettle.md"]
    assert not lib.db.execute("SELECT count(*) FROM passages_fts WHERE passages_fts MATCH 'kettle'").fetchone()[0]
    with pytest.raises(LibraryError, match="no document named 'nope'"):
        lib.find("nope")


def test_bad_files_fail_alone_with_one_line(folder: Path, lib: Library, tmp_path: Path):
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    (folder / "empty.txt").write_text("")
    report = lib.add([folder, tmp_path / "nowhere", str(tmp_path / "*.nothing")])
    reasons = dict(report.failed)
    assert sorted(report.indexed) == ["ferry.html", "kettle.md", "notes.txt"]  # the good ones still indexed
    assert "broken.pdf" in reasons[str(folder / "broken.pdf")]
    assert "empty" in reasons[str(folder / "empty.txt")]
    assert reasons[str(tmp_path / "nowhere")] == "no such file or folder"
    assert reasons[str(tmp_path / "*.nothing")] == "matches no file"
    assert all("\n" not in r for r in reasons.values())


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_unreadable_file_fails_alone_with_one_line(lib: Library):
    """Indexing as a user who may not read one file of a folder: that file fails with one line, the rest is
    indexed. As root, the indexing runs as nobody (``as_unprivileged``), in a library of that user's."""
    with unprivileged_dir() as d:
        docs = d / "docs"
        docs.mkdir()
        (docs / "kettle.md").write_text(MANUAL, encoding="utf-8")
        locked = docs / "locked.txt"
        locked.write_text("secret")
        locked.chmod(0)
        lib.add([docs / "kettle.md"])  # what indexing imports is loaded before the fork

        def index() -> tuple[list[str], list[tuple[str, str]]]:
            with Library(d / "library.sqlite") as own:
                report = own.add([docs])
            return sorted(report.indexed), report.failed

        indexed, failed = as_unprivileged(index)
    assert indexed == ["kettle.md"]
    assert failed == [(str(locked), f"{locked}: permission denied")]


def test_two_files_of_one_name_get_distinct_names(tmp_path: Path, lib: Library):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "notes.txt").write_text(f"Notes of {d}.")
    lib.add([tmp_path / "a", tmp_path / "b"])
    assert [d.name for d in lib.documents()] == ["b/notes.txt", "notes.txt"]


def test_a_failed_transaction_keeps_what_was_indexed(folder: Path, lib: Library, tmp_path: Path):
    lib.add([folder / "kettle.md"])
    other = sqlite3.connect(tmp_path / "library.sqlite", isolation_level=None, timeout=0.1)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database
    lib.db.execute("PRAGMA busy_timeout = 100")
    try:
        with pytest.raises(LibraryError, match="locked"):
            lib.add([folder / "ferry.html"])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [d.name for d in lib.documents()] == ["kettle.md"]
    assert lib.add([folder]).indexed == ["ferry.html", "notes.txt"]  # a re-run resumes


def test_bm25_finds_the_passage_and_pack_fits_the_budget(folder: Path, lib: Library):
    lib.add([folder])
    docs = lib.documents()
    assert fts_query('How often should I "descale" it? OR NEAR(x)') == '"often" OR "descale" OR "near"'
    hits = search(lib, "How often should I descale the kettle?", docs)
    assert hits and "four weeks" in hits[0].passage.text and hits[0].bm25_rank == 1
    assert hits[0].passage.where == "Kettle manual › Descaling"
    ids = [d.id for d in docs]
    for q in ("How often should I descale the kettle?", "warranty years", "festival"):
        assert bm25(lib, q, None, 20) == bm25(lib, q, ids, 20)  # the whole library, without the filter
    kettle = [d.id for d in docs if d.name == "kettle.md"]
    assert set(bm25(lib, "festival warranty", kettle, 20)) <= {p.id for p in lib.passages(kettle)}
    words = lambda s: len(s.split())  # noqa: E731  (a stand-in tokenizer: the budget logic is what is tested)
    whole = pack(lib, docs, hits, 10_000, words)
    assert whole.mode == "whole" and len(whole.passages) == sum(d.passages for d in docs)
    tight = pack(lib, docs, hits, 60, words)
    assert tight.mode == "retrieved" and tight.tokens <= 60 and tight.passages
    assert "four weeks" in context_text(tight.passages) and tight.left_out > 0
    assert "[1] (" in context_text(tight.passages)
    assert not search(lib, "zebra quantum", docs)  # nothing relevant: nothing retrieved


def test_fusion_and_citations():
    assert fuse([[1, 2, 3], [3, 1]])[0][0] == 1 and {p for p, _ in fuse([[1], [2]])} == {1, 2}
    from automix_local.documents.library import StoredPassage

    a = StoredPassage(1, "kettle.md", 1, 0, None, ("Descaling",), 0, 40, "Descale the kettle every four weeks.")
    b = StoredPassage(2, "notes.txt", 2, 0, None, (), 0, 30, "Tickets cost twelve euros.")
    (c,) = cite("every four weeks", [a, b])
    assert c.n == 1 and c.supported and c.to_json()["heading"] == ["Descaling"]
    (u,) = cite("twelve Euro", [a, b])  # not verbatim: the closest passage, marked unsupported
    assert u.n == 2 and not u.supported
    assert cite("bananas", [a, b]) == []


def test_expand_takes_globs_and_named_files(folder: Path):
    files, skipped, missing = expand([str(folder / "*.md"), folder / "photo.jpg"])
    assert [f.name for f in files] == ["kettle.md", "photo.jpg"]  # a file named on purpose is tried
    assert not skipped and not missing


def test_vectors_fill_in_and_find_what_bm25_cannot(tmp_path: Path, lib: Library, embedding_model_path: Path):
    """Dense vectors from the real embedding model: a paraphrased question shares no word with its passage,
    so BM25 finds nothing and the fused ranking still finds it; an interrupted fill resumes."""
    from automix_local.backends.embed import LlamaEmbedder
    from automix_local.config import EmbeddingConfig, PathSource
    from automix_local.documents.vectors import counts, fill

    d = tmp_path / "mixed"
    d.mkdir()
    (d / "pets.txt").write_text("The feline dozed all afternoon on the woollen rug by the fire.\n", encoding="utf-8")
    (d / "markets.txt").write_text("Share prices fell sharply on Monday after the bank report.\n", encoding="utf-8")
    (d / "garden.txt").write_text("Tomatoes need full sun and deep watering twice a week.\n", encoding="utf-8")
    lib.add([d])
    cfg = EmbeddingConfig(source=PathSource(embedding_model_path), batch=2)  # type: ignore[arg-type]
    embedder = LlamaEmbedder(cfg, embedding_model_path)
    try:
        calls: list[tuple[int, int]] = []
        assert counts(lib, "nomic") == (0, 3)
        lib.store_embeddings("nomic", [])  # nothing yet: a no-op
        first = lib.missing_embeddings("nomic", limit=1)  # as if a fill stopped after one batch
        lib.store_embeddings("nomic", [(first[0].id, embedder.embed_documents([first[0].text])[0].tobytes(), 768)])
        assert fill(lib, embedder, "nomic", progress=lambda done, total: calls.append((done, total))) == 2
        assert counts(lib, "nomic") == (3, 3) and calls[-1] == (3, 3)
        docs = lib.documents()
        question = "Where did the cat sleep?"
        assert not search(lib, question, docs)  # no shared word: BM25 alone finds nothing
        hits = search(lib, question, docs, query_vector=embedder.embed_query(question), model="nomic")
    finally:
        embedder.close()
    assert hits[0].passage.document == "pets.txt" and hits[0].dense_rank == 1 and hits[0].bm25_rank is None


def test_an_off_topic_question_is_not_in_your_documents(tmp_path: Path, embedding_model_path: Path):
    """With vectors, a question whose best passage is less similar than the measured floor is not asked of a
    model; an on-topic paraphrase is. The floor belongs to the default embedding model only."""
    from automix_local.backends.embed import LlamaEmbedder
    from automix_local.config import EmbeddingConfig, PathSource
    from automix_local.documents.asking import NOT_FOUND_COSINE, retrieve
    from automix_local.documents.vectors import fill

    (sha,) = NOT_FOUND_COSINE
    d = tmp_path / "kitchen"
    d.mkdir()
    (d / "kettle.md").write_text(
        "# Kettle\n\nDescale the kettle every four weeks with white vinegar.\n", encoding="utf-8"
    )
    (d / "pets.txt").write_text("The feline dozed all afternoon on the woollen rug by the fire.\n", encoding="utf-8")
    db = tmp_path / "library.sqlite"
    cfg = EmbeddingConfig(source=PathSource(embedding_model_path), sha256=sha)  # type: ignore[arg-type]
    embedder = LlamaEmbedder(cfg, embedding_model_path)
    try:
        with Library(db) as lib:
            lib.add([d])
            fill(lib, embedder, sha)

        def ask(question: str, model: str = sha):
            return retrieve(
                db,
                None,
                question,
                lambda q: (10_000, lambda s: len(s.split())),
                embed_query=embedder.embed_query,
                model=model,
            )

        off = ask("Which player scored the winning goal in the 1998 World Cup final?")
        on = ask("Where did the cat sleep?")
    finally:
        embedder.close()
    assert off.dense and off.best_cosine is not None and off.not_found
    assert not on.not_found and on.best_cosine is not None and on.best_cosine >= NOT_FOUND_COSINE[sha]


def test_a_file_changed_while_it_is_indexed_is_one_line_and_the_next_run_takes_it(
    tmp_path: Path, lib: Library, monkeypatch: pytest.MonkeyPatch
):
    """A file written to between its hash and its parse is not indexed half-old, half-new; the next run
    indexes what it holds then. (The write is injected into the parse: a real editor cannot be timed.)"""

    import automix_local.documents.library as library_module

    note = tmp_path / "note.txt"
    note.write_text("The first draft says the meeting is on Monday.\n", encoding="utf-8")
    real_parse = library_module.parse

    def parse_while_edited(path: Path):  # type: ignore[no-untyped-def]
        doc = real_parse(path)
        path.write_text("The final draft says the meeting is on Friday.\n", encoding="utf-8")
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
        return doc

    monkeypatch.setattr(library_module, "parse", parse_while_edited)
    report = lib.add([note])
    assert report.indexed == [] and "changed while it was being indexed" in report.failed[0][1]
    monkeypatch.setattr(library_module, "parse", real_parse)
    again = lib.add([note])
    assert again.indexed == ["note.txt"] and "Friday" in lib.passages()[0].text


# --------------------------------------------------------------------------- vectors in memory, questions stored


def _brute_force(lib: Library, query: np.ndarray, model: str, document_ids: list[int] | None, k: int):
    """What the dense ranking was before the matrix was kept in memory: every vector read, a stable sort."""
    rows = list(lib.embeddings(model, document_ids))
    if not rows:
        return []
    ids = [pid for pid, _ in rows]
    sims = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in rows]) @ query
    return [(ids[i], float(sims[i])) for i in np.argsort(-sims, kind="stable")[:k]]


def test_the_vectors_in_memory_follow_every_change_to_the_library(tmp_path: Path):
    rng = np.random.default_rng(3)
    d = tmp_path / "notes"
    d.mkdir()
    for i in range(4):
        (d / f"n{i}.txt").write_text("\n\n".join(f"Note {i} part {j} about harbours." for j in range(5)), "utf-8")
    db = tmp_path / "library.sqlite"

    def fill_random(lib: Library) -> None:
        batch = lib.missing_embeddings("m", limit=1000)
        vecs = rng.standard_normal((len(batch), 8)).astype(np.float32)
        if len(vecs) > 1:
            vecs[1] = vecs[0]  # two equal vectors: ties keep passage order
        lib.store_embeddings("m", [(p.id, v.tobytes(), 8) for p, v in zip(batch, vecs, strict=True)])

    def same(lib: Library, q: np.ndarray) -> None:
        ids = [doc.id for doc in lib.documents()]
        for scope in (None, ids[:2], ids[-1:], []):
            for k in (1, 3, 50):
                assert dense_scored(lib, q, "m", scope, k) == _brute_force(lib, q, "m", scope, k), (scope, k)

    q = rng.standard_normal(8).astype(np.float32)
    with Library(db) as lib:
        lib.add([d])
        assert vector_matrix(lib, "m") is None and dense_scored(lib, q, "m", None, 5) == []
        fill_random(lib)
        held = vector_matrix(lib, "m")
        assert held is not None and vector_matrix(lib, "m") is held  # read once, then kept
        same(lib, q)
        lib.remove(["n0.txt"])  # its vectors go with its passages (ON DELETE CASCADE)
        assert vector_matrix(lib, "m") is not held
        same(lib, q)
    (d / "n1.txt").write_text("One short note now.", encoding="utf-8")
    with Library(db) as other:  # another process's connection re-indexes a file and fills its vectors
        other.reindex()
        fill_random(other)
    with Library(db) as lib:
        held = vector_matrix(lib, "m")
        assert held is not None and sorted(int(i) for i in held.ids) == sorted(p.id for p in lib.passages())
        same(lib, q)
    db.unlink()  # a library made anew at the same path is not taken for the old one
    with Library(db) as lib:
        lib.add([d / "n2.txt"])
        fill_random(lib)
        held = vector_matrix(lib, "m")
        assert held is not None and [int(i) for i in held.ids] == [p.id for p in lib.passages()]
        same(lib, q)


def test_a_library_of_schema_1_is_upgraded_and_keeps_its_vectors(tmp_path: Path):
    from automix_local.documents.library import MIGRATIONS

    db = tmp_path / "library.sqlite"
    old = sqlite3.connect(db)
    old.executescript(f"BEGIN; {MIGRATIONS[0]} PRAGMA user_version = 1; COMMIT;")
    old.execute("INSERT INTO documents VALUES (1, 'a.txt', '/a.txt', 'text', 'a', 'x', 1, 1, NULL, 5, 0)")
    old.execute("INSERT INTO passages VALUES (1, 1, 0, NULL, '', 0, 5, 'hello')")
    old.execute("INSERT INTO embeddings VALUES (1, 'm', 2, ?)", (np.array([0.6, 0.8], np.float32).tobytes(),))
    old.commit()
    old.close()
    with Library(db) as lib:
        assert lib.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert dense_scored(lib, np.array([1.0, 0.0], np.float32), "m", None, 5) == [(1, pytest.approx(0.6))]
        assert bm25(lib, "hello", None, 5) == [1]


def test_a_question_asked_again_takes_its_vector_from_memory_or_the_library(tmp_path: Path, embedding_model_path: Path):
    """The first time a question is asked its vector is computed and kept in the library (under a digest: not
    its text); asked again it costs a lookup — in the same process from memory, in a new one (a fresh embedder,
    as each `ask` is) from the library, without loading the model. Another query prefix is another vector."""
    from automix_local.backends.embed import LlamaEmbedder
    from automix_local.config import EmbeddingConfig, PathSource
    from automix_local.documents.asking import retrieve
    from automix_local.documents.vectors import fill

    d = tmp_path / "kitchen"
    d.mkdir()
    (d / "kettle.md").write_text("# Kettle\n\nDescale the kettle every four weeks with white vinegar.\n", "utf-8")
    (d / "pets.txt").write_text("The feline dozed all afternoon on the woollen rug by the fire.\n", encoding="utf-8")
    db = tmp_path / "library.sqlite"
    question = "Where did the cat sleep?"

    def embedder(prefix: str = "search_query: ") -> LlamaEmbedder:
        cfg = EmbeddingConfig(source=PathSource(embedding_model_path), query_prefix=prefix)  # type: ignore[arg-type]
        return LlamaEmbedder(cfg, embedding_model_path)

    def ask(emb: LlamaEmbedder):
        return retrieve(
            db,
            None,
            question,
            lambda q: (10, lambda s: len(s.split())),
            embed_query=emb.embed_query,
            model="m",
            query_store=emb,
        )

    first = embedder()
    try:
        with Library(db) as lib:
            lib.add([d])
            fill(lib, first, "m")
        cold = ask(first)
        assert first.query_hits == 0
        warm = ask(first)
        assert first.query_hits == 1  # from memory
        assert np.array_equal(first.embed_query(question), first.embed_query(question))
    finally:
        first.close()
    with Library(db) as lib:
        (stored,) = lib.db.execute("SELECT digest FROM query_vectors").fetchall()
    assert stored[0] == first.query_digest(question) and question not in stored[0]
    fresh = embedder()
    try:
        again = ask(fresh)
        assert not fresh.loaded  # the library had it: no model loaded
        ask(fresh)
        assert fresh.query_hits == 1 and not fresh.loaded  # then memory
    finally:
        fresh.close()
    assert cold.best_cosine == warm.best_cosine == again.best_cosine and cold.best_cosine is not None
    assert [p.id for p in cold.packed.passages] == [p.id for p in again.packed.passages]
    other = embedder(prefix="")
    try:
        assert other.query_digest(question) != first.query_digest(question)
        ask(other)
        assert other.loaded  # not found under another prefix: computed
    finally:
        other.close()


def test_a_busy_library_keeps_no_question_vector_rather_than_waiting(tmp_path: Path):
    import time

    db = tmp_path / "library.sqlite"
    with Library(db) as lib, Library(db) as other:
        other.db.execute("BEGIN IMMEDIATE")  # another process in the middle of indexing
        t0 = time.perf_counter()
        lib.store_query_vector("digest", b"\0" * 12)
        assert time.perf_counter() - t0 < 2  # not the connection's usual 10 s wait
        other.db.execute("COMMIT")
        assert lib.query_vector("digest") is None
        lib.store_query_vector("digest", b"\1" * 12)
        assert lib.query_vector("digest") == b"\1" * 12
        assert lib.db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000


def test_the_library_keeps_only_the_latest_question_vectors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import automix_local.documents.library as library_module

    monkeypatch.setattr(library_module, "QUERY_VECTORS_KEPT", 3)
    with Library(tmp_path / "library.sqlite") as lib:
        for i in range(5):
            lib.store_query_vector(f"q{i}", bytes([i]) * 4)
        kept = [r[0] for r in lib.db.execute("SELECT digest FROM query_vectors ORDER BY added, rowid")]
    assert kept == ["q2", "q3", "q4"]
