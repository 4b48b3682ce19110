"""`eval run` on 20 real SQuAD 2.0 items with the real test model: records, resume, Ctrl+C, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from automix_local.config import load_config
from automix_local.evaluation import EvalError, load_items, run_eval, select_items
from automix_local.grounding import GROUNDING_FEATURES
from automix_local.signals import FREE_FEATURES, TOKEN_FEATURES

from .conftest import ROOT, cli_path, tier_toml

SQUAD20 = ROOT / "tests" / "data" / "squad20.jsonl"


@pytest.fixture
def eval_config(model_path: Path, write_config):
    text = tier_toml("small", model_path, max_tokens=16) + tier_toml("large", model_path, max_tokens=16, cost=10)
    text += "[cascade]\nsamples = 2\nverify_max_tokens = 24\n"
    return load_config(write_config(text))


def test_selection_is_line_order_or_seeded():
    items = load_items(SQUAD20)
    assert [i["id"] for i in select_items(items, 5, None)] == [i["id"] for i in items[:5]]
    a, b = select_items(items, 5, 1), select_items(items, 5, 1)
    assert [i["id"] for i in a] == [i["id"] for i in b] != [i["id"] for i in items[:5]]


def test_bad_data_file_names_the_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "context": "c", "question": "q"}\n{"id": "2"}\n')
    with pytest.raises(EvalError, match=r"bad.jsonl:2: missing field\(s\) context, question"):
        load_items(bad)
    with pytest.raises(EvalError, match="data file not found"):
        load_items(tmp_path / "nope.jsonl")


def test_eval_run_records_every_tier_and_signal_and_resumes(eval_config, tmp_path: Path):
    out = tmp_path / "run"
    calls: list[tuple[int, int]] = []

    def interrupt_after_first_chunk(done: int, total: int) -> None:
        calls.append((done, total))
        if done >= 4:
            raise KeyboardInterrupt  # the user presses Ctrl+C

    def run(progress) -> None:  # the same command, twice: interrupted, then resumed
        run_eval(eval_config, SQUAD20, out, limit=12, verifiers=("logprob", "sampled"), chunk=4, progress=progress)

    with pytest.raises(KeyboardInterrupt):
        run(interrupt_after_first_chunk)
    lines = (out / "items.jsonl").read_text().splitlines()
    assert len(lines) == 4  # nothing already written was lost
    # a torn line (killed mid-write) is cut off on resume
    with (out / "items.jsonl").open("a") as f:
        f.write('{"id": "torn", "tie')
    progress: list[tuple[int, int]] = []
    run(lambda d, t: progress.append((d, t)))
    assert progress[0] == (4, 12) and progress[-1] == (12, 12)
    recs = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    items = load_items(SQUAD20)[:12]
    assert [r["id"] for r in recs] == [i["id"] for i in items]  # each item exactly once, in order
    for rec, item in zip(recs, items, strict=True):
        small, large = rec["tiers"]["small"], rec["tiers"]["large"]
        for t in (small, large):
            assert {"answer", "f1", "em", "tokens_in", "tokens_out", "seconds", "features"} <= t.keys()
            assert 0.0 <= t["f1"] <= 1.0 and t["seconds"] > 0
            assert set(t["features"]) == set(FREE_FEATURES + TOKEN_FEATURES + GROUNDING_FEATURES)
            assert all(0.0 <= t["features"][f] <= 1.0 for f in GROUNDING_FEATURES)
        assert set(small["verification"]) == {"logprob", "sampled"}
        assert large["verification"] == {}  # the last tier is not verified
        assert 0 <= small["verification"]["logprob"]["confidence"] <= 1
        sampled = small["verification"]["sampled"]
        assert len(sampled["verdicts"]) == 2 and sampled["confidence"] in (0.0, 0.5, 1.0)
        assert rec["unanswerable"] == item["unanswerable"]
        if item["unanswerable"]:
            assert small["f1"] == (1.0 if small["abstained"] else 0.0)
    meta = json.loads((out / "run.json").read_text())
    assert meta["limit"] == 12 and meta["verifiers"] == ["logprob", "sampled"] and len(meta["ids"]) == 12
    assert meta["machine"]["cpus"] >= 1


def test_resuming_into_a_different_run_is_refused(eval_config, tmp_path: Path):
    out = tmp_path / "run"
    run_eval(eval_config, SQUAD20, out, limit=2, verifiers=("logprob",))
    with pytest.raises(EvalError, match="holds a different run \\(limit differ\\)"):
        run_eval(eval_config, SQUAD20, out, limit=3, verifiers=("logprob",))


def test_eval_run_report_and_calibrate_through_the_cli(model_path: Path, write_config, tmp_path: Path):
    """The commands a user types: run, report, calibrate — then `ask` uses the calibration."""
    cfg = write_config(tier_toml("small", model_path, max_tokens=16) + tier_toml("large", model_path, max_tokens=16))
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            cli_path(),
            "eval",
            "run",
            "--config",
            str(cfg),
            "--data",
            str(SQUAD20),
            "--limit",
            "6",
            "--verifiers",
            "logprob",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6/6 items" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([cli_path(), "eval", "report", str(out), "--seeds", "3"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "AUROC" in proc.stdout
    for name in ("report.md", "results.json", "cost_quality.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "cost_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = subprocess.run(
        [cli_path(), "calibrate", str(out), "--router", "threshold", "--signal", "min_logprob"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    router_file = out / "router-threshold.json"
    saved = json.loads(router_file.read_text())
    assert saved["kind"] == "threshold" and saved["signal"]["features"] == ["min_logprob"]
    cfg2 = write_config(
        tier_toml("small", model_path, max_tokens=16)
        + tier_toml("large", model_path, max_tokens=16)
        + f'[cascade]\nrouter = "threshold"\ncalibration = "{router_file}"\n'
    )
    ctx = tmp_path / "ctx.txt"
    ctx.write_text(load_items(SQUAD20)[0]["context"])
    proc = subprocess.run(
        [
            cli_path(),
            "ask",
            "--json",
            "--config",
            str(cfg2),
            "--context",
            str(ctx),
            "In what country is Normandy located?",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    step = json.loads(proc.stdout)["steps"][0]
    assert step["signal"] == "min_logprob (calibrated)"
    assert step["verify_seconds"] == 0.0  # a free signal: no verification pass at all
    assert step["decision"] in ("keep", "route")


def test_eval_run_records_the_hidden_state_when_asked(eval_config, tmp_path: Path):
    """--hidden: every answer carries the model's final hidden state (float16, base64), for a probe; a run
    recorded without it is another run. (That the answers do not change is tested on the backend.)"""
    import base64

    import numpy as np

    probed = tmp_path / "probed"
    run_eval(eval_config, SQUAD20, probed, limit=2, verifiers=("logprob",), hidden=True)
    for line in (probed / "items.jsonl").read_text().splitlines():
        for t in json.loads(line)["tiers"].values():
            vec = np.frombuffer(base64.b64decode(t["hidden"]), dtype=np.float16)
            assert vec.shape == (576,) and np.isfinite(vec).all() and np.abs(vec).sum() > 0  # SmolLM2's width
    assert json.loads((probed / "run.json").read_text())["hidden"] is True
    with pytest.raises(EvalError, match="hidden"):
        run_eval(eval_config, SQUAD20, probed, limit=2, verifiers=("logprob",))  # another run: refused


def test_an_items_history_reaches_every_prompt_and_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A follow-up item (bench/data/followups.jsonl): its earlier turn goes into each tier's answer prompt and
    the check, as a conversation's does in the app, and the record says it had one; an item without history
    is asked alone."""
    from .fake_tier import Script, scripted_config, scripted_factory, use_scripted

    context = "Carol Diaz founded the company in 2001. Alice Park joined in 2010. Carol Diaz left in 2015."
    first = ["Who founded the company in 2001?", "Carol Diaz"]
    data = tmp_path / "followups.jsonl"
    items = [
        {"id": "f1", "context": context, "question": "When did she leave?", "answers": ["2015"], "history": [first]},
        {"id": "f2", "context": context, "question": "When did Alice Park join?", "answers": ["2010"]},
    ]
    data.write_text("".join(json.dumps(it) + "\n" for it in items))
    factory = use_scripted(monkeypatch, scripted_factory(small=Script("2001"), large=Script("2015")))
    for layout in ("paper", "shared"):
        config = scripted_config(tmp_path / layout, router="always_small", cascade={"layout": layout})
        out = tmp_path / f"run-{layout}"
        run_eval(config, data, out, verifiers=("logprob",))
        recs = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
        follow, alone = recs
        assert follow["history"] == [first] and "history" not in alone
        assert follow["tiers"]["small"]["turns"] == follow["tiers"]["large"]["turns"] == 1
        assert "turns" not in alone["tiers"]["small"]
        assert follow["tiers"]["small"]["f1"] == 0.0 and follow["tiers"]["large"]["f1"] == 1.0
        for name in ("small", "large"):
            answered = factory[name].prompts  # this run's backend: its two answer prompts, in item order
            assert len(answered) == 2
            assert first[0] in answered[0] and first[1] in answered[0] and "When did she leave?" in answered[0]
            assert first[0] not in answered[1]
        checks = [c.prompt for c in factory["small"].calls if c.kind == "score"]
        assert first[1] in checks[0] and first[0] not in checks[1]  # the check saw the earlier turn too


def test_a_malformed_history_names_the_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "context": "c", "question": "q", "history": [["only a question"]]}\n')
    with pytest.raises(EvalError, match=r"bad.jsonl:1: history must be a list of \[question, answer\] pairs"):
        load_items(bad)
