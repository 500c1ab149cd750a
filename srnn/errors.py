"""User errors, told in one line.

Anything wrong with what a user gave (a setting, a file, a folder, a device) raises a
:class:`UserError` whose message says what is wrong, which file or value, and what to do.
The command lines run through :func:`command_line`, which prints such an error as one
``error:`` line and exits with status 2; a traceback is kept for bugs, and ``--debug``
shows it for user errors too. Ctrl-C is one line and status 130 wherever it lands: in the
command, pressed again while the command stops, or while a command is still importing
(``srnn/__init__.py`` sees to the last two in the processes that run an srnn command).
"""
from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from collections.abc import Callable

from . import COMMAND_PROCESS, INTERRUPTED


class UserError(Exception):
    """Bad input or a bad environment, not a bug: the message is all the user needs."""


EXIT_USER, EXIT_INTERRUPTED = 2, 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a wrong argument raised as a UserError (one line, like every other)."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def command_line(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command line's ``main(argv, **options)``: user errors and failed file operations become
    one line on stderr and exit status 2; Ctrl-C says how to go on. ``--debug`` anywhere in
    the arguments lets the traceback through."""
    def run(argv: list[str] | None = None, **options) -> int:
        argv = list(sys.argv[1:] if argv is None else argv)
        debug = "--debug" in argv
        if debug:
            argv.remove("--debug")
        try:
            return main(argv, **options) or 0
        except BrokenPipeError:            # the reader stopped early (e.g. `| head`): nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise SystemExit(EXIT_USER) from None
        except KeyboardInterrupt:
            if debug:
                raise
            if COMMAND_PROCESS:              # a second Ctrl-C must not cut the message short
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            _clear_progress_line()
            print(INTERRUPTED, file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None
        except (UserError, OSError) as err:
            if debug or (isinstance(err, OSError) and not _environmental(err)):
                raise
            _clear_progress_line()
            print(f"error: {describe(err)}", file=sys.stderr)
            raise SystemExit(EXIT_USER) from None

    run.__doc__, run.__wrapped__ = main.__doc__, main
    return run


def _clear_progress_line() -> None:
    """Start the message on a line of its own where a progress bar is being drawn."""
    from tqdm import tqdm

    if getattr(tqdm, "_instances", None):
        print("\r\033[K" if sys.stderr.isatty() else "\n", end="", file=sys.stderr)


def _environmental(err: OSError) -> bool:
    """A failure of the machine or of a path the user gave (not of the code)."""
    return err.errno in (errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.EISDIR,
                         errno.ENOTDIR, errno.EDQUOT) or isinstance(err, UserError)


def describe(err: BaseException) -> str:
    """One line for ``err``: its message, or for an OSError what failed on which file."""
    if isinstance(err, OSError) and not isinstance(err, UserError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        hint = {errno.ENOSPC: "free some space and run the command again (it resumes)",
                errno.EACCES: "choose a folder you can write to, or fix its permissions",
                errno.EROFS: "choose a folder you can write to",
                errno.ENOENT: "check the path"}.get(err.errno, "check the path and the disk")
        return f"{err.strerror}{where}; {hint}"
    return " ".join(str(err).split("\n")) or type(err).__name__
