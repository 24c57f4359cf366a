"""Atomic output: files and result directories appear whole or not at all."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reconsolidate.exceptions import InputError

__all__ = [
    "MARKER",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "to_jsonable",
]


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays to Python, NaN/inf to ``None``.

    JSON has no NaN; an undefined endpoint (nothing observed) is written as ``null``.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if getattr(obj, "ndim", 0) and hasattr(obj, "tolist"):  # a numpy array
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# The process's umask, read once at import (reading it means setting it; doing that later could
# race with threads that create files): temporary files and directories are created private
# (0600/0700) and get the usual permissions before they appear.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

#: Hidden file that marks a directory written by :func:`atomic_dir`, with the kind of output.
MARKER = ".reconsolidate-output"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically (through :func:`to_jsonable`: strict JSON,
    NaN and infinities as ``null``)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def _replaceable(final: Path, kind: str, legacy_files: frozenset[str]) -> None:
    """Raise unless ``final`` may be replaced by a new ``kind`` directory: it does not exist, is
    an empty directory, or is a ``kind`` directory that :func:`atomic_dir` wrote (or, unmarked,
    holds nothing but ``legacy_files``: one written before directories were marked)."""
    if not final.exists() and not final.is_symlink():
        return
    if not final.is_dir() or final.is_symlink():
        raise InputError(f"output directory {str(final)!r}: exists and is not a directory")
    if not any(final.iterdir()):
        return
    marker = final / MARKER
    written = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    if written is None and legacy_files and {p.name for p in final.iterdir()} <= legacy_files:
        return
    if written != kind:
        what = "" if written is None else f" (it holds a {written})"
        raise InputError(
            f"output directory {str(final)!r}: exists and is not an earlier {kind} "
            f"written by reconsolidate{what}; it is never replaced: choose another "
            "output directory or remove it first"
        )


@contextlib.contextmanager
def atomic_dir(
    path: str | Path, kind: str = "output", legacy_files: Iterable[str] = ()
) -> Iterator[Path]:
    """Build a directory in a hidden sibling and move it into place only on success.

    An existing directory at ``path`` is replaced only if it is empty or is an earlier ``kind``
    directory written by this function (marked by a hidden :data:`MARKER` file naming its
    kind; or, unmarked, holds only ``legacy_files``: an output of an earlier version), and only
    once the new one is complete; anything else there (a user's files, a trial
    run when writing an analysis) raises :class:`InputError` before any work starts. On any
    error the partial directory is removed and ``path`` is left as it was.
    """
    final = Path(path)
    legacy = frozenset(legacy_files)
    _replaceable(final, kind, legacy)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)
        yield tmp
        (tmp / MARKER).write_text(kind + "\n", encoding="utf-8")
        # checked again: something may have appeared there while the work ran
        _replaceable(final, kind, legacy)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
