"""Build the public follow-up question set: a first question, then one that needs it (issue 22, section 4).

    .venv/bin/python bench/followups.py                 # writes bench/data/followups.jsonl (+ the two variants)
    .venv/bin/python bench/followups.py --candidates    # every candidate pair, for reading

**What an item is.** The shared schema of ``../shared/data`` (``context``, ``question``, ``answers``,
``unanswerable``, …) where ``question`` is a *follow-up* and ``history`` holds the earlier turn as
``[[first_question, first_answer]]``: ``first_answer`` is the first question's gold answer (the first gold
answer of the source file), i.e. what a user saw when the first answer was right. ``answers`` and
``unanswerable`` are the follow-up's source question's own gold. ``meta`` keeps the source question
(``original``), the rule that rewrote it, the string it replaced and the ids of both source questions.

**How it is built** — from two source files only, by transparent string rules, deterministically:

- SQuAD 2.0 dev (``squad_v2_dev_public.jsonl``, CC BY-SA 4.0) and FairyTaleQA val
  (``fairytaleqa_val.jsonl``, Apache-2.0). The set is a derivative of both and carries their licences:
  its SQuAD items CC BY-SA 4.0, its FairyTaleQA items Apache-2.0.
- Two questions over the same passage (``context_id``). The first must be answerable. Neither may be among
  the 500 questions the shipped router was fitted on (the seed-0 shuffles' first 300 SQuAD and 200
  FairyTaleQA questions, ``docs/results/merged500-signals``), so the shipped router is held out here.
- **answer → pronoun** (``answer``): the first question's gold answer, a capitalised name of at most five
  words that the first question does not itself contain, occurs in the second question, whose own gold
  answers are different ("Who received the first steam engine patent?" → "Jerónimo de Ayanz y Beaumont";
  "In what year did Jerónimo de Ayanz y Beaumont receive a steam engine patent?" → "In what year did he
  receive a steam engine patent?").
- **shared subject → pronoun** (``subject``): the longest capitalised phrase (not the question's first word
  alone) that both questions contain is replaced in the second ("When did the Normans conquer X?",
  "Who led the Normans?" → "Who led them?"); the first question's answer may not be that phrase.
- The pronoun, by simple rules (``choose_pronoun``): "they" for a phrase joined by "and"; a person's he/she
  when the first question asks who/whom/whose, or its first five words hold a person word (``PERSON_WORDS``
  or a word in -ist: "What English chemist …"), unless they hold a place or institution word
  (``NOT_PEOPLE``; a first question starting "Where"/"When"/"How" is never about a person) — a person
  whose gender is not found is dropped; otherwise he/she when a gender is found and the phrase is no place
  or institution and does not follow "the" (unless it is a title: "the youngest Princess"); else "they" when
  its last capitalised word ends in -s (not -ss/-us/-is: "the Huguenots") and "it" for the rest. The gender
  (``gender``): a title in the phrase ("Princess", "King": ``FEMALE``/``MALE``), else the first of
  he/him/his or she/her within 25 words after each mention in the passage votes, and one side needs a vote
  and twice the other's.
- Its form (``replace_with_pronoun``) follows the neighbouring words: a preceding "the" (or "the" and a
  superlative, an ordinal, old/little/young) goes with the phrase; possessive before "'s"; subject at the
  start, after an auxiliary (also negated: "didn't"), a wh-word, a comma or "that"/"and"/"but", or after a
  subordinator (after/when/because/…) with a lower-case word following; object otherwise; "it" after
  "in"/"at" becomes "there"; "they" as a subject turns is/was/has/does beside it into are/were/have/do. A
  phrase used as a modifier is left alone (no pair): after a quantifier ("many Catholic schools"), before a
  capitalised word ("Black's Law Dictionary"), before a lower-case word where no verb can follow ("the Amazon
  River basin"), a plural noun after a modal ("did Turing machines"), and "it" after "of"/"on" ("the
  country of it").
- **ellipsis** (``ellipsis``): the two questions differ in one short span only (at most four words on each
  side, the shared words at least three and 60 % of the second question); the follow-up is "And the second
  one?" when the spans are ordinals, else "What about <span>?" with the preposition before the span kept
  ("And in 1950?"); the span must hold a capitalised word, a digit or an ordinal, and may not add a negation.
- From every candidate pair the items are drawn in the order of a hash of the pair's id (stable,
  independent of file order and of any model), one from each rule in turn, at most two per passage and four
  per article or story, each source question in one pair only, SQuAD items in the source file's share of
  unanswerable questions (51 %; FairyTaleQA has none), up to ``TARGET``: 44 SQuAD and 26 FairyTaleQA items.

**The set** (``bench/data/followups.jsonl``): 70 items. SQuAD 2.0: 44 over 19 articles — 15 answer → pronoun
(8 unanswerable), 15 shared subject → pronoun (4 unanswerable), 14 ellipsis (10 unanswerable; 22
unanswerable in all, the SQuAD follow-ups that no passage answers, as SQuAD 2.0 builds them). FairyTaleQA:
26 over 12 stories — 6 answer → pronoun, 20 shared subject → pronoun. No model answered any of them before
the set was fixed. 28 of the 70 passages are also passages of the committed 500-question runs; no question is.
Licences: the SQuAD-derived items CC BY-SA 4.0, the FairyTaleQA-derived items Apache-2.0.

**How it was checked.** Every pair drawn was read by hand, with its first question, first answer, source
question and follow-up (``--candidates`` prints them; unread ones are marked NEW). 106 pairs were read: 71
read naturally (``reviewed`` in ``bench/data/followups-review.json``; 70 of them are drawn), 35 did not
(``rejected`` there, each with its reason: a wrong pronoun — mostly a
person called "it" —, a pronoun that could resolve to someone else in the first turn, a broken or
article-less sentence, an ellipsis that lost part of the question, a first question that gives the
follow-up's answer away or asks nearly the same thing). While reading, some rules were tightened (the
modifier and "there" rules, the person words), and a pair the new rules rewrote was read again. The review
holds each kept pair's follow-up exactly as read; the script writes only such pairs, so a later change to
the rules cannot add an unread follow-up. No follow-up was edited by hand: the rules made every one.

**Do not tune on it.** This set measures how the cascade handles follow-ups. It was built without looking
at any model's answers, and whoever reports on it must not tune prompts, signals, routers or thresholds on
it (nor pick among them by it): fit on the shared data files or your own questions, then report here once.

Besides ``followups.jsonl`` the script writes ``followups-alone.jsonl`` (the same items, no ``history``: the
follow-up asked alone) and ``followups-resolved.jsonl`` (no history, the source question as the question:
what the follow-up would score if it had been asked in full).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automix_local.evaluation import load_items, select_items  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SQUAD = DATA / "squad_v2_dev_public.jsonl"
FAIRY = DATA / "fairytaleqa_val.jsonl"
OUT = ROOT / "bench" / "data"
TARGET = {"squad_v2": 44, "fairytaleqa_val": 26}  # items kept per source, after reading
PER_CONTEXT = 2
PER_DOCUMENT = 4  # a SQuAD article (meta.title) or a FairyTaleQA story (meta.story)
UNANSWERABLE_SHARE = {"squad_v2": 0.51, "fairytaleqa_val": 0.0}  # the source files' own shares

AUX = {
    "is", "was", "are", "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would",
    "should", "may", "might", "must", "shall",
}  # fmt: skip
WH = {"who", "whom", "whose", "what", "when", "where", "why", "how", "which"}
SUBJECT_BEFORE = AUX | {a + "n't" for a in AUX} | {"won't", "can't", "ain't"} | WH | {",", "that", "and", "but"}
PREPOSITIONS = {
    "in", "on", "at", "by", "for", "from", "to", "with", "of", "about", "after", "before", "during", "under",
    "over", "into", "between", "against", "since", "until", "than", "through", "within", "without",
}  # fmt: skip
ORDINALS = {
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "last",
    "next", "previous",
}  # fmt: skip
NEGATIONS = {"not", "never", "no", "n't", "none", "nobody", "nothing"}
SUBORDINATORS = {"after", "before", "when", "while", "because", "if", "since", "until", "as", "once", "that"}
QUANTIFIERS = {
    "many", "much", "few", "several", "some", "all", "most", "other", "two", "three", "four", "five", "every",
    "each", "any", "these", "those", "this", "a", "an",
}  # fmt: skip
NOT_PEOPLE = {
    "river", "park", "basin", "union", "court", "act", "company", "party", "university", "church", "city",
    "state", "states", "kingdom", "empire", "republic", "county", "island", "islands", "sea", "ocean", "war",
    "treaty", "council", "commission", "parliament", "house", "school", "college", "railway", "railroad",
    "forest", "valley", "mountains", "bay", "street", "station", "museum", "library", "bank", "corporation",
    "institute", "department", "agency", "league", "cup", "bowl", "series", "award", "prize", "theorem",
    "country", "area", "region", "town", "place", "province", "nation", "hills", "organization", "group",
    "team", "book", "dictionary", "rainforest", "sector", "dynasty", "land", "lake", "building", "tower",
    "play", "film", "novel", "poem", "song", "album", "ship", "system", "language",
}  # fmt: skip
CONNECTORS = {"of", "the", "de", "and", "y", "von", "van", "du", "la", "le", "der"}
PERSON_WORDS = {
    "person",
    "people",
    "inventor",
    "leader",
    "king",
    "queen",
    "president",
    "emperor",
    "ruler",
    "general",
    "writer",
    "author",
    "poet",
    "engineer",
    "explorer",
    "politician",
    "individual",
    "individuals",
    "man",
    "woman",
    "philosopher",
    "founder",
    "professor",
    "minister",
    "duke",
    "pope",
    "saint",
    "indian",
}  # fmt: skip  (and any word ending in -ist: chemist, archaeologist, evolutionist)
FEMALE = {"princess", "queen", "lady", "girl", "woman", "maiden", "mother", "sister", "daughter", "wife", "aunt"}
MALE = {"prince", "king", "lord", "boy", "man", "father", "brother", "son", "husband", "giant", "knight", "sir"}
PRONOUNS = {
    "he": ("he", "him", "his"),
    "she": ("she", "her", "her"),
    "it": ("it", "it", "its"),
    "they": ("they", "them", "their"),
}
PLURAL_VERB = {"is": "are", "was": "were", "has": "have", "does": "do"}

# The hand review (bench/data/followups-review.json): "reviewed", every pair kept after reading it (first id >
# follow-up id) → the follow-up exactly as read (a rule change that rewrites it makes the pair unread again);
# "rejected", every pair dropped after reading it → why.
REVIEW_FILE = OUT / "followups-review.json"
_review = json.loads(REVIEW_FILE.read_text(encoding="utf-8"))
REVIEWED: dict[str, str] = _review["reviewed"]
REJECTED: dict[str, str] = _review["rejected"]


# --------------------------------------------------------------------------- text


def tokenize(text: str) -> list[str]:
    """Words, possessive 's, and punctuation as tokens; joined back by :func:`detokenize`."""
    return re.findall(r"[’']s\b|[\w](?:[\w\-–.]|['’](?!s\b))*[\w]|[\w]|[^\w\s]", text.strip())


def detokenize(tokens: list[str]) -> str:
    out = ""
    for t in tokens:
        if not out or re.fullmatch(r"[’']s|[^\w\s(\"]", t):
            out += t
        else:
            out += " " + t
    return out


def capitalised(token: str) -> bool:
    return token[:1].isupper() and any(c.isalpha() for c in token)


def find(span: list[str], tokens: list[str]) -> int:
    """Index of the first occurrence of ``span`` in ``tokens``, or -1."""
    n = len(span)
    for i in range(len(tokens) - n + 1):
        if tokens[i : i + n] == span:
            return i
    return -1


def gender(context: str, phrase: str) -> str | None:
    """'he' or 'she': a gendered title in the phrase decides ("the youngest Princess"); else after each mention
    of the phrase in the passage the first of he/him/his/himself or she/her/hers/herself within 25 words votes,
    and one wins with at least one vote and twice as many as the other; else None."""
    titles = {w.lower() for w in phrase.split()}
    if titles & FEMALE:
        return "she"
    if titles & MALE:
        return "he"
    words = re.findall(r"[\w’']+", context.lower())
    name = re.findall(r"[\w’']+", phrase.lower())
    votes: Counter[str] = Counter()
    for i in range(len(words) - len(name) + 1):
        if words[i : i + len(name)] != name:
            continue
        for w in words[i + len(name) : i + len(name) + 25]:
            if w in {"he", "him", "his", "himself"}:
                votes["he"] += 1
                break
            if w in {"she", "her", "hers", "herself"}:
                votes["she"] += 1
                break
    he, she = votes["he"], votes["she"]
    if max(he, she) < 1 or max(he, she) < 2 * min(he, she):
        return None
    return "he" if he > she else "she"


def plural(phrase: str) -> bool:
    """A phrase whose last word is capitalised and ends in -s (not -ss/-us/-is): "Huguenots", "United States"."""
    last = phrase.split()[-1]
    return capitalised(last) and re.search(r"[^sui]s$", last) is not None


def choose_pronoun(rule: str, q1: str, context: str, phrase: str, the: bool = False) -> str | None:
    """'he' | 'she' | 'it' | 'they', or None when a person's gender cannot be told. ``the``: the phrase follows
    "the" in the follow-up (not a person's name, unless a title: "the youngest Princess")."""
    if " and " in phrase:
        return "they"
    words = {w.lower() for w in phrase.split()}
    first_words = [w.lower() for w in re.findall(r"[\w-]+", q1)[:5]]
    if rule == "answer":  # the first question names what kind of thing its answer is
        if re.match(r"(?i)\s*(where|when|in what year|how)\b", q1):
            words.add("place")
        words |= set(first_words)
        asks_person = re.search(r"(?i)\b(who|whom|whose)\b", q1) or any(
            w in PERSON_WORDS or w.endswith("ist") for w in first_words
        )
        if asks_person and not words & NOT_PEOPLE:
            return gender(context, phrase)
    g = None if words & NOT_PEOPLE or (the and not words & (FEMALE | MALE)) else gender(context, phrase)
    return g or ("they" if plural(phrase) else "it")


def replace_with_pronoun(tokens: list[str], start: int, end: int, pronoun: str) -> list[str] | None:
    """``tokens`` with tokens[start:end] (taking a preceding 'the', or 'the' and one lower-case word: "the
    youngest Princess") replaced by ``pronoun`` in its form; None where the phrase is a modifier (a lower-case
    noun follows it where no verb can: "the Amazon River basin", "many Catholic schools")."""
    if start > 0 and tokens[start - 1].lower() == "the":
        start -= 1
    elif start > 1 and tokens[start - 2].lower() == "the" and adjective(tokens[start - 1]):
        start -= 2
    subj, obj, poss = PRONOUNS[pronoun]
    after = tokens[end] if end < len(tokens) else ""
    before = tokens[start - 1].lower() if start > 0 else ""
    if before in QUANTIFIERS or capitalised(after):
        return None  # "many Catholic schools", or part of a longer name ("Black's Law Dictionary")
    clause_start = start == 0 or before in SUBJECT_BEFORE
    if clause_start and before in AUX - {"is", "was", "are", "were", "has", "have", "had"} and after.endswith("s"):
        return None  # "did Turing machines …": a modal takes a bare verb, so a plural noun here is the subject
    verb_follows = after.islower() and after not in PREPOSITIONS and after not in {"and", "or"}
    if re.fullmatch(r"[’']s", after):
        word, end = poss, end + 1
    elif clause_start or (before in SUBORDINATORS and verb_follows):
        word = subj
    elif verb_follows and after not in {"to", "aside", "up", "down", "out", "off", "away", "back"}:
        return None  # an object followed by a lower-case word: a modifier ("in the Amazon River basin")
    else:
        word = obj
    if word == "it" and before in {"in", "at"}:  # "the biggest religion in Quebec" → "… there"
        start, word = start - 1, "there"
    if word == "it" and before in {"of", "on"}:
        return None  # "the country of it", "the Agreement on it": the phrase was part of a longer name
    out = [*tokens[:start], word, *tokens[end:]]
    if start == 0:
        out[0] = out[0][:1].upper() + out[0][1:]
    if word == "they":
        for k in (start - 1, start + 1):  # the auxiliary before or the verb after the new subject
            if 0 <= k < len(out) and out[k].lower() in PLURAL_VERB:
                new = PLURAL_VERB[out[k].lower()]
                out[k] = new.capitalize() if out[k][:1].isupper() else new
    return out


def adjective(token: str) -> bool:
    """A superlative, an ordinal or a few common adjectives: kept with the phrase they precede ("the youngest
    Princess" → she)."""
    return token.islower() and (token.endswith("est") or token in ORDINALS or token in {"old", "little", "young"})


def capitalised_phrases(tokens: list[str]) -> list[tuple[int, int]]:
    """Maximal runs of capitalised words (connectors allowed inside), as (start, end); the question's first
    word alone is not one (it is capitalised because it starts the sentence)."""
    spans, i = [], 0
    while i < len(tokens):
        if capitalised(tokens[i]) and tokens[i].lower() not in WH:
            j = i + 1
            while j < len(tokens):
                if capitalised(tokens[j]):
                    j += 1
                elif tokens[j].lower() in CONNECTORS and j + 1 < len(tokens) and capitalised(tokens[j + 1]):
                    j += 2
                else:
                    break
            if not (i == 0 and j == 1):
                spans.append((i, j))
            i = j
        else:
            i += 1
    return spans


# --------------------------------------------------------------------------- rules


def rule_answer(q1: dict, q2: dict) -> dict | None:
    """The first question's answer, a name, occurs in the second question → a pronoun."""
    a1 = q1["answers"][0].strip()
    if not a1 or not capitalised(a1) or len(a1.split()) > 5 or any(c.isdigit() for c in a1):
        return None
    span = tokenize(a1)
    if find(span, tokenize(q1["question"])) >= 0:
        return None
    if any(a1.lower() == a.strip().lower() for a in q2["answers"]):
        return None
    t2 = tokenize(q2["question"])
    at = find(span, t2)
    if at < 0:
        return None
    pronoun = choose_pronoun("answer", q1["question"], q1["context"], a1, at > 0 and t2[at - 1].lower() == "the")
    if pronoun is None:
        return None
    new = replace_with_pronoun(t2, at, at + len(span), pronoun)
    return None if new is None else {"rule": "answer", "replaced": a1, "question": detokenize(new)}


def rule_subject(q1: dict, q2: dict) -> dict | None:
    """The longest capitalised phrase both questions name → a pronoun in the second."""
    t1, t2 = tokenize(q1["question"]), tokenize(q2["question"])
    best: tuple[int, int] | None = None
    for s, e in capitalised_phrases(t2):
        if find(t2[s:e], t1) >= 0 and (best is None or e - s > best[1] - best[0]):
            best = (s, e)
    if best is None:
        return None
    phrase = detokenize(t2[best[0] : best[1]])
    answers = [a.strip().lower() for a in q1["answers"] + q2["answers"]]
    if phrase.lower() in answers or any(phrase.lower() in a for a in answers):
        return None
    b = best[0]
    the = (b > 0 and t2[b - 1].lower() == "the") or (b > 1 and t2[b - 2].lower() == "the" and adjective(t2[b - 1]))
    pronoun = choose_pronoun("subject", q1["question"], q1["context"], phrase, the)
    if pronoun is None:
        return None
    new = replace_with_pronoun(t2, best[0], best[1], pronoun)
    return None if new is None else {"rule": "subject", "replaced": phrase, "question": detokenize(new)}


def rule_ellipsis(q1: dict, q2: dict) -> dict | None:
    """The questions differ in one short span → "And the second one?" / "What about <span>?"."""
    t1 = [t for t in tokenize(q1["question"]) if t != "?"]
    t2 = [t for t in tokenize(q2["question"]) if t != "?"]
    low1, low2 = [t.lower() for t in t1], [t.lower() for t in t2]
    p = 0
    while p < min(len(t1), len(t2)) and low1[p] == low2[p]:
        p += 1
    s = 0
    while s < min(len(t1), len(t2)) - p and low1[-1 - s] == low2[-1 - s]:
        s += 1
    d1, d2 = t1[p : len(t1) - s], t2[p : len(t2) - s]
    shared = p + s
    if p == 0 or not d1 or not d2 or len(d1) > 4 or len(d2) > 4 or shared < 3 or shared < 0.6 * len(t2):
        return None
    if any(t.lower() in NEGATIONS | WH for t in d1 + d2):
        return None
    if s and re.fullmatch(r"[’']s", t2[len(t2) - s]):  # "Watt's engine" / "Newcomen's engine" → Newcomen's
        d2 = [*d2, t2[len(t2) - s]]
    if any(a.strip().lower() == b.strip().lower() for a in q1["answers"] for b in q2["answers"]):
        return None
    ordinal = all(t.lower() in ORDINALS for t in d1 + d2)
    if ordinal:
        return {"rule": "ellipsis", "replaced": detokenize(d1), "question": f"And the {detokenize(d2)} one?"}
    if not any(capitalised(t) or any(c.isdigit() for c in t) for t in d2):
        return None
    span = detokenize(d2)
    if p > 0 and low2[p - 1] in PREPOSITIONS:
        return {"rule": "ellipsis", "replaced": detokenize(d1), "question": f"And {low2[p - 1]} {span}?"}
    return {"rule": "ellipsis", "replaced": detokenize(d1), "question": f"What about {span}?"}


RULES = (rule_ellipsis, rule_answer, rule_subject)  # the first rule that applies makes the follow-up
RULE_ORDER = ("answer", "subject", "ellipsis")  # the draw takes one of each in turn


# --------------------------------------------------------------------------- the set


def fitted_on() -> set[str]:
    """The 500 question ids the shipped router was fitted on (docs/results/merged500-signals)."""
    squad = select_items(load_items(SQUAD), 300, 0)
    fairy = select_items(load_items(FAIRY), 200, 0)
    return {it["id"] for it in squad + fairy}


def pair_id(q1: dict, q2: dict) -> str:
    return f"{q1['id']}>{q2['id']}"


def candidates(rows: list[dict], excluded: set[str]) -> list[dict[str, Any]]:
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["id"] not in excluded:
            by[r["context_id"]].append(r)
    out = []
    for qs in by.values():
        for q1 in qs:
            if q1["unanswerable"] or not q1["answers"]:
                continue
            for q2 in qs:
                if q2 is q1 or q2["question"].strip() == q1["question"].strip():
                    continue
                for rule in RULES:
                    made = rule(q1, q2)
                    if made is not None:
                        out.append(item(q1, q2, made))
                        break
    out.sort(key=lambda it: hashlib.sha256(it["meta"]["pair"].encode()).hexdigest())
    return out


def item(q1: dict, q2: dict, made: dict) -> dict[str, Any]:
    return {
        "dataset": q2["dataset"],
        "id": f"followup-{q2['id']}",
        "context_id": q2["context_id"],
        "context": q2["context"],
        "question": made["question"],
        "answers": q2["answers"],
        "unanswerable": q2["unanswerable"],
        "choices": None,
        "answer_index": None,
        "history": [[q1["question"].strip(), q1["answers"][0].strip()]],
        "meta": {
            "pair": pair_id(q1, q2),
            "rule": made["rule"],
            "replaced": made["replaced"],
            "original": q2["question"].strip(),
            "first_id": q1["id"],
            "source_id": q2["id"],
            "source": q2.get("meta") or {},
        },
    }


def document(it: dict) -> str:
    source = it["meta"]["source"]
    return str(source.get("title") or source.get("story") or it["context_id"])


def draw(pool: list[dict], dataset: str, reviewed_only: bool) -> list[dict]:
    """Items taken from the rules in turn (answer, subject, ellipsis, each in hash order, so that no rule
    fills the set): at most PER_CONTEXT per passage, each source question once, the unanswerable share of the
    source, up to TARGET; rejected pairs skipped; with ``reviewed_only`` unread ones too."""
    target = TARGET[dataset]
    want_una = round(target * UNANSWERABLE_SHARE[dataset])
    want = {True: want_una, False: target - want_una}
    queues = {r: [it for it in pool if it["dataset"] == dataset and it["meta"]["rule"] == r] for r in RULE_ORDER}
    taken: list[dict] = []
    per_context: Counter[str] = Counter()
    per_document: Counter[str] = Counter()
    used: set[str] = set()

    def fits(it: dict) -> bool:
        pair = it["meta"]["pair"]
        if pair in REJECTED or (reviewed_only and REVIEWED.get(pair) != it["question"]):
            return False
        if want[bool(it["unanswerable"])] <= 0 or per_context[it["context_id"]] >= PER_CONTEXT:
            return False
        if per_document[document(it)] >= PER_DOCUMENT:
            return False
        # each source question at most once, as a follow-up or as a first question
        return it["meta"]["source_id"] not in used and it["meta"]["first_id"] not in used

    while len(taken) < target and any(queues.values()):
        for rule in RULE_ORDER:
            queue = queues[rule]
            while queue:
                it = queue.pop(0)
                if fits(it):
                    want[bool(it["unanswerable"])] -= 1
                    per_context[it["context_id"]] += 1
                    per_document[document(it)] += 1
                    used.update((it["meta"]["source_id"], it["meta"]["first_id"]))
                    taken.append(it)
                    break
            if len(taken) >= target:
                break
    return taken


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", action="store_true", help="print the drawn pairs, read or not, and stop")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    excluded = fitted_on()
    rows = [it for path in (SQUAD, FAIRY) for it in load_items(path)]
    pool = candidates(rows, excluded)
    print(f"{len(pool)} candidate pairs: {dict(Counter((it['dataset'], it['meta']['rule']) for it in pool))}")
    if args.candidates:
        for ds in TARGET:
            for it in draw(pool, ds, reviewed_only=False):
                mark = "ok " if REVIEWED.get(it["meta"]["pair"]) == it["question"] else "NEW"
                ((q, a),) = it["history"]
                print(f"{mark} {it['meta']['pair']} [{it['meta']['rule']}] {'UNA' if it['unanswerable'] else ''}")
                print(f"    Q1: {q}  ->  {a}")
                print(f"    Q2: {it['meta']['original']}")
                print(f"    F:  {it['question']}")
        return 0
    kept = [it for ds in TARGET for it in draw(pool, ds, reviewed_only=True)]
    unread = [it["meta"]["pair"] for it in kept if REVIEWED.get(it["meta"]["pair"]) != it["question"]]
    assert not unread, unread
    args.out.mkdir(parents=True, exist_ok=True)
    variants = {
        "followups.jsonl": kept,
        "followups-alone.jsonl": [{k: v for k, v in it.items() if k != "history"} for it in kept],
        "followups-resolved.jsonl": [
            {k: v for k, v in it.items() if k != "history"} | {"question": it["meta"]["original"]} for it in kept
        ],
    }
    for name, items in variants.items():
        with (args.out / name).open("w", encoding="utf-8") as f:
            for it in items:
                f.write(json.dumps(it, ensure_ascii=False) + "\n")
    counts = Counter((it["dataset"], it["meta"]["rule"], it["unanswerable"]) for it in kept)
    print(f"{len(kept)} items → {args.out}: {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
