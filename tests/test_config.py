"""models.toml: parsing into typed objects, the lookup order, and one-line errors for bad files."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from automix_local.config import (
    Config,
    ConfigError,
    HFSource,
    PathSource,
    PipSource,
    find_config,
    load_config,
    packaged_default,
    parse_config,
)
from automix_local.errors import UsageError
from automix_local.paths import default_paths
from automix_local.schema import Invalid, describe, read_dataclass

from .conftest import ROOT, cli_path

SHA = "a" * 64
GOOD_TIER = f'[[tiers]]\nname = "small"\npath = "/m/small.gguf"\nsha256 = "{SHA}"\n'


def parse(text: str, tmp_path: Path | None = None):
    return parse_config(text, (tmp_path or Path("/cfg")) / "models.toml")


def test_packaged_default_parses_with_contract_keys():
    cfg = load_config(packaged_default())
    assert [t.name for t in cfg.tiers] == ["small", "large"]
    assert all(isinstance(t.source, PipSource) for t in cfg.tiers)
    assert cfg.tiers[0].sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert cfg.tiers[1].sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert len(cfg.tiers[0].source.parts) == 6 and len(cfg.tiers[1].source.parts) == 22
    assert cfg.cascade.verifier in ("logprob", "sampled")
    assert cfg.policy.remote == "never"


def test_packaged_calibration_matches_the_packaged_prompt_and_tiers():
    from automix_local.routers import make_router

    cfg = load_config(packaged_default())
    router = make_router(cfg)  # refused here if it were fitted for other tiers or another prompt
    assert router.kind == cfg.cascade.router and router.signal is not None
    assert router.prompt == {
        "layout": cfg.cascade.layout,
        "answer_examples": cfg.cascade.answer_examples,
        "turns": False,  # fitted on single questions: a follow-up's trace says so
    }
    # every feature the shipped signal reads is one the cascade computes for a local tier's answer
    from automix_local.grounding import grounding_features
    from automix_local.signals import answer_features

    computed = answer_features([-0.1], {}, False, [0.5], [1.0]) | grounding_features("A b c.", "Who?", "b", False)
    assert set(router.signal.features) <= set(computed)
    assert not router.abstain  # the default does not abstain: how often a question has none depends on you


def test_top_level_models_toml_is_the_packaged_one():
    assert (ROOT / "models.toml").read_text() == packaged_default().read_text()


def test_the_repository_models_toml_and_a_copy_in_the_config_dir_work_as_config(tmp_path: Path):
    """Issue 24 §3: `--config models.toml` from a checkout, and the copy the file's first comment tells users to
    make, both load: the shipped router is named as `package:`, not relative to wherever the file sits."""
    shipped = packaged_default().parent / "router-default.json"
    assert load_config(ROOT / "models.toml").cascade.calibration == shipped
    copy = tmp_path / "config" / "models.toml"
    copy.parent.mkdir()
    copy.write_text(packaged_default().read_text())
    assert load_config(copy).cascade.calibration == shipped
    old = tmp_path / "old.toml"
    old.write_text(packaged_default().read_text().replace("package:router-default.json", "router-default.json"))
    with pytest.raises(ConfigError, match='the router shipped with automix-local is calibration = "package:router'):
        load_config(old)
    bad = tmp_path / "bad.toml"
    bad.write_text(packaged_default().read_text().replace("package:router-default.json", "package:nope.json"))
    with pytest.raises(ConfigError, match="no router 'nope.json' ships with automix-local"):
        load_config(bad)


def test_full_example_parses_into_dataclasses(tmp_path: Path):
    router = tmp_path / "router.json"
    router.write_text("{}")
    text = f"""
[[tiers]]
name = "small"
backend = "llama"
path = "models/x.gguf"
sha256 = "{SHA.upper()}"
n_ctx = 4096
n_threads = 2
n_gpu_layers = -1
chat_format = "chatml"
stop = ["\\n\\n"]
cost = 1
cost_per_1k_tokens = 0.5

[[tiers]]
name = "large"
hf = "Qwen/Qwen2.5-1.5B-Instruct-GGUF:qwen2.5-1.5b-instruct-q4_k_m.gguf"
cost = 50.0

[[tiers]]
name = "remote"
backend = "openai"
base_url = "http://127.0.0.1:8080/v1"
model = "gpt-x"
api_key_env = "OPENAI_API_KEY"

[cascade]
verifier = "sampled"
answer_examples = true
router = "pomdp"
calibration = "router.json"
samples = 8
temperature = 1.0
lambda = 0.01

[policy]
remote = "ask"
send = "relevant"
redact = ["email", "[0-9]{{3}}-[0-9]{{4}}"]
private = ["~/secret/**"]
"""
    cfg = parse(text, tmp_path)
    small, large, remote = cfg.tiers
    assert small.source == PathSource(tmp_path / "models" / "x.gguf")  # relative to the config file
    assert small.sha256 == SHA and small.n_gpu_layers == -1 and small.stop == ("\n\n",)
    assert small.cost == 1.0 and isinstance(small.cost, float)
    assert small.call_cost(1000, 1000) == pytest.approx(2.0)
    assert large.source == HFSource("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf")
    assert remote.backend == "openai" and remote.source is None and remote.api_key_env == "OPENAI_API_KEY"
    assert cfg.cascade.router == "pomdp" and cfg.cascade.calibration == tmp_path / "router.json"
    assert cfg.cascade.lambda_ == 0.01 and cfg.cascade.answer_examples is True
    assert cfg.policy.remote == "ask" and cfg.policy.redact[0] == "email"


def test_pip_source_parts_and_filename():
    cfg = parse(
        '[[tiers]]\nname = "m"\npip = ["a-b==1.0:a_b/data/part01.bin", "a-c==1.0:a_c/data/part02.bin"]\n'
        f'sha256 = "{SHA}"\n'
    )
    src = cfg.tiers[0].source
    assert isinstance(src, PipSource)
    assert [p.requirement for p in src.parts] == ["a-b==1.0", "a-c==1.0"]
    assert src.filename == "m.gguf"


BAD = [
    # (id, toml text, key named in the message, words the message must contain)
    ("syntax", "[[tiers]\nname=1", "", "invalid TOML"),
    ("no tiers", "[cascade]\nrouter = 'threshold'\n", "tiers", "no tiers"),
    ("unknown top key", GOOD_TIER + "[cascde]\n", "cascde", "did you mean 'cascade'"),
    ("unknown tier key", GOOD_TIER + "n_ctxx = 5\n", "n_ctxx", "did you mean 'n_ctx'"),
    ("missing name", f'[[tiers]]\npath = "/x.gguf"\nsha256 = "{SHA}"\n', "tiers[0].name", "missing"),
    ("bad name", '[[tiers]]\nname = "a b"\npath = "/x.gguf"\n', "tiers[0].name", "expected letters"),
    ("duplicate name", GOOD_TIER + GOOD_TIER, "tiers[1].name", "duplicate tier name"),
    ("no source", '[[tiers]]\nname = "s"\n', "path", "missing model source"),
    ("two sources", '[[tiers]]\nname = "s"\npath = "/x"\nhf = "a/b:c.gguf"\n', "hf", "exactly one source"),
    ("bad hf", '[[tiers]]\nname = "s"\nhf = "just-a-name"\n', "hf", "org/repo:file.gguf"),
    ("bad pip entry", '[[tiers]]\nname = "s"\npip = ["numpy"]\nsha256 = "' + SHA + '"\n', "pip", "package==1.0"),
    ("pip without sha", '[[tiers]]\nname = "s"\npip = ["a==1:a/b.bin"]\n', "sha256", "required for a pip source"),
    ("short sha", '[[tiers]]\nname = "s"\npath = "/x"\nsha256 = "abc"\n', "sha256", "64 hexadecimal"),
    ("wrong type n_ctx", GOOD_TIER + 'n_ctx = "4096"\n', "n_ctx", "expected an integer, got the string '4096'"),
    ("bool as int", GOOD_TIER + "n_ctx = true\n", "n_ctx", "expected an integer"),
    ("n_ctx too small", GOOD_TIER + "n_ctx = 0\n", "n_ctx", ">= 16"),
    ("negative cost", GOOD_TIER + "cost = -1\n", "cost", ">= 0"),
    ("bad backend", GOOD_TIER + 'backend = "ollama"\n', "backend", "'llama', 'openai'"),
    ("openai without url", '[[tiers]]\nname = "r"\nbackend = "openai"\nmodel = "m"\n', "base_url", "required"),
    (
        "key in api_key_env",
        '[[tiers]]\nname = "r"\nbackend = "openai"\nbase_url = "http://x"\nmodel = "m"\napi_key_env = "sk-123 456"\n',
        "api_key_env",
        "NAME of an environment variable",
    ),
    (
        "openai url not a url",
        '[[tiers]]\nname = "r"\nbackend = "openai"\nbase_url = "api.openai.com/v1"\nmodel = "m"\n',
        "base_url",
        "https://",
    ),
    (
        "remote tier not last",
        '[[tiers]]\nname = "r"\nbackend = "openai"\nbase_url = "http://x"\nmodel = "m"\n' + GOOD_TIER,
        "tiers[0].backend",
        "must be the last tier",
    ),
    ("unknown detector", GOOD_TIER + '[policy]\nredact = ["emails"]\n', "policy.redact[0]", "unknown detector"),
    ("stop not strings", GOOD_TIER + "stop = [1, 2]\n", "stop", "list of strings"),
    ("bad verifier", GOOD_TIER + '[cascade]\nverifier = "vibes"\n', "cascade.verifier", "'logprob', 'sampled'"),
    ("bad router", GOOD_TIER + '[cascade]\nrouter = "pomdpp"\n', "cascade.router", "'pomdp'"),
    ("pomdp no calibration", GOOD_TIER + '[cascade]\nrouter = "pomdp"\n', "cascade.calibration", "needs a fitted"),
    ("missing calibration", GOOD_TIER + '[cascade]\ncalibration = "nope.json"\n', "cascade.calibration", "not found"),
    (
        "examples with shared layout",
        GOOD_TIER + '[cascade]\nlayout = "shared"\nanswer_examples = true\n',
        "cascade.answer_examples",
        'applies to layout = "paper"',
    ),
    ("threshold range", GOOD_TIER + "[cascade]\nthreshold = 1.5\n", "cascade.threshold", "between 0 and 1"),
    (
        "lambda and target",
        GOOD_TIER + "[cascade]\nlambda = 0.1\ntarget_escalation = 0.3\n",
        "cascade.target_escalation",
        "not both",
    ),
    ("bad remote", GOOD_TIER + '[policy]\nremote = "sometimes"\n', "policy.remote", "'never', 'ask', 'allow'"),
    ("bad regex", GOOD_TIER + '[policy]\nredact = ["(unclosed"]\n', "policy.redact[0]", "regular expression"),
    ("tiers not a list", 'tiers = "small"\n', "tiers", "expected a list"),
    ("tui key not a string", GOOD_TIER + "[tui.keys]\ncancel = 5\n", "tui.keys.cancel", "expected a key"),
    ("unknown tui key", GOOD_TIER + '[tui]\nthemes = "x"\n', "tui.themes", "did you mean 'theme'"),
    ("cascade not table", GOOD_TIER.replace("[[tiers]]", "cascade = 1\n[[tiers]]"), "cascade", "expected a table"),
    ("tier not a table", "tiers = [1]\n", "tiers[0]", "expected a table, got the number 1"),
    ("agreement bound", GOOD_TIER + "[cascade]\nagreement_samples = 40\n", "cascade.agreement_samples", "0 and 16"),
    ("negative history", GOOD_TIER + "[cascade]\nhistory_tokens = -1\n", "cascade.history_tokens", ">= 0, got -1"),
    ("float for an int", GOOD_TIER + "seed = 1.5\n", "tiers[0] (small).seed", "expected an integer, got the number"),
    ("unknown server key", GOOD_TIER + "[server]\nqueue_sizee = 1\n", "server.queue_sizee", "did you mean"),
    ("small body limit", GOOD_TIER + "[server]\nmax_request_bytes = 10\n", "server.max_request_bytes", ">= 1024"),
    ("lambda is the key", GOOD_TIER + "[cascade]\nlambda_ = 0.1\n", "cascade.lambda_", "did you mean 'lambda'"),
    ("keys not a table", GOOD_TIER + "[tui]\nkeys = 3\n", "tui.keys", "expected a table, got the number 3"),
    ("empty path", '[[tiers]]\nname = "s"\npath = ""\n', "tiers[0] (s).path", "got an empty string"),
]


@pytest.mark.parametrize("text,key,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_file_key_and_fix(text: str, key: str, words: str, tmp_path: Path):
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(tmp_path / "models.toml"))
    assert key in msg
    assert words in msg


def test_at_least_fifteen_bad_cases():
    assert len(BAD) >= 15


def test_bad_config_through_cli_exits_2_without_traceback(write_config):
    path = write_config(GOOD_TIER + "n_ctx = 'big'\n")
    proc = subprocess.run([cli_path(), "--config", str(path), "models", "list"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(path) in proc.stderr and "n_ctx" in proc.stderr and "expected an integer" in proc.stderr


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config):
    paths = default_paths()
    assert find_config(None, paths) == packaged_default()
    paths.user_config.parent.mkdir(parents=True)
    paths.user_config.write_text(GOOD_TIER)
    assert find_config(None, paths) == paths.user_config
    env_cfg = write_config(GOOD_TIER)
    monkeypatch.setenv("AUTOMIX_LOCAL_CONFIG", str(env_cfg))
    assert find_config(None, paths) == env_cfg
    explicit = write_config(GOOD_TIER)
    assert find_config(explicit, paths) == explicit


def test_state_dirs_follow_automix_local_home(hermetic_home: Path):
    paths = default_paths()
    for d in (paths.config_dir, paths.data_dir, paths.cache_dir, paths.state_dir):
        assert hermetic_home in d.parents


def test_documents_context_tokens():
    assert parse(GOOD_TIER).documents.context_tokens == 512
    assert parse(GOOD_TIER + "[documents]\ncontext_tokens = 0\n").documents.context_tokens == 0  # the window
    assert parse(GOOD_TIER + "[documents]\ncontext_tokens = 1024\n").documents.context_tokens == 1024
    with pytest.raises(ConfigError, match=r"documents\.context_tokens.*>= 0"):
        parse(GOOD_TIER + "[documents]\ncontext_tokens = -1\n")
    with pytest.raises(ConfigError, match=r"documents\.top_k"):
        parse(GOOD_TIER + "[documents]\ntop_k = 5\n")


def test_abstain_threshold():
    assert parse(GOOD_TIER).tiers[0].abstain_threshold is None
    assert parse(GOOD_TIER + "abstain_threshold = 0.3\n").tiers[0].abstain_threshold == 0.3
    with pytest.raises(ConfigError, match=r"abstain_threshold.*between 0 and 1"):
        parse(GOOD_TIER + "abstain_threshold = 1.5\n")
    remote = '[[tiers]]\nname = "r"\nbackend = "openai"\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "m"\n'
    with pytest.raises(ConfigError, match="only for llama tiers"):
        parse(GOOD_TIER + remote + "abstain_threshold = 0.3\n")


# --------------------------------------------------------------------------- the schema, declared once


def test_every_key_is_declared_once_with_a_one_line_doc():
    seen = set()
    for table, f in describe(Config):
        assert (table, f.name) not in seen, f"{table}.{f.name} declared twice"
        seen.add((table, f.name))
        assert f.key is not None and f.key.doc and "\n" not in f.key.doc
    assert ("tiers", "pip") in seen and ("cascade", "lambda") in seen and ("tui", "keys") in seen
    assert ("embedding", "name") not in seen  # an attribute, not a key


def _documented_defaults(text: str) -> dict[tuple[str, str], str]:
    """(table, key) → the default cell of each one-key row of the key tables under a `[table]` heading."""
    rows, table = {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            heading = re.match(r"#+ .*`\[\[?([a-z_.]+)\]\]?`", line)
            table = heading.group(1) if heading else None
        row = re.match(r"\| `([a-z_0-9]+)` \| ([^|]*) \|", line)
        if row and table:
            rows[(table, row.group(1))] = row.group(2).strip()
    return rows


def test_docs_name_every_key_and_its_default():
    """docs/configuration.md (and privacy.md for [policy]) mention every key of the schema; where a key's row
    gives a plain default, it is the schema's; every documented row is a key of the schema."""
    text = "\n".join((ROOT / "docs" / page).read_text() for page in ("configuration.md", "privacy.md"))
    rows = _documented_defaults(text)
    keys = {(table, f.name): f for table, f in describe(Config)}
    for (table, name), f in keys.items():
        assert re.search(rf"`[^`\n]*\b{name}\b[^`\n]*`", text), f"docs/configuration.md never names {table}.{name}"
        literal = re.match(r'^`?("[^"]*"|-?\d[\d.]*|true|false|\[\])`?(\s|$)', rows.get((table, name), ""))
        if literal:
            default = f.default()
            default = list(default) if isinstance(default, tuple) else default
            assert tomllib.loads(f"v = {literal.group(1)}")["v"] == default, f"{table}.{name}: docs say {literal[1]}"
    assert not set(rows) - set(keys), f"documented but not keys: {sorted(set(rows) - set(keys))}"


# the reader on a JSON body: the server's chat request

from automix_local.server import ChatBody, Message, TextPart  # noqa: E402


def read_chat(body: str) -> ChatBody:
    """The server's own request body (server.ChatBody), read as parse_request reads it."""
    return read_dataclass(ChatBody, json.loads(body), json=True, ignore_unknown=True)


def test_the_reader_reads_a_json_request_body():
    chat = read_chat(
        '{"model": "automix", "stream": true, "temperature": 0, "documents": null, "messages": ['
        '{"role": "system", "content": "ctx"}, {"role": "user", "content": [{"type": "text", "text": "Q?"}]}]}'
    )
    assert chat.stream is True and chat.documents is None and chat.model == "automix"
    assert chat.messages == (Message("system", "ctx"), Message("user", (TextPart("text", "Q?"),)))
    assert read_chat('{"messages": [{"role": "user"}], "documents": ["a.pdf"]}').documents == ("a.pdf",)


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ("[]", "", "expected an object, got a list"),
        ("{}", "messages", "messages is missing: send at least one user message"),
        ('{"messages": "hi"}', "messages", "expected a list, got the string 'hi'"),
        ('{"messages": [1]}', "messages[0]", "expected an object, got the number 1"),
        ('{"messages": [{"role": "robot"}]}', "messages[0].role", "expected one of 'system', 'developer', 'user'"),
        ('{"messages": [{"role": "user", "content": 5}]}', "messages[0].content", "a string or a list, got the"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            "messages[0].content[0].type",
            "expected one of 'text', got 'image_url'",
        ),
        ('{"messages": [], "stream": null}', "stream", "expected true or false, got null"),
        ('{"messages": [], "documents": ["a", 1]}', "documents", "expected a list of strings, found the number 1"),
    ],
)
def test_a_bad_request_body_is_one_error_naming_the_key(body: str, key: str, message: str):
    with pytest.raises(Invalid) as info:
        read_chat(body)
    assert info.value.key == key and message in info.value.message
    assert str(info.value) == (f"{key}: {info.value.message}" if key else info.value.message)
    assert isinstance(info.value, UsageError) and info.value.http_status == 400
