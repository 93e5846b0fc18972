"""How much memory this process may still allocate, and a one-line refusal when a plan needs more.

:func:`available_memory_bytes` is the smallest of what the machine and the process limits allow:

* ``MemAvailable`` of ``/proc/meminfo`` (4 GiB when it cannot be read and nothing else is known);
* the cgroup's memory limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``) less its usage, the
  reclaimable inactive file cache added back — a container's limit, which ``/proc/meminfo`` ignores;
* ``RLIMIT_AS`` less the process's current address space (``VmSize``) and ``RLIMIT_DATA`` less its
  data segment (``VmData``), where set (``ulimit -v`` / ``ulimit -d``).

Used by the frame store (in memory or memory-mapped) and by the model-size checks
(:func:`nervkit.models.memory.check_model_memory`, the ``.nerv`` reader). :func:`device_free_memory`
says how much a CUDA device has free (whether the training frames can live there).
"""

from __future__ import annotations

try:
    import resource
except ImportError:  # pragma: no cover - not on POSIX
    resource = None  # type: ignore[assignment]

from .errors import NervkitError

#: what :func:`available_memory_bytes` assumes when the machine says nothing (no /proc/meminfo)
FALLBACK_BYTES = 4 << 30
#: limits at or above this are "unlimited" (cgroup v1 writes 2^63 rounded down to a page)
_UNLIMITED = 1 << 60


def available_memory_bytes() -> int:
    """Bytes this process can still allocate: the smallest of MemAvailable, the cgroup's headroom and
    the RLIMIT_AS / RLIMIT_DATA headroom (see the module docstring); never negative."""
    known = [v for v in (_meminfo_available(), _cgroup_headroom(), *_rlimit_headroom()) if v is not None]
    return max(0, min(known)) if known else FALLBACK_BYTES


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KB'``, ``4e9`` → ``'4.0 GB'`` (decimal units, one decimal)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def check_memory(needed: int, what: str, *, error: type[NervkitError] = NervkitError,
                 limit: int | None = None) -> None:
    """Raise ``error`` (one line) when ``needed`` bytes exceed ``limit`` (default: what
    :func:`available_memory_bytes` reports now). ``what`` completes "… needs about N": e.g.
    ``"decoding the file's 12 tensors"``."""
    available = available_memory_bytes() if limit is None else int(limit)
    if needed > available:
        raise error(f"{what} needs about {format_bytes(needed)} of memory, but only "
                    f"{format_bytes(available)} is available")


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _stat_value(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_headroom() -> int | None:
    """The cgroup's limit less its usage (inactive file cache counted as free), or None."""
    for limit_file, usage_file, stat_file, cache_key in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory.stat",
         "inactive_file"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes",
         "/sys/fs/cgroup/memory/memory.stat", "total_inactive_file"),
    ):
        limit = _read_int(limit_file)
        if limit is None or limit >= _UNLIMITED:
            continue
        usage = _read_int(usage_file) or 0
        return limit - usage + _stat_value(stat_file, cache_key)
    return None


def _vm_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _headroom(limit_name: str, vm_key: str) -> int | None:
    """``limit_name``'s soft limit less the process's current ``vm_key`` (/proc/self/status), or None
    when the limit is not set."""
    rlimit = getattr(resource, limit_name, None) if resource is not None else None
    if rlimit is None:
        return None
    try:
        soft, _ = resource.getrlimit(rlimit)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft < 0 or soft >= _UNLIMITED:
        return None
    return max(0, soft - (_vm_bytes(vm_key) or 0))


def address_space_headroom() -> int | None:
    """Bytes of address space this process may still map under ``RLIMIT_AS`` (``ulimit -v``): what a
    memory map (the frame cache) can still take. None when there is no such limit."""
    return _headroom("RLIMIT_AS", "VmSize")


def _rlimit_headroom() -> list[int | None]:
    return [address_space_headroom(), _headroom("RLIMIT_DATA", "VmData")]


def device_free_memory(device: object) -> int | None:
    """Free bytes on accelerator ``device`` (a ``torch.device``; ``torch.cuda.mem_get_info``), or None for
    the CPU and for devices that do not say (the frame store keeps its frames on the host then)."""
    import torch

    device = torch.device(device)  # type: ignore[arg-type]
    if device.type != "cuda":
        return None
    try:
        free, _ = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):
        return None
    return int(free)


__all__ = ["FALLBACK_BYTES", "address_space_headroom", "available_memory_bytes", "check_memory", "device_free_memory",
           "format_bytes"]
