"""The same articles as Markdown, HTML and PDF: does the format change what retrieval finds?

    .venv/bin/python bench/documents_formats.py --data ../shared/data/squad_v2_dev_public.jsonl \
        --articles 4 --seed 1 --out docs/results/documents_formats.md

A few SQuAD 2.0 articles (chosen by seed) are written three ways — Markdown (a title and the paragraphs,
as bench/documents.py does), HTML (the same under <h1>/<p>, inside a page with navigation, a script and
a style sheet whose text must not be indexed) and PDF (fpdf2 lays the paragraphs out over A4 pages; the
pages are what pypdf reads back) — and each version becomes a library of its own through the app's
code (parse → passages → FTS5 → vectors). Every answerable question of those articles whose gold answer
is verbatim in its paragraph is asked of each library: recall@1/3/5 for BM25, dense and hybrid, and
for the PDF the share of cited passages that carry a page number.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from documents import KS, norm  # noqa: E402

from automix_local.config import find_config, load_config  # noqa: E402
from automix_local.documents.library import Library  # noqa: E402
from automix_local.documents.retrieval import bm25, dense, fuse  # noqa: E402
from automix_local.documents.vectors import fill, model_key, open_embedder  # noqa: E402
from automix_local.paths import default_paths  # noqa: E402

UNICODE_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def write_markdown(title: str, paras: list[str], path: Path) -> None:
    path.write_text(f"# {title}\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")


def write_html(title: str, paras: list[str], path: Path) -> None:
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paras)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>p {{ margin: 1em }} .nav {{ color: red }}</style>"
        "<script>var tracking = 'should never be indexed';</script></head><body>"
        "<nav class='nav'><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        f"<h1>{html.escape(title)}</h1>\n{body}\n<footer>© Example wiki</footer></body></html>",
        encoding="utf-8",
    )


def write_pdf(title: str, paras: list[str], path: Path) -> str:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title)
    if UNICODE_FONT.is_file():
        pdf.add_font("DejaVu", fname=str(UNICODE_FONT))
        pdf.set_font("DejaVu", size=11)
        font = "DejaVu Sans (Unicode)"
    else:  # the core fonts are Latin-1 only: what they cannot draw becomes "?"
        pdf.set_font("Helvetica", size=11)
        paras = [p.encode("latin-1", "replace").decode("latin-1") for p in paras]
        font = "Helvetica (Latin-1)"
    pdf.add_page()
    pdf.set_font_size(16)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font_size(11)
    for p in paras:
        pdf.multi_cell(0, 6, p, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    path.write_bytes(bytes(pdf.output()))
    return font


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--articles", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    config = load_config(find_config(), default_paths())
    embedder = open_embedder(config)
    key = model_key(config.embedding) if config.embedding is not None else None
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8")]
    articles: dict[str, dict[int, str]] = {}
    for r in rows:
        doc, _, part = r["context_id"].partition("#")
        if part.isdigit():
            articles.setdefault(doc, {})[int(part)] = r["context"]
    chosen = sorted(random.Random(args.seed).sample(sorted(articles), args.articles))
    questions = [
        r
        for r in rows
        if r["context_id"].partition("#")[0] in chosen
        and not r.get("unanswerable")
        and any(norm(a).strip() and norm(a) in norm(r["context"]) for a in r.get("answers", []))
    ]
    results = {}
    font = ""
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("md", "html", "pdf"):
            folder = Path(tmp) / fmt
            folder.mkdir()
            for doc in chosen:
                title = doc.replace("_", " ")
                paras = [articles[doc][i].strip() for i in sorted(articles[doc])]
                stem = re.sub(r"[^\w.-]+", "_", doc)
                path = folder / f"{stem}.{fmt}"
                if fmt == "md":
                    write_markdown(title, paras, path)
                elif fmt == "html":
                    write_html(title, paras, path)
                else:
                    font = write_pdf(title, paras, path)
            lib = Library(Path(tmp) / f"{fmt}.sqlite")
            report = lib.add([folder])
            assert not report.failed, report.failed
            if embedder is not None and key is not None:
                fill(lib, embedder, key)
            ids = [d.id for d in lib.documents()]
            passages = {p.id: p for p in lib.passages(ids)}
            texts = {pid: norm(p.text) for pid, p in passages.items()}
            leaked = sum("tracking" in t or " margin 1em " in t for t in texts.values())  # script / style
            hits = {m: dict.fromkeys(KS, 0) for m in ("bm25", "dense", "hybrid")}
            paged = found = 0
            for r in questions:
                golds = [norm(a) for a in r["answers"] if norm(a).strip()]
                b = bm25(lib, r["question"], ids, 20)
                rankings = {"bm25": b}
                if embedder is not None and key is not None:
                    d = dense(lib, embedder.embed_query(r["question"]), key, ids, 20)
                    rankings |= {"dense": d, "hybrid": [pid for pid, _ in fuse([b, d])]}
                for method, ranking in rankings.items():
                    for k in KS:
                        if any(g in texts[pid] for pid in ranking[:k] for g in golds):
                            hits[method][k] += 1
                top = rankings.get("hybrid", b)[:5]
                for pid in top:
                    if any(g in texts[pid] for g in golds):
                        found += 1
                        paged += passages[pid].page is not None
                        break
            n = len(questions)
            results[fmt] = {
                "documents": len(ids),
                "passages": len(passages),
                "pages": sum(d.pages or 0 for d in lib.documents()),
                "recall": {m: {k: v / n for k, v in ks.items()} for m, ks in hits.items() if m in rankings},
                "leaked_boilerplate_passages": leaked,
                "cited_with_page": paged / found if found else None,
            }
            print(fmt, json.dumps(results[fmt]), flush=True)
            lib.close()
    if embedder is not None:
        embedder.close()
    lines = [
        "# The same articles as Markdown, HTML and PDF",
        "",
        f"`python bench/documents_formats.py {' '.join(sys.argv[1:])}`",
        "",
        f"{len(chosen)} SQuAD 2.0 articles (seed {args.seed}: {', '.join(chosen)}), {len(questions)} answerable "
        f"questions whose gold answer is verbatim in their paragraph; PDF font: {font}.",
        "",
        "| format | passages | pages | method | recall@1 | recall@3 | recall@5 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for fmt, res in results.items():
        for m, ks in res["recall"].items():
            lines.append(
                f"| {fmt} | {res['passages']} | {res['pages'] or '–'} | {m} | "
                + " | ".join(f"{ks[k]:.3f}" for k in KS)
                + " |"
            )
    html_leak = results["html"]["leaked_boilerplate_passages"]
    pdf_paged = results["pdf"]["cited_with_page"]
    lines += [
        "",
        f"HTML: passages holding the page's script or style sheet text: {html_leak}. "
        f"PDF: the passage that holds the answer (hybrid top 5) carries its page number for "
        f"{pdf_paged:.0%} of the questions found."
        if pdf_paged is not None
        else "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
