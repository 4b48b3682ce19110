"""`automix-local docs …`: the document library on the command line (add, list, show, remove, reindex)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .documents.library import AddReport, Library, LibraryError, default_path
from .documents.library import Progress as FileProgress
from .documents.parse import encoding_name
from .errors import AutomixError
from .progress import Update, count_bar

if TYPE_CHECKING:
    from .config import Config


class DocsError(AutomixError):
    """One line for the user (the CLI prints it like its other errors)."""

    http_status = 400


def open_library(config: Config) -> Library:
    try:
        return Library(default_path(config.paths.data_dir))
    except LibraryError as exc:
        raise DocsError(str(exc)) from None


def _progress(what: str, unit: str = "files") -> Any:
    """A progress bar (done / all, time left) on a terminal; None when piped."""
    return count_bar(what, unit, "· {task.fields[passages]} passages" if unit == "files" else None)


def _file_progress(update: Update | None) -> FileProgress | None:
    """The library's (file, done, total, passages) callback onto a progress bar's update."""
    if update is None:
        return None
    return lambda name, done, total, passages: update(done, total, Path(name).name, passages=passages)


def _summary(report: AddReport) -> str:
    parts = [f"{len(report.indexed)} indexed ({report.passages} passages)"]
    if report.unchanged:
        parts.append(f"{len(report.unchanged)} unchanged")
    if report.removed:
        parts.append(f"{len(report.removed)} removed (file gone)")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped (not .txt/.md/.pdf/.html)")
    if report.failed:
        parts.append(f"{len(report.failed)} failed")
    return ", ".join(parts)


def _report(report: AddReport) -> int:
    for _, reason in report.failed:
        print(f"  ✗ {reason}", file=sys.stderr)
    for name, pieces in report.hidden:  # never given to a model: nobody reading the file sees them (issue 23)
        what = "piece" if pieces == 1 else "pieces"
        print(f"  · {name}: {pieces} hidden {what} left out (comments, hidden elements or invisible text)")
    for name, n in report.instructions:  # nor these: they address the model, not the reader (injection.py)
        what = "sentence that reads" if n == 1 else "sentences that read"
        print(f"  · {name}: {n} {what} as instructions to the model left out")
    for name, encoding in report.encodings:  # detected, not declared: say so, in case the guess is wrong
        print(f"  · {name}: not UTF-8, read as {encoding_name(encoding)}")
    print(_summary(report))
    return 1 if report.failed else 0


def cmd_docs_add(args: argparse.Namespace, config: Config) -> int:
    with open_library(config) as lib:
        with _progress("indexing") as update:
            try:
                report = lib.add(args.paths, progress=_file_progress(update))
            except LibraryError as exc:
                raise DocsError(f"{exc} (what was indexed before is kept; run the command again to resume)") from None
        code = _report(report)
        _fill_vectors(lib, config)
    return code


def cmd_docs_reindex(args: argparse.Namespace, config: Config) -> int:
    with open_library(config) as lib:
        with _progress("re-indexing") as update:
            try:
                report = lib.reindex(progress=_file_progress(update))
            except LibraryError as exc:
                raise DocsError(str(exc)) from None
        code = _report(report)
        _fill_vectors(lib, config)
    return code


def _fill_vectors(lib: Library, config: Config) -> None:
    """After BM25 (already searchable): the passages' vectors, with progress. Ctrl+C keeps what was done."""
    from .documents.vectors import counts, fill, model_key, open_embedder_checked

    embedder, warning = open_embedder_checked(config)
    if embedder is None or config.embedding is None:
        if warning is not None:  # the file is there but unusable: say which and how to fix it
            print(warning, file=sys.stderr)
        elif config.embedding is not None:
            print("vectors: the embedding model is not downloaded (BM25 only): automix-local models pull embedding")
        return
    key = model_key(config.embedding)
    done, total = counts(lib, key)
    if done >= total:
        return
    try:
        with _progress("embedding", "passages") as update:
            added = fill(lib, embedder, key, progress=update)
        print(f"vectors: {added} passages embedded ({done + added}/{total})")
    except KeyboardInterrupt:
        now, _ = counts(lib, key)
        print(f"\ninterrupted: BM25 is complete; vectors for {now}/{total} passages (the next docs add continues)")
        raise SystemExit(130) from None
    finally:
        embedder.close()


def cmd_docs_list(args: argparse.Namespace, config: Config) -> int:
    from .documents.vectors import counts, embedding_warning, model_key, state_line

    with open_library(config) as lib:
        docs = lib.documents()
        vectors = state_line(lib, config)
        if config.embedding is not None:
            done, total = counts(lib, model_key(config.embedding))
            if vectors == f"vectors {done}/{total}" and done < total:
                vectors += " (docs add or docs reindex fills in the rest)"
    if args.json or not docs:
        if args.json:
            print(json.dumps([d.to_json() for d in docs], indent=2, ensure_ascii=False))
        else:
            print("the library is empty: automix-local docs add PATH…  (files, folders, globs)")
        warning = embedding_warning(config)  # no summary line below to carry it
        if warning is not None:
            print(warning, file=sys.stderr)
        return 0
    width = max(len(d.name) for d in docs)
    for d in docs:
        pages = (
            f"{d.pages} p." if d.pages else (f"{d.chars / 1000:.1f} k chars" if d.chars >= 1000 else f"{d.chars} chars")
        )
        print(f"{d.name:<{width}}  {d.kind:<8} {pages:>9}  {d.passages:>5} passages  {d.title}")
    total = sum(d.passages for d in docs)
    print(f"{len(docs)} document(s), {total} passages · BM25 ready · {vectors}", file=sys.stderr)
    return 0


def cmd_docs_show(args: argparse.Namespace, config: Config) -> int:
    with open_library(config) as lib:
        try:
            d = lib.find(args.name)
        except LibraryError as exc:
            raise DocsError(str(exc)) from None
        passages = lib.passages([d.id])
    if args.json:
        out = d.to_json() | {
            "passage_list": [
                {
                    "seq": p.seq,
                    "page": p.page,
                    "heading": list(p.heading),
                    "start": p.start,
                    "end": p.end,
                    "text": p.text,
                }
                for p in passages
            ]
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.indexed))
    print(f"{d.name} — {d.title}")
    print(f"  file      {d.path}")
    print(f"  kind      {d.kind}" + (f", {d.pages} pages" if d.pages else "") + f", {d.chars} characters")
    print(f"  indexed   {when}, sha256 {d.sha256[:16]}…")
    print(f"  passages  {d.passages} (BM25 ready), {d.embedded} with vectors")
    for p in passages[: args.passages]:
        text = " ".join(p.text.split())
        where = f" ({p.where})" if p.where else ""
        print(f"  [{p.seq + 1}]{where} {text[:110]}{'…' if len(text) > 110 else ''}")
    if len(passages) > args.passages:
        print(f"  … {len(passages) - args.passages} more (--passages N shows more)")
    return 0


def cmd_docs_remove(args: argparse.Namespace, config: Config) -> int:
    with open_library(config) as lib:
        try:
            gone = lib.remove(args.names)
        except LibraryError as exc:
            raise DocsError(str(exc)) from None
    print(f"removed {', '.join(gone)} (the files themselves are untouched)")
    return 0


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    docs = sub.add_parser("docs", parents=[common], help="the document library: add, list, show, remove, reindex")
    dsub = docs.add_subparsers(dest="docs_command", metavar="ACTION")
    a = dsub.add_parser("add", parents=[common], help="index files, folders (recursively) and globs")
    a.add_argument("paths", nargs="+", metavar="PATH")
    a.set_defaults(docs_func=cmd_docs_add)
    ls = dsub.add_parser("list", parents=[common], help="the indexed documents")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(docs_func=cmd_docs_list)
    sh = dsub.add_parser("show", parents=[common], help="one document: metadata, passages, index state")
    sh.add_argument("name", metavar="NAME")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--passages", type=int, default=10, metavar="N", help="how many passages to print (10)")
    sh.set_defaults(docs_func=cmd_docs_show)
    rm = dsub.add_parser("remove", parents=[common], help="forget documents (the files are untouched)")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.set_defaults(docs_func=cmd_docs_remove)
    ri = dsub.add_parser("reindex", parents=[common], help="re-read every document: changed re-indexed, gone dropped")
    ri.set_defaults(docs_func=cmd_docs_reindex)
