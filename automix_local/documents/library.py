"""The document library: the user's files, their passages and a full-text index, in one SQLite file.

* ``add(paths)`` takes files, folders (recursively) and glob patterns. A file whose content hash is
  unchanged is skipped, a changed one is re-indexed, a new one indexed; each file in a transaction of
  its own, so Ctrl+C or a crash loses nothing already indexed and a re-run resumes where it stopped.
* BM25 comes from SQLite's FTS5 (an external-content table kept in step by triggers): a file is
  searchable the moment its transaction commits. Dense vectors live in ``embeddings`` and fill in later.
* ``reindex()`` re-reads every document: changed files are re-indexed, vanished ones dropped.

Errors are one line (``LibraryError``, or the file's ``DocumentError``); one bad file never stops a
folder.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AutomixError
from .parse import SUFFIXES, DocumentError, parse, without_instructions
from .passages import split

MIGRATIONS = [
    """
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        path TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        pages INTEGER,
        chars INTEGER NOT NULL,
        indexed REAL NOT NULL
    );
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        page INTEGER,
        heading TEXT NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX passages_by_document ON passages(document_id, seq);
    CREATE VIRTUAL TABLE passages_fts USING fts5(
        text, heading, content='passages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
    END;
    CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts(passages_fts, rowid, text, heading) VALUES ('delete', old.id, old.text, old.heading);
    END;
    CREATE TABLE embeddings (
        passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL,
        vector BLOB NOT NULL
    );
    """,
    # 2 (issue 24 §4): a counter that every change to the vectors bumps, so a process can keep the vectors in
    # memory and know when to read them again (it starts at random: a library made anew at the same path
    # does not pass for the old one); and the vectors of questions already asked, keyed by a digest
    # (of the model, the query prefix and the question: the question's text is not stored)
    """
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters(name, value) VALUES ('embeddings', abs(random() % 1000000000000));
    CREATE TRIGGER embeddings_ai AFTER INSERT ON embeddings BEGIN
        UPDATE counters SET value = value + 1 WHERE name = 'embeddings';
    END;
    CREATE TRIGGER embeddings_ad AFTER DELETE ON embeddings BEGIN
        UPDATE counters SET value = value + 1 WHERE name = 'embeddings';
    END;
    CREATE TRIGGER embeddings_au AFTER UPDATE ON embeddings BEGIN
        UPDATE counters SET value = value + 1 WHERE name = 'embeddings';
    END;
    CREATE TABLE query_vectors (
        digest TEXT PRIMARY KEY,
        vector BLOB NOT NULL,
        added REAL NOT NULL
    );
    CREATE INDEX query_vectors_by_age ON query_vectors(added);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
QUERY_VECTORS_KEPT = 2000  # the vectors of the last 2,000 questions asked (3 KB each at 768 dimensions)
HEADING_SEP = " › "
# a passage with its document's name, in the order _passage() reads them
_PASSAGE_COLUMNS = 'p.id, d.name, p.document_id, p.seq, p.page, p.heading, p.start, p."end", p.text'


class LibraryError(AutomixError):
    """The library cannot be used as asked. str() is the one line shown to the user."""

    http_status = 400


@dataclass(frozen=True)
class Document:
    id: int
    name: str
    path: str
    kind: str
    title: str
    sha256: str
    size: int
    pages: int | None
    chars: int
    indexed: float
    passages: int = 0
    embedded: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "title": self.title,
            "pages": self.pages,
            "chars": self.chars,
            "passages": self.passages,
            "embedded": self.embedded,
            "sha256": self.sha256,
            "indexed": self.indexed,
        }


@dataclass(frozen=True)
class StoredPassage:
    id: int
    document: str  # the document's name
    document_id: int
    seq: int
    page: int | None
    heading: tuple[str, ...]
    start: int
    end: int
    text: str

    @property
    def where(self) -> str:
        """ "p. 3" or "Installation › On Linux" or "" — how a citation names its place."""
        if self.page is not None:
            return f"p. {self.page}"
        return HEADING_SEP.join(self.heading)


@dataclass
class AddReport:
    """What ``add``/``reindex`` did, file by file."""

    indexed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unsupported file types inside folders
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, one-line reason)
    passages: int = 0
    # (name, pieces) for indexed files with text a reader does not see, left out (ParsedDocument.hidden)
    hidden: list[tuple[str, int]] = field(default_factory=list)
    # (name, sentences) for indexed files with sentences that read as instructions to the model, left out
    instructions: list[tuple[str, int]] = field(default_factory=list)
    # (name, encoding) for indexed text files not in UTF-8, read in the encoding detected (ParsedDocument.encoding)
    encodings: list[tuple[str, str]] = field(default_factory=list)


Progress = Callable[[str, int, int, int], None]  # (file just handled, files done, files in all, passages so far)


def expand(specs: Iterable[str | Path]) -> tuple[list[Path], list[str], list[tuple[str, str]]]:
    """Files to index from files, folders (recursively) and glob patterns: (supported files, skipped
    unsupported files, (spec, reason) for specs that match nothing)."""
    files: list[Path] = []
    skipped: list[str] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def take(p: Path, explicit: bool) -> None:
        rp = p.resolve()
        if rp in seen:
            return
        if p.suffix.lower() in SUFFIXES:
            seen.add(rp)
            files.append(rp)
        elif explicit:
            files.append(rp)  # named on purpose: parse() says why it cannot be read
            seen.add(rp)
        else:
            skipped.append(str(p))

    for spec in specs:
        p = Path(str(spec)).expanduser()
        if p.is_dir():
            for f in sorted(x for x in p.rglob("*") if x.is_file() and not _hidden(x.relative_to(p))):
                take(f, explicit=False)
        elif p.is_file():
            take(p, explicit=True)
        elif glob.has_magic(str(p)):
            matched = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            if not matched:
                missing.append((str(spec), "matches no file"))
            for m in matched:
                if m.is_file():
                    take(m, explicit=False)
                elif m.is_dir():
                    for f in sorted(x for x in m.rglob("*") if x.is_file() and not _hidden(x.relative_to(m))):
                        take(f, explicit=False)
        else:
            missing.append((str(spec), "no such file or folder"))
    return files, skipped, missing


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Library:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.OperationalError as exc:
            raise LibraryError(f"{path}: cannot open the document library ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise LibraryError(
                f"{path}: not a document library, or damaged ({exc}); move it away to start over"
            ) from None
        except OSError as exc:
            raise LibraryError(f"{path}: cannot create the document library ({exc.strerror})") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path} was written by a newer automix-local (schema {version} > {SCHEMA_VERSION}); upgrade"
            )
        for step in range(version, SCHEMA_VERSION):
            self.db.executescript(f"BEGIN; {MIGRATIONS[step]} PRAGMA user_version = {step + 1}; COMMIT;")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading
    def documents(self) -> list[Document]:
        rows = self.db.execute(
            "SELECT d.id, d.name, d.path, d.kind, d.title, d.sha256, d.size, d.pages, d.chars, d.indexed,"
            " (SELECT count(*) FROM passages p WHERE p.document_id = d.id),"
            " (SELECT count(*) FROM passages p JOIN embeddings e ON e.passage_id = p.id WHERE p.document_id = d.id)"
            " FROM documents d ORDER BY d.name"
        ).fetchall()
        return [Document(*r) for r in rows]

    def find(self, name: str) -> Document:
        """A document by name, path or id; one line naming the choices otherwise."""
        docs = self.documents()
        path = str(Path(name).expanduser().resolve()) if name else ""
        for d in docs:
            if name in (d.name, str(d.id)) or d.path == path:
                return d
        close = [d.name for d in docs if name.lower() in d.name.lower()]
        hint = f"; did you mean {', '.join(close[:5])}?" if close else "; `automix-local docs list` shows them"
        raise LibraryError(f"no document named {name!r} in the library{hint}")

    def passages(self, document_ids: Iterable[int] | None = None) -> list[StoredPassage]:
        sql = f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.document_id"
        args: tuple[Any, ...] = ()
        if document_ids is not None:
            ids = list(document_ids)
            sql += f" WHERE p.document_id IN ({','.join('?' * len(ids))})"
            args = tuple(ids)
        rows = self.db.execute(sql + " ORDER BY p.document_id, p.seq", args).fetchall()
        return [_passage(r) for r in rows]

    def passage(self, pid: int) -> StoredPassage:
        row = self.db.execute(
            f"SELECT {_PASSAGE_COLUMNS} FROM passages p JOIN documents d ON d.id = p.document_id WHERE p.id = ?",
            (pid,),
        ).fetchone()
        if row is None:
            raise LibraryError(f"no passage {pid}")
        return _passage(row)

    # ------------------------------------------------------------------ writing
    def add(self, specs: Iterable[str | Path], progress: Progress | None = None) -> AddReport:
        files, skipped, missing = expand(specs)
        report = AddReport(skipped=skipped, failed=list(missing))
        for n, f in enumerate(files, 1):
            self._add_one(f, report)
            if progress is not None:
                progress(str(f), n, len(files), report.passages)
        return report

    def reindex(self, progress: Progress | None = None) -> AddReport:
        report = AddReport()
        docs = self.documents()
        for n, d in enumerate(docs, 1):
            p = Path(d.path)
            if not p.is_file():
                self._delete(d.id)
                report.removed.append(d.name)
            else:
                self._add_one(p, report)
            if progress is not None:
                progress(d.path, n, len(docs), report.passages)
        return report

    def remove(self, names: Iterable[str]) -> list[str]:
        gone = []
        for name in names:
            d = self.find(name)
            self._delete(d.id)
            gone.append(d.name)
        return gone

    def _delete(self, doc_id: int) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM passages WHERE document_id = ?", (doc_id,))
            self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def _add_one(self, path: Path, report: AddReport) -> None:
        shown = str(path)
        try:
            st = path.stat()
            row = self.db.execute(
                "SELECT id, sha256, size, mtime_ns, name FROM documents WHERE path = ?", (str(path),)
            ).fetchone()
            if row is not None and row[2] == st.st_size and row[3] == st.st_mtime_ns:
                report.unchanged.append(row[4])
                return
            digest = file_sha256(path)
            if row is not None and row[1] == digest:  # touched, not changed: remember the new mtime
                with self._transaction():
                    self.db.execute("UPDATE documents SET mtime_ns = ? WHERE id = ?", (st.st_mtime_ns, row[0]))
                report.unchanged.append(row[4])
                return
            doc = without_instructions(parse(path))
            pieces = split(doc)
            # changed since it was hashed? (a stat, not a second read of a large file)
            now = path.stat()
            if (now.st_size, now.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise DocumentError(f"{path}: changed while it was being indexed; run the command again")
        except DocumentError as exc:
            report.failed.append((shown, str(exc)))
            return
        except PermissionError:
            report.failed.append((shown, f"{path}: permission denied"))
            return
        except FileNotFoundError:
            report.failed.append((shown, f"{path}: vanished while it was being indexed"))
            return
        except OSError as exc:
            report.failed.append((shown, f"{path}: cannot read ({exc.strerror})"))
            return
        with self._transaction():  # one file, one transaction: all its passages or none
            if row is not None:
                doc_id, name = row[0], row[4]
                self.db.execute("DELETE FROM passages WHERE document_id = ?", (doc_id,))
                self.db.execute(
                    "UPDATE documents SET kind = ?, title = ?, sha256 = ?, size = ?, mtime_ns = ?, pages = ?,"
                    " chars = ?, indexed = ? WHERE id = ?",
                    (
                        doc.kind,
                        doc.title,
                        digest,
                        st.st_size,
                        st.st_mtime_ns,
                        doc.pages,
                        len(doc.text),
                        time.time(),
                        doc_id,
                    ),
                )
            else:
                name = self._unique_name(path)
                cur = self.db.execute(
                    "INSERT INTO documents(name, path, kind, title, sha256, size, mtime_ns, pages, chars, indexed)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        str(path),
                        doc.kind,
                        doc.title,
                        digest,
                        st.st_size,
                        st.st_mtime_ns,
                        doc.pages,
                        len(doc.text),
                        time.time(),
                    ),
                )
                doc_id = int(cur.lastrowid or 0)
            self.db.executemany(
                'INSERT INTO passages(document_id, seq, page, heading, start, "end", text)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (doc_id, i, p.page, HEADING_SEP.join(p.heading), p.start, p.end, p.text)
                    for i, p in enumerate(pieces)
                ],
            )
        report.indexed.append(name)
        report.passages += len(pieces)
        if doc.hidden:
            report.hidden.append((name, doc.hidden))
        if doc.instructions:
            report.instructions.append((name, doc.instructions))
        if doc.encoding:
            report.encodings.append((name, doc.encoding))

    def _unique_name(self, path: Path) -> str:
        """The file name; with as many parent folders as it takes to tell two files of one name apart."""
        taken = {r[0] for r in self.db.execute("SELECT name FROM documents")}
        parts = path.parts
        for k in range(1, len(parts) + 1):
            name = "/".join(parts[-k:])
            if name not in taken:
                return name
        return str(path)

    def _transaction(self) -> _Tx:
        return _Tx(self.db, self.path)

    # ------------------------------------------------------------------ embeddings
    def missing_embeddings(self, model: str, limit: int = 64) -> list[StoredPassage]:
        rows = self.db.execute(
            f"SELECT {_PASSAGE_COLUMNS}"
            " FROM passages p JOIN documents d ON d.id = p.document_id"
            " LEFT JOIN embeddings e ON e.passage_id = p.id AND e.model = ?"
            " WHERE e.passage_id IS NULL ORDER BY p.document_id, p.seq LIMIT ?",
            (model, limit),
        ).fetchall()
        return [_passage(r) for r in rows]

    def store_embeddings(self, model: str, items: Iterable[tuple[int, bytes, int]]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO embeddings(passage_id, model, dim, vector) VALUES (?, ?, ?, ?)",
                [(pid, model, dim, blob) for pid, blob, dim in items],
            )

    def embeddings_version(self) -> int:
        """A number that changes whenever any passage's vector is added, replaced or removed (in any process)."""
        return int(self.db.execute("SELECT value FROM counters WHERE name = 'embeddings'").fetchone()[0])

    def embedding_matrix(self, model: str) -> tuple[int, list[int], list[int], bytes]:
        """Every vector of this model at once, in passage order: (``embeddings_version``, passage ids, their
        documents' ids, the vectors' bytes joined), read in one transaction so that the four agree."""
        with self._reading():
            version = self.embeddings_version()
            rows = self.db.execute(
                "SELECT e.passage_id, p.document_id, e.vector FROM embeddings e JOIN passages p ON p.id = e.passage_id"
                " WHERE e.model = ? ORDER BY e.passage_id",
                (model,),
            ).fetchall()
        return version, [r[0] for r in rows], [r[1] for r in rows], b"".join(r[2] for r in rows)

    def query_vector(self, digest: str) -> bytes | None:
        """The stored vector of a question (by ``LlamaEmbedder.query_digest``), or None."""
        row = self.db.execute("SELECT vector FROM query_vectors WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def store_query_vector(self, digest: str, vector: bytes) -> None:
        """Keep a question's vector (the last ``QUERY_VECTORS_KEPT``). Best effort: a library busy with another
        process's writes keeps nothing rather than making the question wait."""
        self.db.execute("PRAGMA busy_timeout = 200")  # wait for another writer a moment, not the usual 10 s
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return
        finally:
            self.db.execute("PRAGMA busy_timeout = 10000")
        try:
            self.db.execute(
                "INSERT OR REPLACE INTO query_vectors(digest, vector, added) VALUES (?, ?, ?)",
                (digest, vector, time.time()),
            )
            self.db.execute(
                "DELETE FROM query_vectors WHERE digest IN"
                " (SELECT digest FROM query_vectors ORDER BY added DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (QUERY_VECTORS_KEPT,),
            )
            self.db.execute("COMMIT")
        except sqlite3.OperationalError:
            self.db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """One read transaction (a consistent snapshot under WAL) unless one is already open."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    def embeddings(self, model: str, document_ids: Iterable[int] | None = None) -> Iterator[tuple[int, bytes]]:
        sql = "SELECT e.passage_id, e.vector FROM embeddings e JOIN passages p ON p.id = e.passage_id WHERE e.model = ?"
        args: list[Any] = [model]
        if document_ids is not None:
            ids = list(document_ids)
            sql += f" AND p.document_id IN ({','.join('?' * len(ids))})"
            args += ids
        yield from self.db.execute(sql, args)


class _Tx:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error (Ctrl+C included); a locked or full database is one
    line."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path

    def __enter__(self) -> None:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LibraryError(f"{self.path}: {exc} (another automix-local indexing?); try again") from None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if kind is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.OperationalError as e:
                self.db.execute("ROLLBACK")
                raise LibraryError(f"{self.path}: could not save ({e}); nothing of this file was kept") from None
        self.db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            raise LibraryError(f"{self.path}: {exc}; nothing of this file was kept") from None


def _passage(r: tuple[Any, ...]) -> StoredPassage:
    heading = tuple(h for h in r[5].split(HEADING_SEP) if h) if r[5] else ()
    return StoredPassage(r[0], r[1], r[2], r[3], r[4], heading, r[6], r[7], r[8])


def default_path(data_dir: Path) -> Path:
    return data_dir / "library.sqlite"
