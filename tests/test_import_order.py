"""llama.cpp's libraries load before numpy at every entry point (issue 24 §1): on a CUDA build, numpy first
made the first model load segfault. Each check runs in a fresh interpreter, as a user's command does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ORDER = (
    "import json, sys\n"
    "{imports}\n"
    "mods = list(sys.modules)\n"
    "print(json.dumps([mods.index(m) if m in mods else None for m in ('llama_cpp.llama_cpp', 'numpy')]))\n"
)


@pytest.mark.parametrize(
    "imports",
    [
        "import automix_local",
        "from automix_local.cli import main",  # the console script `automix-local`
        "import automix_local.server",  # `serve`
        "import automix_local.tui.app",  # the app
        "import automix_local.cascade",
    ],
)
def test_llama_cpp_loads_before_numpy(imports: str):
    out = subprocess.run(
        [sys.executable, "-c", ORDER.format(imports=imports)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    llama, numpy = json.loads(out.stdout.strip().splitlines()[-1])
    assert llama is not None and numpy is not None, (llama, numpy)
    assert llama < numpy, f"{imports!r}: numpy was imported before llama.cpp's library"


def test_numpy_blas_runs_on_one_thread_unless_the_user_says_otherwise():
    """OpenBLAS's spinning workers slowed the next llama.cpp decode on a small CPU (issue 24 §4)."""
    probe = "import automix_local, os; print(os.environ['OPENBLAS_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["1", "PASSIVE"], out.stderr
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["2", "PASSIVE"], out.stderr
