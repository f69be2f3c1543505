"""Putting a finished report in place at once: a complete new folder replaces the previous one, or nothing does.

The report is written into a temporary folder beside the target, which then replaces the previous
report of the same range in one ``renameat2(RENAME_EXCHANGE)`` (two renames where the kernel lacks it).
``<out>/latest`` points at the newest report.
"""

from __future__ import annotations

import ctypes
import os
import shutil
from pathlib import Path


def _exchange_directories(first: Path, second: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def replace_folder(tmp: Path, target: Path) -> bool:
    """Put ``tmp`` at ``target``; True if an earlier report was replaced."""
    if not target.exists():
        os.rename(tmp, target)
        return False
    if _exchange_directories(tmp, target):
        shutil.rmtree(tmp)  # now holds the previous report
        return True
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old)
    return True


def point_latest(out: Path, name: str) -> None:
    """Make ``out/latest`` a symlink to the report folder ``name`` (left alone if it is a real folder)."""
    link, tmp = out / "latest", out / f".latest.tmp-{os.getpid()}"
    if link.exists() and not link.is_symlink():
        return  # a real folder named `latest`: leave it alone
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(name)
    os.replace(tmp, link)
