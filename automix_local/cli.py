"""The `automix-local` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .audit import Receipt
from .cascade import Cascade, Decided
from .config import Config, find_config, load_config
from .errors import EXIT_FAIL, EXIT_USAGE, AutomixError, UsageError
from .paths import default_paths
from .progress import ByteBar, ItemBar, print_table
from .sources import ModelError

if TYPE_CHECKING:
    from .ask import Answer, Source


class UserError(UsageError):
    """A foreseeable mistake on the command line: shown as one line, no traceback, exit ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.exit_code = code


def _err(message: str) -> None:
    print(f"automix-local: error: {message}", file=sys.stderr)


def _config(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


# --------------------------------------------------------------------------- ask


def _read_context(spec: str | None) -> str:
    if spec is None:
        return ""
    if spec == "-":
        return sys.stdin.read()
    path = Path(spec).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"context file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"context path is a directory, not a file: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"context file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read context file {path}: {exc.strerror}") from None


def _tty_approver(receipt: Receipt) -> bool:
    """Under remote = "ask": print the exact request to the terminal and send it only on an explicit yes."""
    err = sys.stderr
    print(f"\n── egress receipt: {receipt.tier} → {receipt.url}", file=err)
    print(
        f"   model {receipt.model} · {receipt.size} bytes · sha256 {receipt.sha256[:16]}… · send {receipt.send}"
        + (f" · redacted {_counts(receipt.redactions)}" if receipt.redactions else ""),
        file=err,
    )
    if receipt.replaced:
        print(f"   replaced (shown here only): {receipt.what_was_replaced()}", file=err)
    print(receipt.pretty(), file=err)
    try:
        with open("/dev/tty") as tty:
            print(f"Send this request to {receipt.host}? [y/N] ", end="", file=err, flush=True)
            reply = tty.readline().strip().lower()
    except OSError:
        return False
    return reply in ("y", "yes")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def _ask_source(args: argparse.Namespace, continuing: bool) -> Source | None:
    """What ``ask`` asks over, from its flags (None: the continued conversation's own source)."""
    from .ask import Source

    if (args.doc or args.all) and (args.context is not None or args.no_context):
        raise UserError("--doc/--all ask the document library: leave out --context and --no-context", EXIT_USAGE)
    if args.doc or args.all:
        return Source.library(args.doc or ())
    tags = tuple(t for t in (args.tag or []) if t)
    if args.context is not None:
        context = _read_context(args.context)
        document = str(Path(args.context).expanduser()) if args.context != "-" else None
        if context.strip() or not args.no_context:
            if not context.strip():
                raise UserError(
                    "the context is empty: pass --context FILE (or pipe a text to --context -), "
                    "or add --no-context to ask without a document",
                    EXIT_USAGE,
                )
            return Source.context(context, document, tags)
    if args.no_context:
        return Source.nothing()
    if continuing:
        return None
    # Without a document the model answers from nothing, and confidently: ask for one first.
    raise UserError(
        "the context was not given: pass --context FILE (or pipe a text to --context -), "
        "or add --no-context to ask without a document",
        EXIT_USAGE,
    )


def cmd_ask(args: argparse.Namespace) -> int:
    from .ask import AskService, Question
    from .cascade import Cascade
    from .streams import Returning

    question = " ".join(args.question).strip()
    if not question:
        raise UserError('the question is empty: automix-local ask --context FILE "your question"', EXIT_USAGE)
    if args.conversation is not None and args.continue_:
        raise UserError("--conversation ID and -c/--continue both say which conversation: give one", EXIT_USAGE)
    if args.no_save and (args.conversation is not None or args.continue_):
        raise UserError("--no-save asks a one-off question: leave out --conversation and -c/--continue", EXIT_USAGE)
    continuing = args.conversation is not None or args.continue_
    source = _ask_source(args, continuing)
    config = _config(args)
    if args.yes:
        approve: Callable[[Receipt], bool] | None = lambda receipt: True  # noqa: E731
    else:  # ask on the terminal (stdin may be the context); with no terminal, nobody is asked: nothing is sent
        approve = _tty_approver if sys.stderr.isatty() and _has_tty() else None
    cascade = Cascade(config, approve=approve)
    service = AskService(config, cascade)
    live = not args.json and sys.stdout.isatty()
    try:
        conversation = args.conversation
        if args.continue_:
            conversation = service.latest_conversation()
        changes = {k: v for k, v in (("remote", args.remote), ("send", args.send)) if v}
        events = Returning(service.ask(Question(question, source, conversation, policy=changes, save=not args.no_save)))
        for event in events:
            if live:
                _print_event(cascade, event)
        answer = events.value
    finally:
        service.close()
        cascade.close()
    if args.json:
        print(json.dumps(answer.to_json(), indent=2, ensure_ascii=False))
        return 0
    out = sys.stderr if live else sys.stdout
    if not live or answer.not_found_reason == "retrieval" or answer.not_sure:
        print(("→ " if live and answer.not_sure else "") + answer.text)
    if answer.not_sure_note:
        print(answer.not_sure_note, file=sys.stderr)
    if answer.retrieved is not None:
        _print_sources(answer, out)
    if answer.not_found_reason != "retrieval":
        print(answer.trace.summary(), file=out)
    for warning in answer.warnings:
        print(f"note: {warning}", file=sys.stderr)
    if answer.conversation is not None:
        print(f"saved as conversation {answer.conversation} (follow up: automix-local ask -c …)", file=sys.stderr)
    return 0


def _print_event(cascade: Cascade, event: object) -> None:
    """The live view of ``ask`` on a terminal: the answer's tokens on stdout, what the cascade does on stderr."""
    from .cascade import Answered, Blocked, Decided, EgressSent, Escalated, RemoteFailed, Token, VerifyStarted

    if isinstance(event, Token):
        print(event.text, end="", flush=True)
    elif isinstance(event, Answered):
        print(flush=True)
    elif isinstance(event, VerifyStarted):
        print(f"  [{event.tier}: checking ({event.strategy})…]", file=sys.stderr, flush=True)
    elif isinstance(event, Decided):
        print(f"  [{event.tier}: {_decided_words(cascade, event)}]", file=sys.stderr, flush=True)
    elif isinstance(event, Escalated):
        print(f"  [escalating to {event.to_tier}]", file=sys.stderr, flush=True)
    elif isinstance(event, EgressSent):
        r = event.receipt
        red = f", redacted {_counts(r.redactions)}" if r.redactions else ""
        print(
            f"  [sending {r.size} bytes to {r.host} (egress log #{event.entry_id}{red})]", file=sys.stderr, flush=True
        )
    elif isinstance(event, Blocked | RemoteFailed):
        print(f"  [{event.tier}: {event.reason}]", file=sys.stderr, flush=True)


def _print_sources(answer: Answer, out: Any) -> None:
    from .documents.retrieval import label

    assert answer.retrieved is not None
    packed = answer.retrieved.packed
    if answer.not_found_reason == "retrieval":
        return
    how = "whole documents" if packed.mode == "whole" else f"{len(packed.passages)} retrieved passages"
    if answer.not_found and answer.not_found_reason == "abstained":
        print("Not in your documents: the model found no answer in them.", file=out)
    elif answer.not_found_reason == "unsupported" and answer.not_found_note:
        print(answer.not_found_note, file=out)
    for c in answer.citations or []:
        mark = "" if c.supported else "  (the answer is not verbatim in this passage: check it)"
        print(f"  [{c.n}] {label(c.passage)}{mark}", file=out)
    print(f"  ({how}, {packed.tokens} tokens of the window)", file=out)


def _decided_words(cascade: Cascade, event: Decided) -> str:
    """A ``Decided`` event in plain words: "kept: likely right (46 %)"."""
    from .explain import plain_reason, routed_to

    d = event.decision
    to_tier = routed_to([t.name for t in cascade.tiers], event.tier, d.action, d.target)
    return plain_reason(d.action, d.why, d.confidence, event.tier, to_tier, pending=True)


def cmd_docs(args: argparse.Namespace) -> int:
    from .docs_cli import DocsError

    func = getattr(args, "docs_func", None)
    if func is None:
        raise UserError(
            "docs needs an action: add, list, show, remove or reindex (automix-local docs --help)", EXIT_USAGE
        )
    try:
        return int(func(args, _config(args)))
    except DocsError as exc:
        raise UserError(str(exc)) from None


def cmd_conversations(args: argparse.Namespace) -> int:
    import time as _time

    from .storage import Store, StoreError

    path = _config(args).paths.data_dir / "conversations.db"
    convs = []
    if path.exists():
        try:
            store = Store(path)
        except StoreError as exc:
            raise UserError(str(exc)) from None
        try:
            convs = [store.load(c.id) for c in store.conversations()]
        finally:
            store.close()
    if args.json:
        out = [
            {"id": c.id, "title": c.title, "updated": c.updated, "turns": len(c.turns), "document": c.document}
            for c in convs
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if not convs:
        print(f"no saved conversations ({path})")
        return 0
    for c in convs:
        when = _time.strftime("%Y-%m-%d %H:%M", _time.localtime(c.updated))
        print(f"{c.id:>4}  {when}  {len(c.turns):>3} question(s)  {c.title}")
    print("continue one: automix-local ask --conversation ID QUESTION (the latest: ask -c QUESTION)", file=sys.stderr)
    return 0


def _has_tty() -> bool:
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- audit


def cmd_audit(args: argparse.Namespace) -> int:
    import time as _time

    from .audit import AuditError, EgressLog, parse_since

    paths = default_paths()
    path = paths.egress_log
    if not path.exists():
        if args.json:
            print("[]" if args.show is None else "null")
        else:
            print(f"nothing has been sent to a remote tier (no egress log at {path})")
        if args.show is not None:
            raise UserError(f"no egress entry #{args.show}: the log is empty")
        return 0
    try:
        log = EgressLog(path)
    except AuditError as exc:
        raise UserError(str(exc)) from None
    try:
        if args.show is not None:
            entry = log.get(args.show)
            if entry is None:
                raise UserError(f"no egress entry #{args.show} in {path} (`automix-local audit` lists them)")
            if args.json:
                print(json.dumps(entry.to_json(with_payload=True), indent=2, ensure_ascii=False))
            else:
                # exactly the bytes that were sent, nothing added
                sys.stdout.buffer.write(entry.payload)
                sys.stdout.buffer.write(b"\n")
                print(
                    f"# entry #{entry.id}: {entry.bytes} bytes to {entry.url}, sha256 {entry.sha256}", file=sys.stderr
                )
            return 0
        try:
            since = parse_since(args.since) if args.since else None
        except ValueError as exc:
            raise UserError(str(exc), EXIT_USAGE) from None
        entries = log.entries(since=since)
    finally:
        log.close()
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2, ensure_ascii=False))
        return 0
    if not entries:
        print("no requests left this machine" + (f" since {args.since}" if args.since else ""))
        return 0
    print(f"{'id':>4}  {'time':19}  {'tier':10} {'host':24} {'bytes':>7}  {'sha256':12}  {'send':8} outcome")
    for e in entries:
        when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(e.time))
        red = f" · redacted {_counts(e.redactions)}" if e.redactions else ""
        tries = f" · {e.attempts} attempts" if e.attempts > 1 else ""
        detail = f": {e.detail}" if e.detail and e.outcome != "ok" else ""
        print(
            f"{e.id:>4}  {when}  {e.tier[:10]:10} {e.host[:24]:24} {e.bytes:>7}  {e.sha256[:12]}  {e.send:8} "
            f"{e.outcome}{detail}{red}{tries}"
        )
    print(f"{len(entries)} request(s); `automix-local audit --show ID` prints the exact payload", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- models


def _human(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


def _select(config: Config, names: Sequence[str]) -> list:
    """The tiers (and the [embedding] model) named, all of them by default."""
    from .sources import model_specs

    specs = model_specs(config)
    if not names:
        return specs
    known = {t.name: t for t in specs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(
            f"no tier named {', '.join(map(repr, unknown))} in {config.source_file}; models: {', '.join(known)}"
        )
    return [known[n] for n in names]


def cmd_models_list(args: argparse.Namespace) -> int:
    from .sources import model_specs, status

    config = _config(args)
    rows = []
    for i, tier in enumerate(model_specs(config), 1):
        st = status(tier, config.paths)
        rows.append(
            {
                "tier": i if i <= len(config.tiers) else None,  # null: the [embedding] or [ner] model
                "role": "tier" if i <= len(config.tiers) else tier.name,  # "embedding" or "ner"
                "name": tier.name,
                "backend": tier.backend,
                "where": st.where,
                "path": str(st.path) if st.path else None,
                "size": st.size,
                "present": st.present,
                "verified": st.verified,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"config: {config.source_file}")
    header: tuple[str, ...] = ("#", "NAME", "WHERE", "SIZE", "PRESENT", "VERIFIED")
    table: list[tuple[str, ...]] = [
        (
            str(r["tier"]) if r["tier"] is not None else str(r["role"])[:3],
            str(r["name"]),
            str(r["where"]),
            _human(r["size"] if isinstance(r["size"], int) else None),
            "remote"
            if str(r["where"]).startswith(("http://", "https://"))
            else "present"
            if r["present"]
            else "absent",
            str(r["verified"]),
        )
        for r in rows
    ]
    print_table(header, table)
    if any(r["verified"] == "unchecked" for r in rows):
        print("(unchecked: present, sha256 not yet computed; run `automix-local models verify`)")
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from .sources import pull

    config = _config(args)
    failures = 0
    for tier in _select(config, args.names):
        if tier.is_remote:
            print(f"{tier.name}: remote tier, nothing to pull")
            continue
        try:
            path = pull(tier, config.paths, say=lambda m: print(m, flush=True), progress=ByteBar(), show_pip=True)
            print(f"{tier.name}: ready ({path})")
        except ModelError as exc:
            _err(str(exc))
            failures += 1
    return EXIT_FAIL if failures else 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from .sources import pull_command, status

    config = _config(args)
    bad = 0
    for tier in _select(config, args.names):
        if tier.is_remote:
            continue
        st = status(tier, config.paths, full_hash=True)
        if not st.present:
            print(f"{tier.name}: absent — run: {pull_command(tier, config.source_file)}")
            bad += 1
        elif st.verified in ("ok", "no sha256"):
            print(f"{tier.name}: {st.verified} ({st.path})")
        else:
            print(
                f"{tier.name}: {st.verified.upper()} ({st.path}) — delete it and run: "
                f"{pull_command(tier, config.source_file)}"
            )
            bad += 1
    return EXIT_FAIL if bad else 0


# --------------------------------------------------------------------------- eval


def cmd_eval_run(args: argparse.Namespace) -> int:
    from .evaluation import run_eval

    config = _config(args)
    verifiers = [v.strip() for v in args.verifiers.split(",") if v.strip()]
    bad = [v for v in verifiers if v not in ("logprob", "sampled")]
    if bad:
        raise UserError(f"--verifiers: unknown strategy {', '.join(bad)}; expected logprob and/or sampled", EXIT_USAGE)
    bar: ItemBar | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ItemBar(total, done)
        bar.update(done)

    out = Path(args.out)
    items = run_eval(
        config, Path(args.data), out, args.limit, args.seed, verifiers, args.chunk, progress, hidden=args.hidden
    )
    print(f"recorded {items}; next: automix-local eval report {out}")
    return 0


def _costs(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise UserError(f"--costs: expected numbers like 1,50, got {text!r}", EXIT_USAGE) from None


def cmd_eval_report(args: argparse.Namespace) -> int:
    from .report import summary, write_report

    sizes = [int(x) for x in args.train_size.split(",")] if args.train_size else [50, 100, 200, 500]
    run = Path(args.run)
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent)
    command = (
        f"automix-local eval report {args.run} --costs {args.costs} --seeds {args.seeds} --train-size {args.train_size}"
        + (f" --verify-cost {args.verify_cost:g}" if args.verify_cost != 1.0 else "")
        + (f" --out {args.out}" if args.out else "")
    )
    res = write_report(run, out, _costs(args.costs) or [1.0, 50.0], args.seeds, sizes, command, args.verify_cost)
    print(summary(res))
    print(f"wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'cost_quality.png'}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .report import calibrate, load_run, versus_default

    run = Path(args.run)
    loaded = load_run(run)  # once: calibrating and the comparison with the default read the same items
    # the trade-off to fit for: [cascade] lambda or target_escalation of the config in use, if set
    cascade = load_config(args.config).cascade if getattr(args, "config", None) else None
    if args.router == "trust":
        return _calibrate_trust(args, loaded, run, cascade)
    router, spec, cs = calibrate(
        loaded,
        args.router,
        args.signal,
        _costs(args.costs),
        lambda_=cascade.lambda_ if cascade else None,
        target_escalation=cascade.target_escalation if cascade else None,
        verify_cost=args.verify_cost,
        abstain=not args.no_abstain,
    )
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / f"router-{args.router}.json"
    router.save(out)
    print(f"fitted {args.router} on {spec.name} ({cs.name} costs) → {out}")
    if router.abstain:
        print(
            "abstains at the first token when P(abstain) ≥ "
            + ", ".join(f"{t:.3g} ({k})" for k, t in router.abstain.items())
        )
    note = versus_default(loaded, spec)
    if note:
        print(note)
    print(f'use it in models.toml:\n  [cascade]\n  router = "{args.router}"\n  calibration = "{out.resolve()}"')
    return 0


def _calibrate_trust(args: argparse.Namespace, loaded: Any, run: Path, cascade: Any) -> int:
    from .report.outcomes import fit_router

    router = fit_router(loaded, cascade.target if cascade else "balanced", cascade.not_sure if cascade else None)
    router.prompt = {
        "layout": loaded.meta.get("layout", "paper"),
        "answer_examples": bool(loaded.meta.get("answer_examples", False)),
        "turns": False,
    }
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / "router-trust.json"
    router.save(out)
    p = router.operate()
    print(f"fitted trust on {len(loaded.items)} items → {out}")
    print(
        f"target {router.target!r}, not_sure {router.not_sure:g} (on these items, cross-fitted): trust {p.trust:+.3f}, "
        f"time {p.time:.2f}× always-{loaded.tiers[-1]}, escalated {p.escalated:.0%}, not sure {p.abstained:.0%}"
    )
    print(f'use it in models.toml:\n  [cascade]\n  router = "trust"\n  calibration = "{out.resolve()}"')
    return 0


# --------------------------------------------------------------------------- config


def cmd_config_path(args: argparse.Namespace) -> int:
    paths = default_paths()
    print(f"in use:      {find_config(getattr(args, 'config', None), paths)}")
    print(f"user config: {paths.user_config}")
    print(f"models:      {paths.models_dir}")
    print(f"data:        {paths.data_dir}")
    print(f"cache:       {paths.cache_dir}")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _config(args)
    print(f"{config.source_file}: ok ({len(config.tiers)} tiers: {', '.join(t.name for t in config.tiers)})")
    return 0


# --------------------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import gather, render

    if args.verify and sys.stderr.isatty():
        print("hashing every model file (a few seconds per GB)…", file=sys.stderr, flush=True)
    report = gather(getattr(args, "config", None), verify=args.verify)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return 0 if report.ok else EXIT_FAIL


# --------------------------------------------------------------------------- the app


def cmd_tui(args: argparse.Namespace) -> int:
    config = _config(args)
    context = Path(args.context).expanduser() if getattr(args, "context", None) else None
    if context is not None and not context.is_file():
        raise UserError(f"context file not found: {context}")
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        raise UserError("the app needs a terminal; for scripts use `automix-local ask` (see --help)")
    from .tui.app import AutomixApp

    app = AutomixApp(config, context)
    app.run()
    return app.return_code or 0  # a crash inside the app (Textual prints it) is not a success


# --------------------------------------------------------------------------- parser


def _add_verify_cost(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verify-cost",
        type=float,
        default=1.0,
        metavar="X",
        help="fixed costs: one verification as this share of a call of the tier it checks (default 1, the paper's)",
    )


DEFAULT_KEY_ENV = "AUTOMIX_API_KEY"


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import ServeError, serve

    name = args.api_key_env or DEFAULT_KEY_ENV
    key = os.environ.get(name, "").strip() or None
    if args.api_key_env and key is None:
        raise UserError(f"--api-key-env {name}: the environment variable {name} is not set or empty", EXIT_USAGE)
    config = _config(args)
    try:
        serve(config, args.host, args.port, key, log=lambda line: print(line, file=sys.stderr, flush=True))
    except ServeError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None
    return 0


def _help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """A command group run without its action: its help."""

    def show(args: argparse.Namespace) -> int:
        parser.print_help()
        return 0

    return show


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="models.toml to use")
    p = argparse.ArgumentParser(
        prog="automix-local",
        description="Answer questions over your documents with a small local model that checks itself "
        "and escalates only when it should.",
        parents=[common],
    )
    p.add_argument("--version", action="version", version=f"automix-local {__version__}")
    p.add_argument("--context", metavar="FILE", default=None, help="open the app with this file as the context")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", parents=[common], help="answer one question over a context")
    ask.add_argument("--context", metavar="FILE|-", help="text file to answer from ('-' reads stdin)")
    ask.add_argument("--json", action="store_true", help="print one JSON object with the answer and trace")
    ask.add_argument("question", nargs="*", help="the question")
    ask.add_argument("--yes", action="store_true", help='under policy remote = "ask", approve sending without asking')
    ask.add_argument("--remote", choices=["never", "ask", "allow"], help="override [policy] remote for this question")
    ask.add_argument("--send", choices=["question", "relevant", "full"], help="override [policy] send")
    ask.add_argument(
        "--tag", action="append", metavar="TAG", help='tag the context (matched by private = ["tag:…"] rules)'
    )
    ask.add_argument(
        "--conversation",
        type=int,
        metavar="ID",
        help="continue a saved conversation: its document and earlier turns (the question is saved to it)",
    )
    ask.add_argument(
        "-c",
        "--continue",
        dest="continue_",
        action="store_true",
        help="continue the latest conversation (every question is saved: `conversations` lists them)",
    )
    ask.add_argument("--no-save", action="store_true", help="a one-off question: do not save it as a conversation")
    ask.add_argument(
        "--no-context", action="store_true", help="ask without a document (the model answers from what it knows)"
    )
    ask.add_argument(
        "--doc", action="append", metavar="NAME", help="ask this document of the library (repeatable; docs list)"
    )
    ask.add_argument("--all", action="store_true", help="ask across the whole document library")
    conv = sub.add_parser("conversations", parents=[common], help="the saved conversations (the app's history)")
    conv.add_argument("--json", action="store_true", help="machine-readable output")
    conv.set_defaults(func=cmd_conversations)

    from .docs_cli import add_parser as add_docs_parser

    add_docs_parser(sub, common)
    sub.choices["docs"].set_defaults(func=cmd_docs)
    au = sub.add_parser("audit", parents=[common], help="what left this machine: the egress log")
    au.add_argument("--since", metavar="WHEN", help="only since a date/time (2026-11-22T10:00) or an age (2h, 7d)")
    au.add_argument("--json", action="store_true", help="machine-readable output")
    au.add_argument("--show", type=int, metavar="ID", help="print the exact payload of one request")
    au.set_defaults(func=cmd_audit)
    ask.set_defaults(func=cmd_ask)

    models = sub.add_parser("models", parents=[common], help="list, pull and verify the tiers' models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    ml = msub.add_parser("list", parents=[common], help="tiers, where their models are, present, verified")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(func=cmd_models_list)
    mp = msub.add_parser("pull", parents=[common], help="download and verify models (all tiers by default)")
    mp.add_argument("names", nargs="*", metavar="NAME")
    mp.set_defaults(func=cmd_models_pull)
    mv = msub.add_parser("verify", parents=[common], help="re-hash models and compare with their sha256")
    mv.add_argument("names", nargs="*", metavar="NAME")
    mv.set_defaults(func=cmd_models_verify)
    models.set_defaults(func=_help(models))

    ev = sub.add_parser("eval", parents=[common], help="measure quality per cost on a QA dataset")
    esub = ev.add_subparsers(dest="eval_command", metavar="ACTION")
    er = esub.add_parser("run", parents=[common], help="record every tier's answers, scores, costs and signals")
    er.add_argument("--data", required=True, metavar="FILE.jsonl", help="items in the shared JSONL schema")
    er.add_argument("--out", required=True, metavar="DIR", help="where the run is recorded (resumable)")
    er.add_argument("--limit", type=int, default=None, metavar="N", help="first N items (after --seed shuffle)")
    er.add_argument("--seed", type=int, default=None, metavar="S", help="shuffle items with this seed first")
    er.add_argument("--verifiers", default="logprob,sampled", help="strategies to record (default: both)")
    er.add_argument(
        "--hidden",
        action="store_true",
        help="also record each answer's final hidden state (float16, base64) for a probe (issue 13)",
    )
    er.add_argument("--chunk", type=int, default=8, help=argparse.SUPPRESS)
    er.set_defaults(func=cmd_eval_run)
    rp = esub.add_parser("report", parents=[common], help="quality per cost from a recorded run (no model needed)")
    rp.add_argument("run", metavar="DIR", help="an `eval run` directory, or a paper-format .jsonl file")
    rp.add_argument("--costs", default="1,50", help="fixed per-call cost of each tier, e.g. 1,50 (paper)")
    rp.add_argument("--seeds", type=int, default=10, help="random train/test splits (default 10)")
    _add_verify_cost(rp)
    rp.add_argument("--train-size", default="50,100,200,500", help="train sizes for the learning curve")
    rp.add_argument("--out", default=None, metavar="DIR", help="where to write the report (default: the run dir)")
    rp.set_defaults(func=cmd_eval_report)
    ev.set_defaults(func=_help(ev))

    cal = sub.add_parser("calibrate", parents=[common], help="fit a router on a recorded run for models.toml")
    cal.add_argument("run", metavar="DIR")
    cal.add_argument("--router", default="pomdp", choices=["threshold", "pomdp", "self_consistency", "trust"])
    cal.add_argument("--signal", default=None, help="signal name from the report (default: the best held-out)")
    cal.add_argument("--costs", default=None, help="per-call tier costs (default: the run's models.toml costs)")
    cal.add_argument("--out", default=None, metavar="FILE", help="router JSON (default: DIR/router-ROUTER.json)")
    cal.add_argument(
        "--no-abstain",
        action="store_true",
        help="fit no threshold for abstaining at the first token (the shipped default: how often a question "
        "has no answer depends on the user's documents)",
    )
    _add_verify_cost(cal)
    cal.set_defaults(func=cmd_calibrate)

    sv = sub.add_parser("serve", parents=[common], help="the cascade as an OpenAI-compatible server (/v1)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    sv.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    sv.add_argument(
        "--api-key-env",
        metavar="NAME",
        default=None,
        help=f"environment variable holding the API key clients must send as a bearer token (default: "
        f"{DEFAULT_KEY_ENV} when set); required for a --host other than loopback",
    )
    sv.set_defaults(func=cmd_serve)

    doc = sub.add_parser(
        "doctor", parents=[common], help="what to know before asking for help: the build, models, config, speeds"
    )
    doc.add_argument("--json", action="store_true", help="one JSON object (fields in docs/cli.md)")
    doc.add_argument("--verify", action="store_true", help="re-hash every model file (else the hash cache says)")
    doc.set_defaults(func=cmd_doctor)

    cfg = sub.add_parser("config", parents=[common], help="where the config and state live; check a config")
    csub = cfg.add_subparsers(dest="config_command", metavar="ACTION")
    csub.add_parser("path", parents=[common], help="show the config lookup and state dirs").set_defaults(
        func=cmd_config_path
    )
    csub.add_parser("check", parents=[common], help="validate the config in use").set_defaults(func=cmd_config_check)
    cfg.set_defaults(func=cmd_config_path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        args.func = cmd_tui
    try:
        return int(args.func(args) or 0)
    except AutomixError as exc:  # every foreseeable failure (errors.py): one line, its exit code
        _err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
