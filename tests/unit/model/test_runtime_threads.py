"""The thread pools of both runtimes follow the CPUs the process may run on (its affinity: a container's CPU set),
not the host's count: a real process pinned to one CPU of several, loading each runtime as the server does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT

# Pinned before anything is imported. A pinned process alone would already start torch with one thread;
# OMP_NUM_THREADS=3 (below) lifts torch's own default above one, so only model.runtime's setting brings it to 1.
CHILD = """
import json, os, sys
from pathlib import Path
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
import torch
from model.runtime import load_predictor
load_predictor(Path(sys.argv[1]), "torch")
torch_threads = torch.get_num_threads()
onnx = load_predictor(Path(sys.argv[1]), "onnx-int8")
print(json.dumps({"torch": torch_threads, "onnx": onnx.session.get_session_options().intra_op_num_threads}))
"""


@pytest.mark.skipif(len(getattr(os, "sched_getaffinity", lambda pid: ())(0)) < 2,
                    reason="needs a process that may run on two CPUs or more, on a system with CPU affinity")
def test_a_process_pinned_to_one_cpu_sizes_both_runtimes_to_one_thread(tiny_onnx_model_dir: Path) -> None:
    run = subprocess.run([sys.executable, "-c", CHILD, str(tiny_onnx_model_dir)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "3"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1]) == {"torch": 1, "onnx": 1}
