"""Atomic output: files and result directories appear whole or not at all."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from reconsolidate.exceptions import InputError

__all__ = [
    "MARKER",
    "OWNER",
    "STALE_PARTIAL_HOURS",
    "atomic_dir",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
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


#: Hidden file inside a partial directory of :func:`atomic_dir` naming the process building it
#: (JSON: ``pid``, ``host``, ``started``), so that a later run can tell a partial directory left
#: by a killed run from one still being written. Removed before the directory is moved into place.
OWNER = ".reconsolidate-partial-owner"

#: Age, hours, after which a partial directory whose owner cannot be checked (no owner file: an
#: earlier version; or written on another host) counts as abandoned, measured from the last change
#: of the directory or of any file directly in it (a live run keeps appending to its tables).
#: Design choice: far longer than any gap between two writes of a running trial.
STALE_PARTIAL_HOURS = 24.0


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    Missing parent directories are created (the command line refuses an output file in a
    missing directory before any work: :func:`check_output_file`). An :class:`OSError` names
    ``path``, not the hidden temporary file.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:  # name the file asked for, not the hidden temporary one
        raise type(exc)(exc.errno, exc.strerror, str(p)) from None
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


def check_output_file(path: str | Path, option: str) -> None:
    """Refuse an output file whose directory is missing, before any work is done.

    A typo in a directory must not silently create a tree of directories (``--plot
    /nonexistent_root_dir/a/b.png``): the directory has to exist, as for ``cp`` or ``tee``.

    Parameters
    ----------
    path
        The output file given on the command line.
    option
        The option that named it (``--plot``), for the message.

    Raises
    ------
    InputError
        ``--plot '/x/y/z.png': directory /x/y does not exist`` (or is not a directory, or the
        path itself is a directory).
    """
    p = Path(path)
    parent = p.parent
    if not parent.exists():
        raise InputError(f"{option} {str(path)!r}: directory {parent} does not exist")
    if not parent.is_dir():
        raise InputError(f"{option} {str(path)!r}: {parent} is not a directory")
    if p.is_dir():
        raise InputError(f"{option} {str(path)!r}: is a directory; give a file name")


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` (clock ticks since boot, Linux ``/proc``), None if unknown.

    With the pid it names a process uniquely: a pid reused by a later process (common in
    containers, where every run may get the same small pid) has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # field 22 (starttime); the command name (field 2) is in parentheses and may hold spaces
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _owner_record() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": _process_start(os.getpid())}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    except (OSError, OverflowError, ValueError):  # not a valid pid: nobody owns the directory
        return False
    return True


def _last_change(d: Path) -> float:
    """Newest modification time (s since the epoch) of ``d`` and the entries directly in it."""
    newest = d.lstat().st_mtime
    with contextlib.suppress(OSError), os.scandir(d) as it:
        for e in it:
            with contextlib.suppress(OSError):
                newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
    return newest


def _abandoned(d: Path) -> bool:
    """Whether the partial directory ``d`` was left by a process that no longer runs."""
    try:
        owner = json.loads((d / OWNER).read_text(encoding="utf-8"))
        pid, host, started = int(owner["pid"]), owner.get("host"), owner.get("started")
    except (OSError, ValueError, KeyError, TypeError):
        owner = None
    if owner is not None and host == socket.gethostname():
        if not _pid_alive(pid):
            return True
        now = _process_start(pid)
        # the pid runs, but a later process may have got it: compare start times when known
        return started is not None and now is not None and now != started
    # no owner file (an earlier version, or killed before writing it) or another host's process,
    # whose liveness cannot be checked from here: abandoned only once long unchanged
    try:
        return time.time() - _last_change(d) > STALE_PARTIAL_HOURS * 3600.0
    except OSError:
        return False


def _remove_tree(d: Path) -> None:
    """Remove ``d``, finishing the removal when a signal's exception interrupts it (a second
    SIGTERM or Ctrl-C during the cleanup must not leave half a partial directory behind)."""
    for _ in range(3):
        try:
            shutil.rmtree(d, ignore_errors=True)
            return
        except BaseException:  # the caller re-raises the original error
            continue


def _remove_stale_partials(final: Path) -> None:
    """Remove the partial directories of ``final`` that killed runs left (SIGKILL, power loss).

    Only hidden siblings named as :func:`atomic_dir` names them (``.NAME.XXXXXXXX.partial``, 8
    characters of :func:`tempfile.mkdtemp`, and ``.NAME.XXXXXXXX.old``, an earlier directory a
    killed run had moved aside) count, and only abandoned ones (:func:`_abandoned`): those of a
    live process, also another concurrent run for the same path, are kept.
    """
    pattern = re.compile(re.escape(f".{final.name}.") + r"[a-z0-9_]{8}\.(partial|old)")
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return
    for e in entries:
        m = pattern.fullmatch(e.name)
        if not m:
            continue
        with contextlib.suppress(OSError):
            if not e.is_dir(follow_symlinks=False):
                continue
            if m.group(1) == "old":
                # an earlier directory moved aside: garbage once a complete one is in place
                # (while a run moves directories, ``final`` is missing or unmarked)
                if (final / MARKER).is_file():
                    shutil.rmtree(e.path, ignore_errors=True)
            elif _abandoned(Path(e.path)):
                shutil.rmtree(e.path, ignore_errors=True)


def check_output_dir(path: str | Path, option: str, kind: str = "output") -> None:
    """Refuse, before any work, an output directory that :func:`atomic_dir` would refuse after
    it (a directory holding the user's own files or another kind of output), or one in a place
    this process cannot write to.

    Raises
    ------
    InputError
        Naming ``option`` and the path.
    """
    final = Path(path)
    _replaceable(final, kind, frozenset())
    anc = final.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise InputError(f"{option} {str(final)!r}: cannot create it ({str(anc)!r} is not a "
                         "directory this process can write to)")


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
    error (also ``SystemExit`` or ``KeyboardInterrupt``, e.g. from a signal handler) the partial
    directory is removed and ``path`` is left as it was.

    The partial directory is a hidden sibling ``.NAME.XXXXXXXX.partial`` holding an :data:`OWNER`
    file with this process's id. A process killed outright (SIGKILL) cannot remove it: the next
    ``atomic_dir`` for the same path removes those of dead processes (and those without an owner
    file unchanged for :data:`STALE_PARTIAL_HOURS`), never those of a running process.
    """
    final = Path(path)
    legacy = frozenset(legacy_files)
    _replaceable(final, kind, legacy)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(final)
    # Everything from creating the partial directory to moving it into place sits in one try:
    # a signal's exception (SIGTERM, Ctrl-C) can arrive between any two statements, also after
    # the work, while the directory is being moved into place, and must leave nothing behind
    # (a SIGTERM near the end of a run once left a partial directory without owner file).
    tmp: Path | None = None
    old: Path | None = None
    placed = False
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial",
                                        dir=final.parent))
        except OSError as exc:  # name the directory asked for, not the hidden partial one
            raise type(exc)(exc.errno, exc.strerror, str(final)) from None
        os.chmod(tmp, 0o777 & ~_UMASK)
        (tmp / OWNER).write_text(json.dumps(_owner_record()) + "\n", encoding="utf-8")
        yield tmp
        (tmp / MARKER).write_text(kind + "\n", encoding="utf-8")
        # checked again: something may have appeared there while the work ran
        _replaceable(final, kind, legacy)
        (tmp / OWNER).unlink()  # the finished directory carries only its MARKER
        if final.exists():
            # a fresh empty directory to move the earlier one onto: a fixed name (by pid) could
            # be left over from a killed run in a container that reuses pids, and the move
            # would fail after all the work
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old",
                                        dir=final.parent))
            os.replace(final, old)
        os.replace(tmp, final)
        placed = True
    except BaseException:
        # interrupted right after the new directory was moved into place: it is complete
        placed = placed or (tmp is not None and not tmp.exists() and final.exists()
                            and (final / MARKER).exists())
        if not placed:
            if old is not None and old.exists() and not final.exists():
                os.replace(old, final)  # put the earlier directory back
                old = None
            if tmp is not None:
                _remove_tree(tmp)
        raise
    finally:
        if old is not None and (placed or final.exists()):
            shutil.rmtree(old, ignore_errors=True)
