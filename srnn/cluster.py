"""The book's pages and the experiment grid as SLURM jobs, through submitit.

    python -m srnn.runner --profile paper --launcher slurm --partition gpu    # the book
    python -m srnn.cluster grid --partition gpu                 # every run of experiments/music.sh
    python -m srnn.cluster grid --commands mine.txt             # or the runs a file names, one a line
    python -m srnn.cluster run --nodes 2 --gpus 8 -- python -m srnn.experiment speech \\
        --prepared runs/data/blizzard-<hash> --preset blizzard  # one run over 16 GPUs on 2 nodes

One page or one run is one task of a job array, on one GPU by default. The book is one
array per part of its table of contents, each part's array waiting for the one before to
finish (SLURM's afterok), so that the Results pages read the runs the Training pages made.
A task that SLURM pre-empts or that reaches its time limit is requeued and resumes from its
run's ``runs/<id>/last.pt`` (see :mod:`srnn.cluster_tasks`): the same command, started again,
continues where it stopped, so rerunning this command is also safe. ``runs/``, ``results/``,
``book/executed/`` and the logs (``runs/cluster/<job id>/``) must be on a file system that
every node sees; the jobs start from the folder the command ran in, with its environment.

``--launcher local`` runs the same tasks through submitit's local executor on this machine
(every task of an array at once; a part of the book, or the grid, waits until all are done),
which is how the tests run this module without a cluster. With ``--launcher slurm`` the
command submits and returns: watch with ``squeue --me`` and the logs.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ArgumentParser, UserError, command_line

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "experiments" / "music.sh"


class ClusterError(UserError):
    """A launch that cannot work, or a task that failed (named, with its log)."""


@dataclass
class Launch:
    """Where tasks run and what each asks for: one GPU, a few CPUs and a day by default."""

    launcher: str = "slurm"
    partition: str | None = None
    gpus: int = 1               # per task; for a run over nodes, per node (one process each)
    cpus: int = 4               # per task
    mem_gb: float = 32          # per node
    time_min: int = 24 * 60     # per job; a task timed out is requeued and resumes
    array_parallelism: int = 256
    name: str = "srnn"
    logs: str = "runs/cluster/%j"
    timeouts: int = 10          # requeues after a time-out before a task is given up
    sbatch: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Launch:
        return cls(args.launcher, args.partition, args.gpus, args.cpus, args.mem, args.time,
                   args.array_parallelism, args.name, args.logs, args.timeouts, tuple(args.sbatch))


def add_options(parser: argparse.ArgumentParser, launcher: str | None = "slurm", gpus: str = "GPUs per task") -> None:
    """The launcher's options, shared by ``srnn.runner`` (where no --launcher means: run here,
    without submitit) and the commands of this module."""
    d = Launch()
    group = parser.add_argument_group("cluster (submitit)")
    group.add_argument("--launcher", choices=["slurm", "local"], default=launcher,
                       help="slurm: submit SLURM jobs; local: run the same jobs here through submitit's local "
                            "executor" + (f" (default: {launcher})" if launcher else
                                          " (default: neither; the pages run in this process, --jobs at a time)"))
    group.add_argument("--partition", help="SLURM partition (default: the cluster's default)")
    group.add_argument("--gpus", type=int, default=d.gpus, help=f"{gpus} (default {d.gpus}; 0: CPU only)")
    group.add_argument("--cpus", type=int, default=d.cpus, help=f"CPUs per task (default {d.cpus})")
    group.add_argument("--mem", type=float, default=d.mem_gb, help=f"memory per node in GB (default {d.mem_gb:g})")
    group.add_argument("--time", type=int, default=d.time_min,
                       help=f"time limit of a job in minutes (default {d.time_min}); one that runs out is "
                            "requeued and resumes from its last checkpoint")
    group.add_argument("--array-parallelism", type=int, default=d.array_parallelism,
                       help=f"tasks of one array running at once (default {d.array_parallelism})")
    group.add_argument("--name", default=d.name, help=f"job name prefix (default {d.name})")
    group.add_argument("--logs", default=d.logs,
                       help=f"log folder, %%j the job id (default {d.logs.replace('%', '%%')}); on a shared "
                            "file system")
    group.add_argument("--timeouts", type=int, default=d.timeouts,
                       help=f"time-outs a task may be requeued after (default {d.timeouts}; pre-emptions "
                            "do not count)")
    group.add_argument("--sbatch", nargs="*", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. account=myproject qos=high constraint=a100")


def executor(launch: Launch, job: str, *, nodes: int = 1, tasks_per_node: int = 1, after: list[str] = ()):
    """A submitit executor for ``launch``: SLURM's through ``AutoExecutor``, or the local one."""
    try:
        import submitit
    except ImportError:
        raise ClusterError("the cluster launcher needs submitit: pip install 'srnn[cluster]' "
                           "(or pip install submitit)") from None
    if launch.launcher not in ("slurm", "local"):
        raise ClusterError(f"unknown launcher {launch.launcher!r}; choose slurm or local")
    if min(launch.gpus, launch.cpus - 1, launch.time_min - 1, launch.array_parallelism - 1, nodes - 1,
           tasks_per_node - 1, launch.timeouts) < 0 or launch.mem_gb <= 0:
        raise ClusterError("--gpus and --timeouts must be at least 0; --cpus, --mem, --time, --array-parallelism, "
                           "--nodes and --tasks-per-node at least 1")
    if launch.launcher == "local" and nodes > 1:
        raise ClusterError(f"--launcher local runs on this machine only: use --nodes 1, not {nodes}")
    extra = dict(item.split("=", 1) for item in launch.sbatch if "=" in item)
    if len(extra) != len(launch.sbatch):
        raise ClusterError(f"--sbatch takes KEY=VALUE, got {list(launch.sbatch)}")
    try:
        ex = submitit.AutoExecutor(folder=str(Path(launch.logs).absolute()), cluster=launch.launcher,
                                   slurm_max_num_timeout=launch.timeouts, local_max_num_timeout=launch.timeouts)
    except RuntimeError as err:          # no srun: not on a SLURM cluster
        raise ClusterError(f"{err} (submit from a login node of the cluster, or use --launcher local)") from None
    ex.update_parameters(
        name=f"{launch.name}-{job}", timeout_min=launch.time_min, mem_gb=launch.mem_gb, nodes=nodes,
        tasks_per_node=tasks_per_node, cpus_per_task=launch.cpus, gpus_per_node=launch.gpus or None,
        slurm_partition=launch.partition, slurm_array_parallelism=launch.array_parallelism,
        slurm_dependency=f"afterok:{':'.join(after)}" if after else None,
        slurm_additional_parameters=extra or None)
    return ex


def submit(launch: Launch, job: str, tasks: list, **shape) -> list:
    """Submit ``tasks`` as one job array (one task: one job); the submitit jobs."""
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    ex = executor(launch, job, **shape)
    try:
        jobs = ex.submit_array(tasks) if len(tasks) > 1 else [ex.submit(tasks[0])]
    except (FailedJobError, FailedSubmissionError) as err:       # sbatch refused it: its message says why
        raise ClusterError(f"the {job} job was not submitted: {' '.join(str(err).split())}") from None
    for task, j in zip(tasks, jobs):
        print(f"submitted {j.job_id}: {task!r}", flush=True)
    return jobs


def wait(jobs: list, tasks: list) -> None:
    """Wait for local jobs; a failed one raises a ClusterError with its last error line and its log."""
    failed = []
    for task, job in zip(tasks, jobs):
        error = job.exception()
        if error is not None:       # submitit's message: the task's traceback between two rules, then paths
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            rules = [i for i, line in enumerate(lines) if set(line) == {"-"}]
            last = lines[rules[-1] - 1] if len(rules) >= 2 else type(error).__name__
            failed.append(f"{task!r} failed ({last}; log: {job.paths.stderr})")
    if failed:
        raise ClusterError("; ".join(failed))


def array_id(jobs: list) -> str:
    """The SLURM job id of an array (``123`` of ``123_0``): afterok on it waits for every task."""
    return jobs[0].job_id.split("_")[0]


def submit_book(parts: list[list], profile: str, out_dir: Path, launch: Launch, execute) -> list[list]:
    """The book's pages (the parts that :func:`srnn.runner.plan_batch` returns) as one job
    array per part, each after the one before; locally, each part runs when the one before
    has finished. Each task calls ``execute(page, profile, out_dir)``: the runner hands in
    its own, so that this module needs nothing from the runner that imports it. The jobs,
    by part."""
    from .cluster_tasks import PageTask

    submitted, after = [], []
    for k, part in enumerate(parts, start=1):
        tasks = [PageTask(execute, page, profile, out_dir) for page in part]
        jobs = submit(launch, f"book{k}", tasks, after=after)
        submitted.append(jobs)
        if launch.launcher == "local":
            wait(jobs, tasks)
        else:
            after = [array_id(jobs)]
    return submitted


def grid_commands(path: str | None) -> tuple[str, str]:
    """The grid's commands, one a line, and where they came from: a file, standard input
    (``-``), or by default what ``bash experiments/music.sh --list`` prints."""
    if path == "-":
        return sys.stdin.read(), "standard input"
    if path:
        if not Path(path).is_file():
            raise ClusterError(f"--commands {path}: no such file; give a file with one command per line")
        return Path(path).read_text(), path
    if not GRID.is_file():
        raise ClusterError(f"{GRID} is not here (an installed package carries no experiments/): run from a clone "
                           "of the repository, or give --commands FILE")
    done = subprocess.run(["bash", str(GRID), "--list"], capture_output=True, text=True)
    if done.returncode:
        raise ClusterError(f"bash {GRID} --list failed: {done.stderr.strip()}")
    return done.stdout, f"bash {GRID.relative_to(ROOT)} --list"


def submit_grid(runs: list[list[str]], launch: Launch) -> list:
    """One task per run, as one job array; locally, waits until all are done."""
    from .cluster_tasks import RunTask

    tasks = [RunTask(argv, os.getcwd()) for argv in runs]
    jobs = submit(launch, "grid", tasks)
    if launch.launcher == "local":
        wait(jobs, tasks)
    return jobs


def submit_run(argv: list[str], launch: Launch, nodes: int, tasks_per_node: int | None = None) -> list:
    """One run over ``nodes`` nodes, one process per GPU (``tasks_per_node``, default the GPUs
    per node), as one job whose every task is a rank; locally, waits until it is done."""
    from .cluster_tasks import RankTask

    tasks = [RankTask(argv, os.getcwd())]
    jobs = submit(launch, "run", tasks, nodes=nodes, tasks_per_node=tasks_per_node or max(launch.gpus, 1))
    if launch.launcher == "local":
        wait(jobs, tasks)
    return jobs


def said_where(launch: Launch) -> str:
    """What happened to the tasks, and for SLURM how to watch them."""
    if launch.launcher == "local":
        return "done"
    return (f"submitted; watch them with squeue --me, their logs are in {launch.logs} (%j: the job id); "
            "the same command again resumes what stopped")


@command_line
def main(argv: list[str], prog: str = "python -m srnn.cluster") -> int:
    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                            epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    grid = commands.add_parser("grid", help="one task per run of experiments/music.sh (or of --commands FILE)")
    grid.add_argument("--commands", metavar="FILE", help="a file with one 'python -m srnn.experiment ...' per "
                                                          "line, - for standard input (default: the output of "
                                                          "bash experiments/music.sh --list)")
    add_options(grid)
    run = commands.add_parser("run", help="one run over several processes and nodes (DDP)")
    run.add_argument("--nodes", type=int, default=1, help="nodes (default 1)")
    run.add_argument("--tasks-per-node", type=int, help="processes per node (default: --gpus, one per GPU)")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- python -m srnn.experiment ARGS")
    add_options(run, gpus="GPUs per node, one process each")
    args = parser.parse_args(argv)
    launch = Launch.from_args(args)
    start = time.time()
    if args.command == "grid":
        from .cluster_tasks import read_commands

        jobs = submit_grid(read_commands(*grid_commands(args.commands)), launch)
    else:
        from .cluster_tasks import experiment_arguments

        words = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not words:
            parser.error("run needs the command after --, e.g. -- python -m srnn.experiment music --dataset jsb")
        jobs = submit_run(experiment_arguments(shlex.join(words)), launch, args.nodes, args.tasks_per_node)
    print(f"{len(jobs)} task(s) {said_where(launch)} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
