"""The cluster launcher (srnn.cluster) for real, without a cluster: submitit's local executor
runs the same tasks a SLURM job runs (a part of the book, a grid of runs, a run over two
processes), a task signalled as SLURM signals a job at its time limit is requeued and
finishes with the numbers of a run never stopped, and the SLURM path writes the sbatch
files a cluster would get (to a stand-in sbatch on PATH)."""
import json
import os
import signal
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("submitit", reason="the cluster launcher needs submitit: pip install 'srnn[cluster]'")

from test_book import parallel_book  # noqa: E402

from srnn import cluster, runner  # noqa: E402
from srnn.cluster_tasks import CommandError, read_commands  # noqa: E402

TINY = ("--name tiny --profile smoke --iwae-samples 1 --test-paths 1 --set patience=0 batch_size=128 d_dim=8 z_dim=4 "
        "mlp_dim=8 device=cpu")
RUN_ID = "jsb-npz-smooth-resq-tiny"
LOCAL = ["--launcher", "local", "--gpus", "0", "--time", "10"]


def numbers(record_dir: Path) -> list[dict]:
    """A run's history without what depends on the machine's speed."""
    rows = [json.loads(line) for line in (record_dir / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if "time" not in k and not k.endswith("per_s")} for r in rows]


def holder_of(path: Path) -> int | None:
    """The process that has ``path`` open (the run's lock: the process training it)."""
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == str(path):
                return int(fd.parts[2])
        except OSError:
            continue
    return None


def test_a_book_part_runs_as_local_jobs_and_the_next_part_after_it(tmp_path, monkeypatch, capsys):
    """runner --launcher local: the Training part's pages run as two jobs side by side, the
    Results part's page only once both have finished."""
    notebook = ('# %% tags=["parameters"]\nout = ""\npage = ""\n\n'
                "# %%\nimport os, pathlib\n"
                "seen = sorted(p.name for p in pathlib.Path(out).iterdir())\n"
                "pathlib.Path(out, page).write_text(f\"{os.environ['SUBMITIT_LOCAL_JOB_ID']} {seen}\")")
    book = parallel_book(tmp_path, {"Training": ["a", "b"], "Results": ["summary"]}, notebook)
    monkeypatch.setattr(runner, "BOOK", book)
    monkeypatch.setattr(runner, "EXECUTED", book / "executed")
    assert runner.main(["--profile", "smoke", *LOCAL, "--logs", str(tmp_path / "logs" / "%j")]) == 0
    assert "3 page(s) in 2 part(s) done" in capsys.readouterr().out
    ran = {p: (tmp_path / "out" / p).read_text().split(" ", 1) for p in ("a", "b", "summary")}
    assert len({ran[p][0] for p in ran}) == 3                        # three jobs
    assert ran["summary"][1] == "['a', 'b']"                         # after the whole part
    assert all((book / "executed" / f"{p}.ipynb").is_file() for p in ran)


def test_a_grid_task_timed_out_is_requeued_and_resumes_to_the_numbers_of_one_never_stopped(tmp_path, monkeypatch):
    """Two runs of one command (in folders a and b) as a local job array; run b's task gets
    SLURM's time-limit signal (USR2) after its first epoch, is requeued by submitit and
    resumes from its last.pt: both records hold the same numbers."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.txt").write_text("".join(
        f"python -m srnn.experiment music --dataset jsb {TINY} epochs=2 --runs {d}/runs --results {d}/results\n"
        for d in "ab"))
    signalled = []

    def time_out_b():
        history, deadline = tmp_path / "b" / "runs" / RUN_ID / "history.jsonl", time.time() + 300
        while time.time() < deadline and not (history.is_file() and history.read_text().strip()):
            time.sleep(0.05)
        pid = holder_of(tmp_path / "b" / "runs" / f".{RUN_ID}.lock")
        if pid:
            os.kill(pid, signal.SIGUSR2)
            signalled.append(pid)

    watcher = threading.Thread(target=time_out_b)
    watcher.start()
    assert cluster.main(["grid", *LOCAL, "--commands", "grid.txt", "--logs", "logs/%j"]) == 0
    watcher.join()
    assert signalled, "run b finished its first epoch without the test seeing it"
    records = {d: json.loads((tmp_path / d / "results" / "music" / RUN_ID / "run.json").read_text()) for d in "ab"}
    assert len(records["a"]["starts"]) == 1
    assert [s["epochs_done"] for s in records["b"]["starts"]][0] == 0
    assert records["b"]["starts"][1]["epochs_done"] == 1                 # resumed after epoch 1 of 2
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*/*_log.out"))
    assert "this job is timed-out" in logs and "Requeued job" in logs
    a, b = (numbers(tmp_path / d / "results" / "music" / RUN_ID) for d in "ab")
    assert len(a) == 2 and a == b
    assert records["a"]["test"] == records["b"]["test"]


def test_a_two_process_run_through_the_launcher_computes_what_one_process_does(tmp_path, monkeypatch):
    """`run --tasks-per-node 2`: two ranks set up from the job's environment (gloo) train as
    one rank on the whole batch, as under torchrun (tests/test_distributed.py)."""
    monkeypatch.chdir(tmp_path)
    command = ["--", "python", "-m", "srnn.experiment", "music", "--dataset", "jsb", *TINY.split(), "epochs=1"]

    def run(n):
        return cluster.main(["run", *LOCAL, "--tasks-per-node", str(n), "--logs", f"logs{n}/%j", *command])

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(run, [1, 2])) == [0, 0]
    folders = {n: tmp_path / "results" / "music" / f"{RUN_ID}-{n}proc" for n in (1, 2)}
    assert json.loads((folders[2] / "run.json").read_text())["processes"] == 2
    keys = ("train_elbo_per_step", "train_kl_per_step", "grad_norm", "valid_elbo_per_step")
    one, two = ([[r[k] for k in keys] for r in numbers(folders[n])] for n in (1, 2))
    np.testing.assert_allclose(two, one, rtol=1e-5)


def fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """srun and sbatch on PATH that submit nothing: sbatch answers as SLURM does with a new
    job id, and submitit keeps the batch file it wrote as <logs>/<id>/<id>_submission.sh."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\nn=$(($(cat {bin_dir}/n 2>/dev/null || echo 100) + 1))\n'
                                    f'echo $n > {bin_dir}/n\necho "Submitted batch job $n"\n')
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "logs"


def sbatch_file(logs: Path, job: int) -> str:
    return (logs / str(job) / f"{job}_submission.sh").read_text()


def test_the_slurm_launcher_submits_arrays_chained_parts_and_a_multi_node_run(tmp_path, monkeypatch, capsys):
    logs = fake_slurm(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    notebook = '# %% tags=["parameters"]\nout = ""\npage = ""\n\n# %%\nprint(page)'
    book = parallel_book(tmp_path, {"Training": ["a", "b", "c"], "Results": ["summary"]}, notebook)
    monkeypatch.setattr(runner, "BOOK", book)
    monkeypatch.setattr(runner, "EXECUTED", book / "executed")
    assert runner.main(["--profile", "paper", "--launcher", "slurm", "--partition", "gpu", "--array-parallelism",
                        "2", "--time", "120", "--logs", str(logs / "%j"), "--sbatch", "account=proj"]) == 0
    training, results = sbatch_file(logs, 101), sbatch_file(logs, 102)
    for line in ("--array=0-2%2", "--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=4", "--mem=32GB",
                 "--time=120", "--signal=USR2@90", "--job-name=srnn-book1", "--account=proj", "--nodes=1"):
        assert f"#SBATCH {line}\n" in training, line
    assert "--dependency" not in training
    assert "#SBATCH --dependency=afterok:101\n" in results and "--array" not in results
    assert "#SBATCH --job-name=srnn-book2\n" in results
    assert "watch them with squeue --me" in capsys.readouterr().out

    (tmp_path / "grid.txt").write_text("python -m srnn.experiment music --dataset jsb\n"
                                       "srnn train music --dataset piano --name x  # a comment\n\n")
    assert cluster.main(["grid", "--commands", "grid.txt", "--logs", str(logs / "%j")]) == 0
    assert "#SBATCH --array=0-1%2\n" in sbatch_file(logs, 103)             # never more than the tasks
    assert cluster.main(["run", "--nodes", "2", "--gpus", "8", "--logs", str(logs / "%j"), "--", "python", "-m",
                         "srnn.experiment", "speech", "--prepared", "p", "--preset", "blizzard"]) == 0
    big = sbatch_file(logs, 104)
    for line in ("--nodes=2", "--ntasks-per-node=8", "--gpus-per-node=8", "--job-name=srnn-run"):
        assert f"#SBATCH {line}\n" in big, line
    from submitit.core.utils import DelayedSubmission
    task = DelayedSubmission.load(logs / "104" / "104_submitted.pkl").function
    assert type(task).__name__ == "RankTask" and task.argv == ["speech", "--prepared", "p", "--preset", "blizzard"]
    assert task.cwd == str(tmp_path)


@pytest.mark.parametrize("argv", [["grid"], ["run"]])
def test_every_option_is_in_the_help(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cluster.main([*argv, "--help"])
    text = capsys.readouterr().out
    assert stop.value.code == 0
    for option in ("--launcher", "--partition", "--gpus", "--cpus", "--mem", "--time", "--array-parallelism",
                   "--name", "--logs", "--timeouts", "--sbatch"):
        assert option in text


def test_commands_files_and_options_that_cannot_work_are_refused_in_one_line(tmp_path, monkeypatch, capsys):
    assert read_commands("python -m srnn.experiment music --dataset jsb  # JSB\n\n# note\n", "f") == [
        ["music", "--dataset", "jsb"]]
    with pytest.raises(CommandError, match=r"f line 2 is not a run: 'echo hi'"):
        read_commands("python -m srnn.experiment music --dataset jsb\necho hi\n", "f")
    with pytest.raises(CommandError, match="holds no command"):
        read_commands("# only a comment\n", "f")
    monkeypatch.setenv("PATH", str(tmp_path))                  # no srun: not a SLURM cluster
    for argv, message in [
        (["grid", "--commands", str(tmp_path / "none.txt")], "no such file"),
        (["run", "--launcher", "local", "--nodes", "2", "--", "srnn", "train", "music"], "this machine only"),
        (["run", "--launcher", "local"], "run needs the command after --"),
        (["run", "--launcher", "local", "--cpus", "0", "--", "srnn", "train", "music"], "at least 1"),
        (["run", "--", "srnn", "train", "music"], "use --launcher local"),
    ]:
        with pytest.raises(SystemExit) as stop:
            cluster.main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith("error: ") and message in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_a_failing_task_stops_the_local_launch_with_its_command_and_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.txt").write_text("python -m srnn.experiment music --dataset jsb --set no_such_setting=1\n")
    with pytest.raises(SystemExit) as stop:
        cluster.main(["grid", *LOCAL, "--commands", "grid.txt", "--logs", "logs/%j"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "run music --dataset jsb --set no_such_setting=1 failed" in err and "stopped with exit status 2" in err
    log = Path(err.split("log: ")[1].split(")")[0])
    assert "no_such_setting" in log.read_text()             # the run's own one-line error, in the task's log
