"""Where a benchmark ran: CPU model, cores, memory, torch build and threads, the device used."""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import torch


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def _memory_mib() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return 0


def describe_machine(device: torch.device | str = "cpu") -> dict[str, Any]:
    """The machine a measurement ran on; ``gpu`` names the CUDA device when ``device`` is one."""
    dev = torch.device(device)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mib": _memory_mib(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": dev.type,
        "gpu": gpu,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
