"""The privacy policy as a pure function: (request, policy) → blocked / allowed / transformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from automix_local.config import PolicyConfig
from automix_local.policy import EgressRequest, decide, describe, override, private_match, relevant_window

CONTEXT = (
    "Acme Corp was founded in 1952 in Lyon. Its first product was a hand-cranked coffee grinder. "
    "In 1978 the company moved to Grenoble, where it built its current headquarters.\n\n"
    "The chief executive is Marie Dupont. Press enquiries go to press@acme.example.com or +33 4 76 12 34 56."
)


def req(**kw: object) -> EgressRequest:
    base: dict[str, object] = {"tier": "remote", "question": "Where did Acme move in 1978?", "context": CONTEXT}
    base.update(kw)
    return EgressRequest(**base)  # type: ignore[arg-type]


def test_never_blocks_everything():
    r = decide(req(), PolicyConfig(remote="never", send="full"))
    assert r.action == "blocked" and not r.allowed and "never" in r.reason
    assert r.question == "" and r.context == ""


def test_allow_full_sends_everything_unchanged():
    r = decide(req(), PolicyConfig(remote="allow", send="full"))
    assert r.action == "allowed" and not r.needs_approval
    assert r.context == CONTEXT.strip() and r.question == "Where did Acme move in 1978?"


def test_ask_needs_approval():
    r = decide(req(), PolicyConfig(remote="ask", send="question"))
    assert r.allowed and r.needs_approval


def test_send_question_drops_the_context():
    r = decide(req(), PolicyConfig(remote="allow", send="question"))
    assert r.action == "transformed" and r.context == "" and "only the question" in r.reason


def test_send_relevant_is_the_sentence_holding_the_local_answer():
    r = decide(req(local_answer="Grenoble"), PolicyConfig(remote="allow", send="relevant"))
    assert r.context == "In 1978 the company moved to Grenoble, where it built its current headquarters."
    assert "coffee grinder" not in r.context and "press@" not in r.context


def test_send_relevant_without_a_span_uses_question_overlap():
    # an abstention has no span: the sentences sharing most words with the question go
    r = decide(req(local_answer=None), PolicyConfig(remote="allow", send="relevant"))
    assert "moved to Grenoble" in r.context
    assert "Marie Dupont" not in r.context


def test_send_relevant_with_a_paraphrased_answer_finds_its_sentence():
    policy = PolicyConfig(remote="allow", send="relevant")
    r = decide(req(question="Who runs Acme?", local_answer="The boss is Marie Dupont."), policy)
    assert "The chief executive is Marie Dupont." in r.context and "press@" not in r.context


def test_relevant_prefers_retrieved_passages():
    assert relevant_window(CONTEXT, "q", "Grenoble", passages=("passage one", " passage two ")) == (
        "passage one\n\npassage two"
    )


def test_relevant_span_across_sentences_takes_both():
    ctx = "First part ends here. Second part starts. Third."
    assert relevant_window(ctx, "q", "here. Second part") == "First part ends here. Second part starts."


def test_redaction_is_applied_to_question_and_context_with_shared_placeholders():
    policy = PolicyConfig(remote="allow", send="full", redact=("email", "phone"))
    r = decide(req(question="Should I write to press@acme.example.com?"), policy)
    assert "press@acme.example.com" not in r.question + r.context
    assert "+33 4 76 12 34 56" not in r.context
    ph = next(k for k, v in r.mapping.items() if v == "press@acme.example.com")
    assert ph in r.question and ph in r.context  # the same value has the same placeholder everywhere
    assert r.counts["email"] == 2 and r.counts["phone"] == 1
    assert r.action == "transformed" and "redacted" in r.reason


def test_user_regex_redaction():
    policy = PolicyConfig(remote="allow", send="full", redact=(r"Marie Dupont",))
    r = decide(req(), policy)
    assert "Marie Dupont" not in r.context and "Marie Dupont" in r.mapping.values()


def test_private_path_blocks_whatever_remote_says(tmp_path: Path):
    doc = tmp_path / "hr" / "salaries.md"
    policy = PolicyConfig(remote="allow", send="full", private=(str(tmp_path / "hr"),))
    r = decide(req(document=str(doc)), policy)
    assert r.action == "blocked" and "private" in r.reason and r.context == ""
    assert decide(req(document=str(tmp_path / "public.md")), policy).allowed


@pytest.mark.parametrize(
    ("document", "tags", "rule", "hit"),
    [
        ("/home/u/secret/a.md", (), "/home/u/secret/**", True),
        ("/home/u/secret/deep/a.md", (), "/home/u/secret/**", True),
        ("/home/u/secret/a.md", (), "/home/u/secret", True),  # a directory covers what is under it
        ("/home/u/secrets.md", (), "/home/u/secret", False),  # … but not a sibling with a longer name
        ("/home/u/notes/x.private.md", (), "*.private.md", True),  # bare pattern: the file name anywhere
        ("/home/u/notes/x.md", (), "*.private.md", False),
        (None, ("HR",), "tag:hr", True),
        (None, ("finance",), "tag:hr", False),
        (None, (), "/home/u/secret/**", False),  # pasted text with no file
    ],
)
def test_private_match(document, tags, rule, hit):
    assert (private_match(document, tags, [rule]) == rule) is hit


def test_private_tilde_expands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert private_match(str(tmp_path / "medical" / "scan.txt"), (), ["~/medical/**"]) == "~/medical/**"


def test_decide_is_pure_and_deterministic():
    policy = PolicyConfig(remote="allow", send="relevant", redact=("all",))
    a = decide(req(local_answer="Grenoble"), policy)
    b = decide(req(local_answer="Grenoble"), policy)
    assert a == b


def test_describe_and_override():
    p = PolicyConfig(remote="ask", send="relevant", redact=("email", r"\d+"), private=("a", "b"))
    assert describe(p) == "remote ask · send relevant · redact email,regex · 2 private rules"
    q = override(p, {"remote": "never"})
    assert q.remote == "never" and q.send == "relevant" and q.redact == p.redact
    with pytest.raises(ValueError, match="remote"):
        override(p, {"remote": "sometimes"})


def test_earlier_turns_follow_the_send_mode_and_are_redacted():
    history = (("Who runs Acme?", "Marie Dupont"), ("How do I reach the press office?", "press@acme.example.com"))
    q = decide(req(history=history), PolicyConfig(remote="allow", send="question", redact=("email",)))
    assert q.history == (("Who runs Acme?", None), ("How do I reach the press office?", None))  # answers withheld
    assert "with 2 earlier turns (questions)" in q.reason and q.action == "transformed"
    full = decide(req(history=history), PolicyConfig(remote="allow", send="full", redact=("email",)))
    assert full.history == (("Who runs Acme?", "Marie Dupont"), ("How do I reach the press office?", "[EMAIL_1]"))
    assert full.mapping["[EMAIL_1]"] == "press@acme.example.com"
    assert "[EMAIL_1]" in full.context  # the same address in the context gets the same placeholder
    assert full.counts["email"] == 2
    assert decide(req(history=history), PolicyConfig(remote="never", send="full")).history == ()


def test_relevant_sends_only_the_passages_holding_the_answer():
    passages = ("Acme moved to Grenoble in 1978.", "The chief executive is Marie Dupont.", "Grenoblex is a typo.")
    assert relevant_window(CONTEXT, "q", "Grenoble", passages=passages) == "Acme moved to Grenoble in 1978."
    assert relevant_window(CONTEXT, "q", "unanswerable", passages=passages).count("\n\n") == 2  # none: all
