"""From a token leaving the cascade to its text on the screen, in a real terminal (issue 15: goal ≤ 100 ms).

    .venv/bin/python bench/screen_latency.py --questions 6 --out docs/results/screen_latency.md

The installed `automix-local` runs on a pseudo-terminal read by pyte (tests/terminal.py, the harness of the
real-terminal tests) with AUTOMIX_TOKEN_LOG set, so the app writes the wall-clock time at which its worker
received each streamed token. A reader thread records when each byte the app wrote reached the emulated
screen; a token counts as shown at the first screen state holding the answer's text up to and including
it. The model answers long (a sentence), in a tier that streams (`always_small`: the answer streams as it
is written), over a context from the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.terminal import Terminal  # noqa: E402

CONTEXT = (
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
    "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway who, under "
    "their leader Rollo, agreed to swear fealty to King Charles III of West Francia."
)
QUESTIONS = (
    "Describe in one sentence who the Normans were and where they came from.",
    "Who was the leader of the Norse raiders, and to whom did they swear fealty?",
    "In which centuries did the Normans give their name to Normandy?",
    "Which countries did the Norse raiders come from?",
    "What region in France is named after the Normans?",
    "Who was King Charles III?",
)


class TimedTerminal(Terminal):
    """The harness's terminal, keeping (time, screen text) after each write from the app."""

    def __init__(self, *a: object, **kw: object) -> None:
        self.frames: list[tuple[float, str]] = []
        super().__init__(*a, **kw)  # type: ignore[arg-type]

    def _fed(self) -> None:
        self.frames.append((time.time(), "\n".join(line.rstrip() for line in self.screen.display)))


def flat(text: str) -> str:
    return " ".join(text.split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="GGUF for the tier (default: the tests' SmolLM2)")
    ap.add_argument("--questions", type=int, default=6)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    home = Path(os.environ.get("AUTOMIX_TEST_HOME", ROOT / ".cache" / "test-home"))
    model = args.model or next((home / "data" / "models").glob("SmolLM2-135M-Instruct*.gguf"))
    lat: list[float] = []
    missed = 0
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        cfg = t / "models.toml"
        cfg.write_text(
            f'[[tiers]]\nname = "small"\npath = "{model}"\nn_ctx = 2048\nmax_tokens = 64\n'
            f'[[tiers]]\nname = "large"\npath = "{model}"\nn_ctx = 2048\nmax_tokens = 64\n'
            '[cascade]\nrouter = "always_small"\n'
        )
        ctx = t / "normans.txt"
        ctx.write_text(CONTEXT)
        log = t / "tokens.jsonl"
        argv = [str(Path(sys.executable).parent / "automix-local"), "--config", str(cfg), "--context", str(ctx)]
        env = {"AUTOMIX_LOCAL_HOME": str(t / "home"), "AUTOMIX_TOKEN_LOG": str(log)}
        with TimedTerminal(argv, env=env, cols=160, rows=50) as term:
            term.wait_for("all models ready", timeout=240)
            for q in QUESTIONS[: args.questions]:
                start = len(log.read_text().splitlines()) if log.exists() else 0
                term.type(q)
                term.press("enter")
                term.wait_for(lambda s, q=q: "small ·" in s.split(q[:40])[-1], 240, what="the answer's badge")
                time.sleep(1.0)  # let the last frames land
                tokens = [json.loads(x) for x in log.read_text().splitlines()[start:]]
                text = ""
                with term._lock:
                    frames = list(term.frames)
                for tok in tokens:
                    text += tok["text"]
                    want = flat(text)
                    if len(want) < 3:
                        continue
                    shown = next((ft for ft, screen in frames if ft >= tok["t"] - 0.001 and want in flat(screen)), None)
                    if shown is None:
                        missed += 1  # cleaned away (a trailing period, "Answer:") or wrapped: not counted
                        continue
                    lat.append(shown - tok["t"])
    lat.sort()
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
    lines = [
        "# From a token leaving the cascade to its text on the screen",
        "",
        f"`python bench/screen_latency.py {' '.join(sys.argv[1:])}` — {os.cpu_count()} CPU cores, model "
        f"{model.name}, a 160×50 pseudo-terminal read by pyte, {args.questions} questions.",
        "",
        "| tokens matched | median (ms) | p95 (ms) | max (ms) | goal |",
        "| --- | --- | --- | --- | --- |",
        f"| {len(lat)} (+{missed} not matchable: cleaned or wrapped) | {1000 * statistics.median(lat):.0f} | "
        f"{1000 * p95:.0f} | {1000 * lat[-1]:.0f} | ≤ 100 ms |",
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
