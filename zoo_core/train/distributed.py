"""torch.distributed for training: one process per device, launched by torchrun (or a single plain process).

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; with WORLD_SIZE > 1 the process group uses NCCL on GPUs and
gloo on CPUs. Only rank 0 writes files and logs. The network is wrapped in DistributedDataParallel, with
SyncBatchNorm on GPUs as the authors trained; PyTorch's SyncBatchNorm runs on accelerators only, so on CPU
each rank normalises its own batch and rank 0's BatchNorm statistics are broadcast before anything is
validated or saved (`sync_buffers`), so that every rank always holds the same weights there.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn



@dataclass(frozen=True)
class Context:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def choose_device(requested: str, local_rank: int) -> torch.device:
    """``--device`` as every command reads it (`zoo_core.devices`); auto and cuda give each rank its own GPU."""
    from ..devices import resolve_device

    return resolve_device(requested, local_rank)


def setup(requested_device: str, backend: Optional[str] = None, timeout: Optional[datetime.timedelta] = None) -> Context:
    """Join the process group torchrun describes (a no-op for a single process). The backend is NCCL on GPUs
    and gloo on CPUs unless ``backend`` says (gloo for a group that only exchanges Python objects)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = choose_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend, **({"timeout": timeout} if timeout is not None else {}))
    return Context(rank, local_rank, world_size, device)


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher with its environment) started this process among several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def wait_for_all(context: Context) -> None:
    """Every rank reaches this point before any goes on (e.g. before the group is torn down while rank 0
    is still writing: gloo aborts a process whose peer vanishes mid-operation)."""
    if context.distributed:
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(network: nn.Module, context: Context) -> nn.Module:
    """The module the training step calls: the network itself, or its DDP wrapper (SyncBatchNorm on GPUs)."""
    if not context.distributed:
        return network
    if context.device.type == "cuda":
        network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
        return nn.parallel.DistributedDataParallel(network, device_ids=[context.device.index])
    return nn.parallel.DistributedDataParallel(network)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def sync_buffers(network: nn.Module, context: Context) -> None:
    """Rank 0's buffers (BatchNorm statistics) everywhere."""
    if context.distributed:
        for buffer in network.buffers():
            dist.broadcast(buffer, 0)


def main_first(work: Callable[[], None], context: Context) -> None:
    """Rank 0 does ``work`` first (e.g. filling a shared cache), then the other ranks."""
    if context.distributed and not context.is_main:
        dist.barrier()
        work()
        return
    work()
    if context.distributed:
        dist.barrier()


def mean_over_ranks(value: Tensor, context: Context) -> Tensor:
    """The mean of a scalar over all ranks (NaN anywhere gives NaN everywhere)."""
    if not context.distributed:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / context.world_size


def gather(obj: Any, context: Context) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not context.distributed:
        return [obj]
    gathered: list[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def from_main(obj: Any, context: Context) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not context.distributed:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def weights_digest(state: Mapping[str, Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of a state_dict: equal digests mean identical weights.
    The SyncBatchNorm conversion keeps every name, so a digest does not depend on how the model was wrapped."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu")
        digest.update(f"{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
