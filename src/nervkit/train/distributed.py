"""Multi-process training with ``torch.distributed``, launched by ``torchrun``.

``torchrun --nproc_per_node=2 -m nervkit fit …`` sets RANK/WORLD_SIZE/LOCAL_RANK; nervkit then
joins the process group (gloo on CPU, nccl on CUDA), wraps the model in DistributedDataParallel and
gives each process every world-th batch of the shared per-epoch frame order. Rank 0 evaluates,
logs and writes checkpoints. Without those variables everything runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def average_gradients(self, parameters) -> None:
        """Average the gradients of ``parameters`` over the processes (those DDP does not own, e.g. the rate
        model's learned steps), so that every process takes the same step."""
        if self.enabled:
            for p in parameters:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world_size

    @classmethod
    def from_env(cls) -> DistContext:
        """This process's place as torchrun describes it (RANK, WORLD_SIZE, LOCAL_RANK), without joining
        the process group: the one reader of those variables (rank 0 writes the run folder)."""
        return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                   int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> DistContext:
    """Join the process group when launched by torchrun; a no-op otherwise."""
    env = DistContext.from_env()
    if env.world_size <= 1:
        return DistContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), env.local_rank)


def shutdown_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA (this process's local GPU) when available, else CPU."""
    from ..errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available")
    return device
