"""The allocator settings of the workflow's jobs: the user's own settings still win, and a
forward pass gives the same logits to the bit with them as with glibc's defaults."""

import os
import subprocess
import sys

import pytest
import torch

from pan.workflow.allocator import JOB_TUNABLES, job_tunables, set_job_tunables

FORWARD = """
import sys, torch
from torch import nn
torch.manual_seed(0)
net = nn.Sequential(
    nn.Conv2d(3, 48, 3, padding=1), nn.BatchNorm2d(48), nn.ReLU6(),
    nn.Conv2d(48, 48, 3, padding=1, groups=48), nn.ReLU6(),
    nn.Conv2d(48, 96, 3, stride=2, padding=1), nn.ReLU6(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10),
).eval()
inputs = torch.randn(16, 3, 96, 96)
with torch.inference_mode():
    for _ in range(2):  # the second pass reuses what the first freed
        logits = torch.cat([net(inputs[i : i + 4]) for i in range(0, 16, 4)])
torch.save(logits, sys.argv[1])
"""


def test_job_settings_come_first_so_the_users_win():
    assert job_tunables(None) == job_tunables("") == JOB_TUNABLES
    mine = "glibc.malloc.trim_threshold=0"
    assert job_tunables(mine) == f"{JOB_TUNABLES}:{mine}"


def test_job_settings_are_added_once():
    once = job_tunables("glibc.malloc.arena_max=2")
    assert job_tunables(once) == once
    assert job_tunables(job_tunables()) == JOB_TUNABLES


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GLIBC_TUNABLES is read by glibc")
def test_a_forward_pass_is_bit_identical_under_the_job_settings(tmp_path):
    logits = []
    for name, tunables in (("defaults", None), ("job", JOB_TUNABLES)):
        env = {key: value for key, value in os.environ.items() if key != "GLIBC_TUNABLES"}
        env.update({"GLIBC_TUNABLES": tunables} if tunables else {})
        subprocess.run([sys.executable, "-c", FORWARD, str(tmp_path / name)], env=env, check=True)
        logits.append(torch.load(tmp_path / name))
    assert logits[0].shape == (16, 10)
    assert torch.equal(logits[0], logits[1])


def test_set_job_tunables_keeps_the_users_own():
    environ = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    set_job_tunables(environ)
    set_job_tunables(environ)
    assert environ["GLIBC_TUNABLES"] == f"{JOB_TUNABLES}:glibc.malloc.arena_max=2"
    empty: dict[str, str] = {}
    set_job_tunables(empty)
    assert empty == {"GLIBC_TUNABLES": JOB_TUNABLES}


def test_restart_with_job_tunables_starts_the_process_again_under_them():
    code = (
        "import os\nfrom pan.workflow.allocator import restart_with_job_tunables\n"
        "restart_with_job_tunables()\nprint(os.environ['GLIBC_TUNABLES'])"
    )
    env = {key: value for key, value in os.environ.items() if key != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [JOB_TUNABLES]  # printed once: by the restarted process
