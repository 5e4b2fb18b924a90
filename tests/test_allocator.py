"""`zoo_core.allocator.tune_allocator`: freed large blocks stay in the process, for the next segment to reuse.

Each case runs in a fresh interpreter: malloc settings are process-wide and cannot be undone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="the tuning applies to glibc malloc only"
)

# Allocate and free a 64 MiB activation-sized tensor, as consecutive segments do, and ask glibc (mallinfo2)
# where the block lived and whether its memory stayed in the process after the free. (Page faults would tell
# the same on a quiet machine, but a VM's memory reclaim can page retained memory out behind malloc's back.)
PROBE = """
import ctypes, json, sys
import torch
from zoo_core.allocator import tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
tuned = tune_allocator() if sys.argv[1] == "tune" else False
again = tune_allocator() if sys.argv[1] == "tune" else False
block = torch.ones(16 * 2**20)  # 64 MiB, above glibc's largest mmap threshold (32 MiB)
while_alive = libc.mallinfo2()
del block
after_free = libc.mallinfo2()
print(json.dumps({"tuned": tuned, "again": again, "mmapped_while_alive": while_alive.hblkhd,
                  "free_in_heap_after": after_free.fordblks}))
"""
BLOCK = 64 * 2**20


def probe(mode: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k != "ZOO_NO_ALLOCATOR_TUNING"}
    environment.update(env)
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tuned_allocator_keeps_freed_activations_in_the_heap():
    default = probe("default")
    tuned = probe("tune")
    # glibc's default: the block is a separate mapping, handed back to the kernel on free
    assert default["mmapped_while_alive"] >= BLOCK and default["free_in_heap_after"] < BLOCK
    assert tuned["tuned"] is True and tuned["again"] is True
    assert tuned["mmapped_while_alive"] < BLOCK and tuned["free_in_heap_after"] >= BLOCK


def test_tuning_can_be_switched_off_by_environment():
    result = probe("tune", ZOO_NO_ALLOCATOR_TUNING="1")
    assert result["tuned"] is False
    assert result["mmapped_while_alive"] >= BLOCK
