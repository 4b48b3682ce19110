"""`automix-local serve` measured: its overhead against llama-cpp-python's own server, and under load.

    .venv/bin/python bench/serve.py --items 12 --out docs/results/serve.md

1. Overhead, one client: the same questions through `automix-local serve` asking the small tier alone
   (`"model": "small"`: no verification, no router) and through `python -m llama_cpp.server` on the same
   GGUF file, with the same threads, batch and window. Both get the same prompt: the llama.cpp server is
   sent, on /v1/completions, exactly the text the cascade renders for the question, so both decode the
   same tokens greedily. Each question has its own context (SQuAD 2.0 dev, seed-0 shuffle), so every
   request evaluates its whole prompt in both; the two servers take turns, in alternating order. Time to
   the first content chunk and to the end of the stream; the ratio of the medians.
2. Load: N = 1, 4 and 16 clients, each sending the same number of questions at once to the cascade
   (`"model": "automix"`, the default pair) with the default queue ([server] queue_size): throughput,
   p50 / p95 latency of the answered ones, how many were refused with 503 + Retry-After (every request
   is one or the other), and the server's resident memory before and after each round (every model is
   loaded before the first round).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local import prompts  # noqa: E402
from automix_local.backends.llama import LlamaBackend  # noqa: E402
from automix_local.config import load_config  # noqa: E402
from automix_local.sources import ensure_verified  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.args}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    raise SystemExit(f"no answer from {url}")


def start_serve(config_path: Path, port: int) -> subprocess.Popen[bytes]:
    """The installed `automix-local serve` on ``port`` (two models in one process: OMP_WAIT_POLICY=PASSIVE)."""
    return subprocess.Popen(
        [str(BIN / "automix-local"), "--config", str(config_path), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_stream(url: str, body: dict[str, Any], text_of: Any) -> tuple[float, float, str]:
    """(seconds to the first content, seconds to the end, the text) of one streamed request."""
    t0 = time.perf_counter()
    first = None
    text = ""
    with httpx.stream("POST", url, json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            piece = text_of(json.loads(line[6:]))
            if piece and first is None:
                first = time.perf_counter() - t0
            text += piece or ""
    return first if first is not None else float("nan"), time.perf_counter() - t0, text


def chat_text(obj: dict[str, Any]) -> str:
    return (obj.get("choices") or [{}])[0].get("delta", {}).get("content") or ""


def completion_text(obj: dict[str, Any]) -> str:
    return (obj.get("choices") or [{}])[0].get("text") or ""


def overhead(config_path: Path, items: list[dict[str, Any]], threads: int) -> tuple[list[str], dict[str, Any]]:
    config = load_config(config_path)
    tier = config.tiers[0]
    model = ensure_verified(tier, config.paths, config.source_file)
    backend = LlamaBackend(tier, model)  # to render the exact prompt the cascade sends
    rendered = [
        prompts.answer_prompt(backend, config.cascade.layout, it["context"], it["question"], False, ()) for it in items
    ]
    backend.close()
    ours_port, theirs_port = free_port(), free_port()
    ours = start_serve(config_path, ours_port)
    theirs = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(theirs_port), "--n_ctx", str(tier.n_ctx), "--n_batch", str(min(tier.n_batch, tier.n_ctx)),
         "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "false"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),  # as ours: the same threading policy side by side
    )  # fmt: skip
    rows = []
    try:
        wait_up(f"http://127.0.0.1:{ours_port}/health", ours)
        wait_up(f"http://127.0.0.1:{theirs_port}/v1/models", theirs)
        ask_ours = f"http://127.0.0.1:{ours_port}/v1/chat/completions"
        ask_theirs = f"http://127.0.0.1:{theirs_port}/v1/completions"
        # one warm-up each (model load, first allocations), not counted
        msgs = [{"role": "system", "content": items[0]["context"]}, {"role": "user", "content": items[0]["question"]}]
        timed_stream(ask_ours, {"model": tier.name, "messages": msgs, "stream": True}, chat_text)
        body = {"prompt": rendered[0], "max_tokens": tier.max_tokens, "temperature": 0, "stop": ["\n"], "stream": True}
        timed_stream(ask_theirs, body, completion_text)
        for i, (it, prompt) in enumerate(zip(items[1:], rendered[1:], strict=True)):
            msgs = [{"role": "system", "content": it["context"]}, {"role": "user", "content": it["question"]}]
            a = lambda m=msgs: timed_stream(ask_ours, {"model": tier.name, "messages": m, "stream": True}, chat_text)  # noqa: E731
            b = lambda p=prompt: timed_stream(  # noqa: E731
                ask_theirs,
                {"prompt": p, "max_tokens": tier.max_tokens, "temperature": 0, "stop": ["\n"], "stream": True},
                completion_text,
            )
            if i % 2:
                rb, ra = b(), a()
            else:
                ra, rb = a(), b()
            rows.append({"ours": ra[:2], "theirs": rb[:2], "same": prompts.clean_answer(rb[2]) == ra[2].strip()})
            print(f"  {i + 1}: ours {ra[0]:.2f}/{ra[1]:.2f}s  llama_cpp.server {rb[0]:.2f}/{rb[1]:.2f}s", flush=True)
    finally:
        for p in (ours, theirs):
            p.terminate()
            p.wait(30)
    med = {
        k: {w: statistics.median(r[k][j] for r in rows) for j, w in enumerate(("ttft", "total"))}
        for k in ("ours", "theirs")
    }
    ratio = {w: med["ours"][w] / med["theirs"][w] for w in ("ttft", "total")}
    same = sum(r["same"] for r in rows)
    lines = [
        "## 1. Overhead against `python -m llama_cpp.server`, one client",
        "",
        f"{len(rows)} questions, tier `{tier.name}` ({model.name}), {threads} threads each, the same prompt text "
        f"(both decoded the same answer for {same} of {len(rows)} questions).",
        "",
        "| | time to first token, median (s) | total, median (s) |",
        "| --- | --- | --- |",
        f"| automix-local serve, `\"model\": \"{tier.name}\"` | {med['ours']['ttft']:.3f} | "
        f"{med['ours']['total']:.3f} |",
        f"| python -m llama_cpp.server, /v1/completions | {med['theirs']['ttft']:.3f} | "
        f"{med['theirs']['total']:.3f} |",
        f"| **ratio** (goal ≤ 1.05) | **{ratio['ttft']:.3f}** | **{ratio['total']:.3f}** |",
        "",
    ]  # fmt: skip
    return lines, {"rows": rows, "median": med, "ratio": ratio}


def load(config_path: Path, items: list[dict[str, Any]], clients: list[int], per_client: int) -> tuple[list[str], Any]:
    port = free_port()
    proc = start_serve(config_path, port)
    url = f"http://127.0.0.1:{port}"
    out = []
    try:
        wait_up(f"{url}/health", proc)
        q = items[0]
        msgs = [{"role": "system", "content": q["context"]}, {"role": "user", "content": q["question"]}]
        for model in ("automix", *[t["name"] for t in httpx.get(f"{url}/health").json()["tiers"]]):
            # load every model first (an escalation would otherwise load the large one mid-round)
            httpx.post(f"{url}/v1/chat/completions", json={"model": model, "messages": msgs}, timeout=600)
        queue = httpx.get(f"{url}/health").json()["queue"]["size"]
        for n in clients:
            before = rss_mb(proc.pid)
            results: list[tuple[int, float, str | None]] = []
            lock = threading.Lock()
            rng = random.Random(n)

            def client(rng: random.Random = rng, results: list[Any] = results, lock: threading.Lock = lock) -> None:
                for _ in range(per_client):
                    it = rng.choice(items)
                    m = [{"role": "system", "content": it["context"]}, {"role": "user", "content": it["question"]}]
                    t0 = time.perf_counter()
                    r = httpx.post(f"{url}/v1/chat/completions", json={"messages": m}, timeout=900)
                    with lock:
                        results.append((r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")))

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            ok = sorted(s for c, s, _ in results if c == 200)
            refused = [(c, ra) for c, _, ra in results if c != 200]
            row = {
                "clients": n,
                "requests": len(results),
                "answered": len(ok),
                "refused_503": sum(1 for c, ra in refused if c == 503 and ra is not None),
                "other": sum(1 for c, ra in refused if c != 503 or ra is None),
                "throughput": len(ok) / wall,
                "p50": statistics.median(ok) if ok else float("nan"),
                "p95": ok[min(len(ok) - 1, int(0.95 * len(ok)))] if ok else float("nan"),
                "rss_before": before,
                "rss_after": rss_mb(proc.pid),
            }
            out.append(row)
            print(f"  N={n}: {row}", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)
    lines = [
        "## 2. Load: N clients at once, the cascade (`\"model\": \"automix\"`)",
        "",
        f"Each client sends {per_client} questions one after another (random SQuAD items); queue_size = {queue}.",
        "",
        "| clients | requests | answered | 503 + Retry-After | other | answered / s | p50 (s) | p95 (s) "
        "| RSS before → after (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for r in out:
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['answered']} | {r['refused_503']} | {r['other']} | "
            f"{r['throughput']:.3f} | {r['p50']:.2f} | {r['p95']:.2f} | {r['rss_before']:.0f} → {r['rss_after']:.0f} |"
        )
    return [*lines, ""], out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "automix_local" / "data" / "models.toml")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "squad_v2_dev_public.jsonl")
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--per-client", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    data = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(0).shuffle(data)
    seen, items = set(), []
    for it in data:  # one question per context: every request evaluates its whole prompt
        if it["context_id"] not in seen:
            seen.add(it["context_id"])
            items.append(it)
        if len(items) > args.items:
            break
    lines = [
        "# `automix-local serve`: overhead and load",
        "",
        f"`python bench/serve.py {' '.join(sys.argv[1:])}` — {os.cpu_count()} CPU cores, "
        f"config {args.config.relative_to(ROOT) if args.config.is_relative_to(ROOT) else args.config}.",
        "",
    ]
    with tempfile.TemporaryDirectory():
        part1, res1 = overhead(args.config, items, args.threads)
        part2, res2 = load(args.config, items, [int(x) for x in args.clients.split(",")], args.per_client)
    lines += part1 + part2
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"overhead": res1, "load": res2}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
