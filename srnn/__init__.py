"""SRNN (Fraccaro et al., NIPS 2016) in PyTorch, with the book that reruns the paper.

The subpackages are the parts a reader of the paper looks for: :mod:`srnn.models` (SRNN and
its baselines), :mod:`srnn.datasets` (music and speech as batches), :mod:`srnn.training`
(training, evaluation, checkpoints), :mod:`srnn.records` (the committed records and the
paper's numbers), :mod:`srnn.book` (what the book's pages call) and :mod:`srnn.testing`
(the independent references the tests check the models against). The modules at the top
are the commands (``python -m srnn.experiment``, ``srnn.results``, ``srnn.runner``,
``srnn.speech``, ``srnn.pretrained``, the ``srnn`` command in ``cli``) and the plumbing
everything shares (``config``, ``errors``, ``files``). Imports run only downward, in that
order: plumbing, then models, datasets and testing, training, records, the experiment, the
book, the other commands.
"""

import os as _os
import sys as _sys

INTERRUPTED = "interrupted: run the same command again to resume from the last checkpoint"


def _is_command(argv: list[str]) -> bool:
    """Whether ``argv`` (``sys.orig_argv``) started an srnn command: ``python -m srnn.<module>``
    or the ``srnn`` script."""
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    script = _os.path.basename(argv[1]) if len(argv) > 1 and not argv[1].startswith("-") else ""
    return module == "srnn" or module.startswith("srnn.") or script == "srnn"


def _interrupted(kind, value, traceback, earlier=_sys.excepthook):
    """A KeyboardInterrupt that reaches the top of an srnn command (Ctrl-C while it still imports
    torch, or pressed again while it stops) ends in one line and status 130, not a traceback;
    ``--debug`` keeps the traceback. Everything else goes to the hook there was before."""
    if not issubclass(kind, KeyboardInterrupt) or "--debug" in _sys.argv:
        return earlier(kind, value, traceback)
    import atexit
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(INTERRUPTED, file=_sys.stderr, flush=True)
    atexit._run_exitfuncs()
    _os._exit(130)                     # the status a shell gives a command that Ctrl-C stopped


COMMAND_PROCESS = _is_command(getattr(_sys, "orig_argv", []))   # not in a notebook, a REPL or the tests
if COMMAND_PROCESS:
    _sys.excepthook = _interrupted
