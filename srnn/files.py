"""Files the project writes for a user, written whole or not at all, and read back with
their name in every error.

Every record, history, manifest, sample and executed notebook goes through
:func:`write_atomic`: the content is written to a temporary file beside the target,
flushed to disk, and renamed over it, so a kill or a full disk leaves the old file or
the new one, never half of one. A command's output folder goes through
:func:`folder_replaced_whole` the same way, so that it never mixes with an earlier command's.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError


class FileFormatError(UserError, ValueError):
    """A file the project reads is damaged or not what it should be."""


class BusyError(UserError, RuntimeError):
    """Another process holds the lock of what this one was asked to do."""


@contextmanager
def locked(lock: str | Path, what: str, wait: bool) -> Iterator[None]:
    """Hold ``lock`` (an exclusive fcntl.flock, released when the file closes, also when the
    process is killed) while the block runs. Held by another process: with ``wait``, say so
    in one line and wait for it; without, refuse with a BusyError naming ``what``."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise BusyError(f"another process is busy with {what} (it holds {lock}); wait for it to "
                                f"finish, or stop it first") from None
            print(f"waiting for another process busy with {what} (it holds {lock})", file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if named(err, path) is not err:
            raise named(err, path) from None
        raise
    return path


def named(err: BaseException, path: str | Path) -> BaseException:
    """``err`` with ``path`` as its file where it names none (a write to an open file, such as
    one that finds the disk full, fails without a name), so that its message says which file."""
    if isinstance(err, OSError) and not isinstance(err, UserError) and err.filename is None and err.errno:
        return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))
    return err


@contextmanager
def folder_replaced_whole(folder: str | Path) -> Iterator[Path]:
    """Yield a fresh, empty folder beside ``folder`` to write into; when the block ends, it
    takes ``folder``'s place whole (an earlier ``folder`` is removed, nothing of it stays
    mixed in), and when the block fails, it is removed and ``folder`` stays as it was."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".partial"))
    try:
        yield fresh
        os.chmod(fresh, 0o755)
        old = fresh.with_suffix(".old")
        if folder.exists():
            os.replace(folder, old)
        os.replace(fresh, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


def write_json(path: str | Path, value, **dump) -> Path:
    """``value`` as JSON (strict: NaN and infinities are refused, they are not JSON)."""
    return write_atomic(path, json.dumps(value, allow_nan=False, **dump) + "\n")


def read_json(path: str | Path, fix: str = "") -> object:
    """The JSON in ``path``; a damaged file raises FileFormatError naming it (and ``fix``)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(f"{path} is not valid JSON ({err}); it is damaged or was cut short"
                              + (f": {fix}" if fix else "")) from None


def read_jsonl(path: str | Path, fix: str = "") -> list:
    """One JSON value per line of ``path``, with the file and line named when one is damaged."""
    path = Path(path)
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path} line {n} is not valid JSON ({err}); the file is damaged"
                                  + (f": {fix}" if fix else "")) from None
    return rows
