"""The llama.cpp backend on the real SmolLM2-135M GGUF."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from automix_local import prompts
from automix_local.backends.base import BackendError, run_to_end
from automix_local.backends.llama import LlamaBackend
from automix_local.config import TierConfig

from .conftest import SQUAD_CONTEXT, TEST_SHA


def collect(gen):
    deltas = []
    while True:
        try:
            deltas.append(next(gen))
        except StopIteration as done:
            return deltas, done.value


def qa_prompt(backend, question="Who was the leader of the Norse raiders?"):
    return backend.render(prompts.qa_messages(SQUAD_CONTEXT, question))


def test_chat_template_comes_from_the_gguf(shared_backend):
    assert shared_backend.uses_chat_template
    p = qa_prompt(shared_backend)
    assert "<|im_start|>system" in p and p.rstrip().endswith("<|im_start|>assistant")


def test_greedy_stream_is_deterministic_and_deltas_join_to_text(shared_backend):
    p = qa_prompt(shared_backend)
    deltas, gen = collect(shared_backend.stream(p, max_tokens=20, stop=["\n"]))
    assert "".join(deltas) == gen.text
    assert len(deltas) >= 2  # really streamed, not one blob
    assert gen.text.strip()
    assert gen.tokens_in > 100 and 0 < gen.tokens_out <= 20
    assert gen.prompt_seconds > 0 and gen.gen_seconds >= 0
    assert len(gen.token_logprobs) == gen.tokens_out and all(lp <= 0 for lp in gen.token_logprobs)
    again = run_to_end(shared_backend.stream(p, max_tokens=20, stop=["\n"]))
    assert again.text == gen.text


def test_each_token_comes_with_its_distributions_entropy_and_top_two_margin(shared_backend):
    """Greedy picks the most likely token, so its probability bounds the entropy from below (min-entropy <=
    Shannon entropy) and, with the runner-up's (its log-probability less the margin), sums to at most 1."""
    gen = run_to_end(shared_backend.stream(qa_prompt(shared_backend), max_tokens=12, stop=["\n"]))
    assert gen.token_entropies is not None and gen.token_margins is not None
    assert len(gen.token_entropies) == len(gen.token_margins) == gen.tokens_out > 0
    vocab = shared_backend._llm.n_vocab()
    for lp, h, m in zip(gen.token_logprobs, gen.token_entropies, gen.token_margins, strict=True):
        assert -lp <= h + 1e-3 and h <= math.log(vocab)
        assert m >= 0 and math.exp(lp) + math.exp(lp - m) <= 1 + 1e-5


def test_prefix_reuse_evaluates_only_new_tokens(shared_backend):
    """After another question on the same context, only the prompt's tokens after the shared prefix are
    evaluated (the last one alone); the same prompt again evaluates its last token only."""
    other = qa_prompt(shared_backend)  # the session-wide backend: set what its cache holds
    run_to_end(shared_backend.stream(other, max_tokens=4))
    p = qa_prompt(shared_backend, "In what country is Normandy located?")
    tokens = shared_backend._tokenize(shared_backend._llm, p)
    before = shared_backend._tokenize(shared_backend._llm, other)
    shared = next(i for i, (a, b) in enumerate(zip(tokens, before, strict=False)) if a != b)
    first = run_to_end(shared_backend.stream(p, max_tokens=4))
    second = run_to_end(shared_backend.stream(p, max_tokens=4))
    assert 1 < first.tokens_evaluated == len(tokens) - shared < len(tokens) // 2  # the context was reused
    assert second.tokens_evaluated == 1
    assert second.text == first.text


def test_abstain_at_the_first_token(shared_backend):
    """With ``abstain_at``, a first position at least that likely to start "unanswerable" ends the answer
    there: nothing else is decoded; the threshold is compared with the watched tokens' probability."""
    p = qa_prompt(shared_backend, "What is the boiling point of mercury?")
    watch = ("unanswerable", "Unanswerable")
    free = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"], watch_first=watch))
    p_abstain = sum(math.exp(v) for v in {v for v in free.first_logprobs.values()})
    deltas, forced = collect(shared_backend.stream(p, max_tokens=12, stop=["\n"], watch_first=watch, abstain_at=0.0))
    assert forced.text == "unanswerable" == "".join(deltas) and forced.finish_reason == "abstain"
    assert forced.tokens_out == 0 and len(forced.token_logprobs) == 1
    assert forced.first_logprobs == pytest.approx(free.first_logprobs)
    never = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"], watch_first=watch, abstain_at=1.0))
    assert never.finish_reason != "abstain" and never.text == free.text  # p < 1: it answers as before
    above = run_to_end(
        shared_backend.stream(p, max_tokens=12, stop=["\n"], watch_first=watch, abstain_at=p_abstain * 1.01)
    )
    assert above.text == free.text


def test_the_hidden_state_comes_with_the_answer_unchanged(shared_backend):
    """``hidden=True``: the final hidden state of the decode that chose the answer's end, and the same
    answer, token for token, as without it."""
    p = qa_prompt(shared_backend)
    plain = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"]))
    probed = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"], hidden=True))
    assert plain.hidden is None and probed.text == plain.text
    assert probed.token_logprobs == pytest.approx(plain.token_logprobs, abs=1e-4)
    assert probed.hidden is not None and len(probed.hidden) == 576 and any(probed.hidden)
    again = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"]))
    assert again.hidden is None and again.text == plain.text  # embeddings are switched off again


def test_max_tokens_and_stop(shared_backend):
    p = shared_backend.render([{"role": "user", "content": "Count from 1 to 50, separated by spaces."}])
    gen = run_to_end(shared_backend.stream(p, max_tokens=5))
    assert gen.tokens_out == 5 and gen.finish_reason == "length"
    gen = run_to_end(shared_backend.stream(p, max_tokens=40, stop=[" 3"]))
    assert gen.finish_reason == "stop" and " 3" not in gen.text


def test_seeded_sampling_is_reproducible(shared_backend):
    p = shared_backend.render([{"role": "user", "content": "Write one sentence about the sea."}])
    a = run_to_end(shared_backend.stream(p, max_tokens=16, temperature=1.0, seed=7))
    b = run_to_end(shared_backend.stream(p, max_tokens=16, temperature=1.0, seed=7))
    assert a.text == b.text
    others = {run_to_end(shared_backend.stream(p, max_tokens=16, temperature=1.0, seed=s)).text for s in range(8, 12)}
    assert len(others | {a.text}) > 1


def test_score_gives_next_token_logprobs_without_logits_all(shared_backend):
    assert shared_backend._llm._logits_all is False
    prompt = "The capital of France is"
    s = shared_backend.score(prompt, [" Paris", " banana", " Correct", " Incorrect"])
    assert all(v <= 0 for v in s.logprobs.values())
    assert s.logprobs[" Paris"] > s.logprobs[" banana"]
    # the multi-token continuation equals the chain rule computed by evaluating it for real
    total = sum(math.exp(v) for v in s.logprobs.values())
    assert total <= 1.0 + 1e-6


def test_score_matches_a_fresh_model(shared_backend, model_path: Path):
    """Reused KV state gives the same log-probabilities as a model that never saw another prompt."""
    prompt = prompts.verdict_prompt(SQUAD_CONTEXT, "Who was the leader?", "Rollo")
    run_to_end(shared_backend.stream(qa_prompt(shared_backend), max_tokens=8))  # pollute the cache
    warm = shared_backend.score(prompt, [" Correct", " Incorrect"])
    fresh_backend = LlamaBackend(TierConfig(name="fresh", n_ctx=2048, sha256=TEST_SHA), model_path)
    try:
        fresh = fresh_backend.score(prompt, [" Correct", " Incorrect"])
    finally:
        fresh_backend.close()
    for k in warm.logprobs:
        assert warm.logprobs[k] == pytest.approx(fresh.logprobs[k], abs=1e-6)


def test_prompt_longer_than_n_ctx_is_refused(model_path: Path):
    backend = LlamaBackend(TierConfig(name="tiny", n_ctx=64, sha256=TEST_SHA), model_path)
    try:
        with pytest.raises(BackendError, match="n_ctx is 64"):
            run_to_end(backend.stream("word " * 200, max_tokens=8))
    finally:
        backend.close()


def test_llama_cpp_prints_nothing(model_path: Path, capfd: pytest.CaptureFixture[str]):
    backend = LlamaBackend(TierConfig(name="quiet", n_ctx=256, sha256=TEST_SHA), model_path)
    backend.load()
    run_to_end(backend.stream("Hello", max_tokens=2))
    backend.close()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_static_prefix_is_saved_to_disk_and_reused(model_path: Path, tmp_path: Path):
    """The shared layout's static prefix is evaluated once per model, then loaded from disk at the next start."""
    text = prompts.answer_prompt(_Chat(), "shared", "CONTEXT", "QUESTION")
    prefix = text[: text.index("CONTEXT")]
    first = LlamaBackend(TierConfig(name="a", n_ctx=2048, sha256=TEST_SHA), model_path)
    try:
        assert first.warm_prefix(prefix, tmp_path) == "computed"
        assert first.warm_prefix(prefix, tmp_path) == "memory"
        reference = first.score(prefix + "Document: x", [" Paris"]).logprobs
    finally:
        first.close()
    files = list(tmp_path.glob("*.kvstate"))
    assert len(files) == 1 and files[0].stat().st_size > 1000
    second = LlamaBackend(TierConfig(name="b", n_ctx=2048, sha256=TEST_SHA), model_path)
    try:
        assert second.warm_prefix(prefix, tmp_path) == "disk"
        scored = second.score(prefix + "Document: x", [" Paris"])
        assert scored.tokens_evaluated <= 6  # the prefix came from disk
        assert scored.logprobs == reference  # and gives bit-identical results
        assert second.warm_prefix("A changed prompt. " + prefix, tmp_path) == "computed"  # a new key
    finally:
        second.close()
    assert len(list(tmp_path.glob("*.kvstate"))) == 2


class _Chat:
    uses_chat_template = True

    def render(self, messages):
        return (
            "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            + "<|im_start|>assistant\n"
        )


LOAD_WATCH = r"""
import os, sys, threading, time
sys.path.insert(0, sys.argv[2])
import automix_local  # OMP_WAIT_POLICY, as the app
from pathlib import Path
from automix_local.backends.llama import LlamaBackend
from automix_local.config import TierConfig

original = [os.fstat(fd) for fd in (1, 2)]
seen = []
done = threading.Event()

def watch():  # what a terminal UI's writer thread would write to, sampled while the model loads
    while not done.is_set():
        for fd, st in zip((1, 2), original):
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                seen.append(fd)

t = threading.Thread(target=watch)
t.start()
backend = LlamaBackend(TierConfig(name="small", n_ctx=2048), Path(sys.argv[1]))
backend.load()
done.set()
t.join()
print("load printed nothing", flush=True)
print("REDIRECTED" if seen else "UNTOUCHED", sorted(set(seen)))
"""


def test_loading_a_model_leaves_the_terminal_alone(model_path: Path, tmp_path: Path):
    """Issue 11's root cause: llama-cpp-python's verbose=False load dup2()s /dev/null onto fds 1 and 2 of the
    whole process, so every frame the app drew meanwhile (from another thread) was lost. A thread samples
    what fds 1 and 2 point at during a real load; and nothing reaches the terminal from the load itself."""
    import subprocess
    import sys

    script = tmp_path / "watch.py"
    script.write_text(LOAD_WATCH, encoding="utf-8")
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run(
        [sys.executable, str(script), str(model_path), root], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["load printed nothing", "UNTOUCHED []"]
    assert out.stderr == ""  # llama.cpp's log lines went to Python logging, not to the terminal


@pytest.fixture(scope="module")
def parallel_backend(model_path: Path):
    backend = LlamaBackend(TierConfig(name="parallel", n_ctx=2048, sha256=TEST_SHA), model_path, parallel=4)
    yield backend
    backend.close()


def test_k_samples_decode_in_one_batch_and_leave_the_prompt_cached(parallel_backend, shared_backend):
    """Near T = 0 every sample follows the greedy answer (the first token comes from the same logits; later
    steps decode in a batch, where each sequence's attention runs over its own cells in a different order,
    so a near tie may break the other way: here, five words in, "was Rollo" or "is not mentioned").
    Seeded samples at T = 1 repeat and differ from each other. Afterwards the cache holds the prompt
    alone: the next answer reuses it and is exactly the answer of a backend that never sampled."""
    p = qa_prompt(parallel_backend)
    greedy = run_to_end(parallel_backend.stream(p, max_tokens=12, stop=["\n"]))
    cold = parallel_backend.sample_batch(p, 4, max_tokens=12, stop=["\n"], temperature=1e-4)
    assert all(t.split()[:5] == greedy.text.split()[:5] for t in cold.texts)
    assert cold.tokens_evaluated <= 1 + 4 * 12  # the prompt came from the cache
    hot = parallel_backend.sample_batch(p, 4, max_tokens=12, stop=["\n"], temperature=1.0, seed=3)
    assert hot.texts == parallel_backend.sample_batch(p, 4, max_tokens=12, stop=["\n"], temperature=1.0, seed=3).texts
    assert len(set(hot.texts)) > 1 and all("\n" not in t for t in hot.texts)
    after = run_to_end(parallel_backend.stream(p, max_tokens=12, stop=["\n"]))
    alone = run_to_end(shared_backend.stream(p, max_tokens=12, stop=["\n"]))
    assert after.tokens_evaluated <= 1 and after.text == alone.text == greedy.text
    assert after.token_logprobs == alone.token_logprobs
    with pytest.raises(ValueError):
        parallel_backend.sample_batch(p, 5, max_tokens=4)
