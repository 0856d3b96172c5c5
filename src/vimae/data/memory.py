"""How much memory a read may take: the kernel's MemAvailable, and one sentence when a read would
need more (an allocation that overcommit lets through would end in the OOM killer instead)."""

from vimae.errors import VimaeError


def require_memory(need: int, what: str, advice: str) -> None:
    """One sentence, with `advice`, when `what` needs more bytes than the kernel says are
    available: an allocation that overcommit lets through would end in the OOM killer."""
    free = available_memory()
    if free is not None and need > free:
        raise VimaeError(
            f"{what} need {need / 2**30:.1f} GiB in memory, more than the "
            f"{free / 2**30:.1f} GiB available; {advice}"
        )


def available_memory() -> int | None:
    """Bytes of memory the kernel says are available (Linux's MemAvailable), None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
