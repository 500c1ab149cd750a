"""What one cluster task runs: a page of the book, a run of the grid, or one rank of a run
over several nodes, each a callable that submitit pickles and a job calls.

Every task is a ``submitit.helpers.Checkpointable``: when SLURM pre-empts a job, or its time
limit is near, it sends the job USR2 (submitit asks for it ``signal_delay_s`` before the
end), submitit calls the task's ``checkpoint()`` and requeues the job with what it returns:
here, the task itself, unchanged. Nothing needs saving at that moment, because the state of a
run is already on disk: training writes ``runs/<id>/last.pt`` at the end of every epoch (and
every 500 updates), and the same command started again resumes there, exactly (see
:mod:`srnn.train`). A requeued page reruns its notebook, whose training cell resumes the same
way; a requeued rank joins the same process group again, and every rank resumes from the
checkpoint that rank 0 wrote.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

from submitit.helpers import Checkpointable

from .errors import EXIT_INTERRUPTED, EXIT_USER, UserError


class CommandError(UserError, ValueError):
    """A line of a commands file that is not a run of srnn.experiment."""


class TaskFailed(RuntimeError):
    """A command that stopped with an error; its message is in the task's log."""


def experiment_arguments(line: str, where: str = "the command") -> list[str]:
    """The arguments of ``srnn.experiment`` in a command line as ``experiments/music.sh
    --list`` prints them (``python -m srnn.experiment ARGS``, any interpreter) or as the
    ``srnn`` command takes them (``srnn train ARGS``)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as err:
        raise CommandError(f"{where}: {err} in {line.strip()!r}") from None
    for i in range(len(words) - 1):
        if words[i:i + 2] == ["-m", "srnn.experiment"]:
            return words[i + 2:]
    if len(words) >= 2 and Path(words[0]).name == "srnn" and words[1] == "train":
        return words[2:]
    raise CommandError(f"{where} is not a run: {line.strip()!r}; write it as the README does, "
                       f"'python -m srnn.experiment music --dataset jsb ...' (or 'srnn train ...')")


def read_commands(text: str, source: str) -> list[list[str]]:
    """One run per line of ``text`` (blank lines and ``#`` comments skipped), as argument lists."""
    runs = [experiment_arguments(line, f"{source} line {n}")
            for n, line in enumerate(text.splitlines(), start=1) if line.split("#", 1)[0].strip()]
    if not runs:
        raise CommandError(f"{source} holds no command: give one 'python -m srnn.experiment ...' per line")
    return runs


def run_experiment_command(argv: list[str]) -> None:
    """``python -m srnn.experiment ARGV`` in this process; a user error or an interrupt,
    which the command line reports in one line of the log and turns into an exit status,
    becomes an exception that fails the task. Any other exit (submitit's own, when it has
    requeued the job) goes through untouched."""
    from . import experiment

    try:
        code = experiment.main(argv)
    except SystemExit as stop:
        if stop.code not in (EXIT_USER, EXIT_INTERRUPTED):
            raise
        code = stop.code
    if code:
        raise TaskFailed(f"python -m srnn.experiment {shlex.join(argv)} stopped with exit status {code}; "
                         "its error is the line above in this log")


class RunTask(Checkpointable):
    """One run of the grid: ``python -m srnn.experiment ARGV`` from the folder it was
    submitted from (where its relative ``runs/`` and ``results/`` lie)."""

    def __init__(self, argv: list[str], cwd: str):
        self.argv, self.cwd = list(argv), cwd

    def __call__(self) -> str:
        os.chdir(self.cwd)
        run_experiment_command(self.argv)
        return shlex.join(self.argv)

    def __repr__(self) -> str:
        return f"run {shlex.join(self.argv)}"


def join_world() -> dict[str, str]:
    """Set the variables that torchrun would set (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) from the job's own description of its tasks:
    SLURM's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, the first host of
    SLURM_JOB_NODELIST) or, on this machine, submitit's local executor's (SUBMITIT_LOCAL_*).
    :func:`srnn.distributed.start_from_environment` then joins the process group exactly as
    under torchrun. The port is drawn from the job id, the same on every rank (MASTER_PORT,
    where set, wins). Each rank keeps every GPU of its node visible and takes the one of its
    local rank, as under torchrun."""
    from submitit.helpers import TorchDistributedEnvironment

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    return {name: os.environ[name] for name in names}


class RankTask(RunTask):
    """One rank of one run over all the tasks of a (multi-node) job."""

    def __call__(self) -> str:
        os.chdir(self.cwd)
        join_world()
        run_experiment_command(self.argv)
        return shlex.join(self.argv)


class PageTask(Checkpointable):
    """One page of the book, executed with papermill by the runner's ``execute_page`` (handed in,
    and pickled by reference with the task)."""

    def __init__(self, execute, page, profile: str, out_dir: Path):
        self.execute, self.page, self.profile, self.out_dir = execute, page, profile, Path(out_dir)

    def __call__(self) -> str:
        return str(self.execute(self.page, self.profile, self.out_dir))

    def __repr__(self) -> str:
        return f"page {self.page.name}"
