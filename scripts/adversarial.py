"""Adversarial pass: what a new user gets for a mistake, a damaged file or a hostile machine.

    python scripts/adversarial.py              # every scenario; a markdown table, exit 1 if one fails
    python scripts/adversarial.py --only best  # the scenarios whose name contains 'best'
    python scripts/adversarial.py --at d4ecf78 # the same scenarios against an older commit

Each scenario runs the project's own command lines in a clean clone of the committed
code (a temporary folder; the working tree is never touched), breaks one thing, and
checks the answer: a user error must end in one ``error:`` line with a non-zero exit and
no traceback, Ctrl-C in one line and status 130, a damaged or foreign file must be refused by name, and nothing may be
reported as a result that is not one. The table lists the exact last line each got.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TINY = ["--set", "d_dim=8", "z_dim=4", "mlp_dim=8", "epochs=1", "patience=0", "kl_epochs=1"]


@dataclass
class Scenario:
    name: str
    what: str
    run: Callable[[Path], list[subprocess.CompletedProcess]]   # the commands, in a clone
    expect: str                # text the last command's last line must contain
    code: int = 2              # its exit status


TIMEOUT = [600]      # seconds a command may run (--timeout): past it, it took the input and went on


def sh(repo: Path, *argv: str, env: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([PY, *argv], cwd=repo, capture_output=True, text=True, input=stdin, timeout=TIMEOUT[0],
                              env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo), **(env or {})})
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, "timeout", "", f"(still running after {TIMEOUT[0]} s: the "
                                           f"command took the input and went on; stopped)")


def exp(repo: Path, *argv: str, **kw) -> subprocess.CompletedProcess:
    return sh(repo, "-m", "srnn.experiment", *argv, **kw)


def jsb(repo: Path, *extra: str, name: str = "") -> subprocess.CompletedProcess:
    """A tiny JSB Chorales run of the smoke profile (seconds)."""
    return exp(repo, "music", "--dataset", "jsb", *TINY, *extra, "--iwae-samples", "1", "--profile", "smoke",
               "--results", "runs/results", *(["--name", name] if name else []))


def one(*argv: str) -> Callable:
    return lambda repo: [exp(repo, *argv)]


def then(first: Callable, second: Callable) -> Callable:
    return lambda repo: [*first(repo), *second(repo)]


def edit(path: str, change: Callable[[Path], None]) -> Callable:
    def run(repo):
        change(repo / path)
        return []
    return run


def cut(path: str, keep: int = 50) -> Callable:
    return edit(path, lambda p: p.write_bytes(p.read_bytes()[:keep]))


RUN = "runs/jsb-npz-smooth-resq"      # where jsb_tiny's run lives; its record goes to runs/results


def jsb_tiny(*extra: str, name: str = "") -> Callable:
    return lambda repo: [jsb(repo, *extra, name=name)]


def speech(*argv: str) -> Callable:
    return lambda repo: [sh(repo, "-m", "srnn.speech", *argv)]


def results_cmd(repo: Path) -> list:
    return [sh(repo, "-m", "srnn.results")]


def runner(*argv: str) -> Callable:
    return lambda repo: [sh(repo, "-m", "srnn.runner", *argv)]


def folder_corpus(name: str, seconds: float = 4.0, gain: float = 0.3) -> Callable:
    """A folder of short WAV files (noise and tones), as a user's own corpus."""
    def run(repo):
        import numpy as np
        import soundfile as sf
        rng = np.random.default_rng(len(name))
        for i in range(6):
            t = np.arange(int(seconds * 16000)) / 16000
            wave = gain * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.standard_normal(t.size)
            (repo / name).mkdir(exist_ok=True)
            sf.write(repo / name / f"{i}.wav", wave.astype(np.float32), 16000)
        return []
    return run


SCENARIOS = [
    # settings
    Scenario("preset", "an unknown preset", one("music", "--dataset", "jsb", "--preset", "musik"),
             "error: unknown preset 'musik'"),
    Scenario("field", "a misspelt --set field", one("music", "--dataset", "jsb", "--set", "epoch=3"),
             "error: unknown config field(s) ['epoch']"),
    Scenario("type", "a word where a number goes", one("music", "--dataset", "jsb", "--set", "epochs=ten"),
             "error: config field 'epochs' must be int, got 'ten'"),
    Scenario("negative-size", "a negative layer size", one("music", "--dataset", "jsb", "--set", "d_dim=-5"),
             "error: config field 'd_dim' must be >= 1"),
    Scenario("clip-norm", "a negative gradient clip", one("music", "--dataset", "jsb", "--set", "clip_norm=-1"),
             "error: config field 'clip_norm' must be > 0"),
    Scenario("clip-value", "a negative value clip", one("music", "--dataset", "jsb", "--set", "clip_value=-1"),
             "error: config field 'clip_value' must be > 0"),
    Scenario("nan-setting", "kl_increment=NaN", one("music", "--dataset", "jsb", "--set", "kl_increment=NaN"),
             "error: config field 'kl_increment' must be a finite number"),
    Scenario("zero-lr", "a learning rate of 0", one("music", "--dataset", "jsb", "--set", "lr=0"),
             "error: config field 'lr' must be > 0"),
    Scenario("growing-lr", "a 'decay' that grows the rate", one("music", "--dataset", "jsb", "--set", "lr_decay=0.5"),
             "error: config field 'lr_decay' must be >= 1"),
    Scenario("dropout-1", "dropout probability 1", one("music", "--dataset", "jsb", "--set", "drop_z=1.0"),
             "error: config field 'drop_z' is a dropout probability in [0, 1)"),
    Scenario("max-epochs", "max_epochs below epochs", one("music", "--dataset", "jsb", "--set", "max_epochs=10"),
             "error: max_epochs (10) must be at least epochs (50)"),
    Scenario("set-syntax", "--set without '='", one("music", "--dataset", "jsb", "--set", "batch_size"),
             "error: --set takes FIELD=VALUE, got 'batch_size'"),
    Scenario("iwae-0", "--iwae-samples 0", one("music", "--dataset", "jsb", "--iwae-samples", "0"),
             "error: --iwae-samples must be at least 1"),
    Scenario("iwae-negative", "--iwae-samples -3", one("music", "--dataset", "jsb", "--iwae-samples", "-3"),
             "error: --iwae-samples must be at least 1"),
    Scenario("no-dataset", "music without --dataset", one("music"), "error: music runs need --dataset"),
    Scenario("bad-dataset", "an unknown data set", one("music", "--dataset", "bach"),
             "error: argument --dataset: invalid choice: 'bach'"),
    Scenario("no-prepared", "speech without --prepared", one("speech"), "error: speech runs need --prepared FOLDER"),
    Scenario("missing-prepared", "--prepared names no folder", one("speech", "--prepared", "nowhere"),
             "error: the prepared folder nowhere does not exist"),
    Scenario("not-prepared", "--prepared names a folder that is not prepared data",
             one("speech", "--prepared", "srnn"), "holds no manifest.json"),
    Scenario("no-gpu", "device=cuda on a machine without one", jsb_tiny("device=cuda"),
             "error: device 'cuda' is not available on this machine"),
    Scenario("bad-device", "device=gpu", jsb_tiny("device=gpu"), "error: device 'gpu' is not a torch device name"),
    Scenario("results-on-a-file", "--results inside a file (not writable)",
             lambda repo: [exp(repo, "music", "--dataset", "jsb", *TINY, "--iwae-samples", "1", "--profile", "smoke",
                               "--results", "README.md/results")], "error: Not a directory"),
    Scenario("dirty-tree", "the paper profile from a tree with uncommitted changes",
             then(edit("srnn/models/model.py", lambda p: p.write_text(p.read_text() + "\n# edited\n")),
                  lambda repo: [exp(repo, "music", "--dataset", "jsb", *TINY, "--iwae-samples", "1")]),
             "error: the working tree has uncommitted changes (srnn/models/model.py)"),
    # one run is one run
    Scenario("resume-other-config", "the same run folder with another learning rate",
             then(jsb_tiny(), jsb_tiny("lr=0.01")), "config.lr: 0.001 there, 0.01 here"),
    Scenario("same-command-twice", "the same command twice: the same run, tested again",
             then(jsb_tiny(), jsb_tiny()), "record in runs/results/music/jsb-npz-smooth-resq", 0),
    Scenario("foreign-best", "another run's best.pt copied into a finished run",
             then(then(jsb_tiny(), jsb_tiny("seed=5", name="other")),
                  then(edit(f"{RUN}/best.pt", lambda p: p.write_bytes(
                      (p.parents[1] / "jsb-npz-smooth-resq-other" / "best.pt").read_bytes())), jsb_tiny())),
             "best.pt belongs to another run (config.seed: 5 there, 123 here)"),
    Scenario("missing-best", "a finished run whose best.pt was deleted",
             then(then(jsb_tiny(), edit(f"{RUN}/best.pt", Path.unlink)), jsb_tiny()),
             "best.pt is missing, but the run has trained"),
    Scenario("cut-checkpoint", "a last.pt cut short (a full disk in an old version)",
             then(then(jsb_tiny(), cut(f"{RUN}/last.pt", 5000)), jsb_tiny("epochs=2")),
             "last.pt cannot be read"),
    Scenario("overwrite-record", "a record of another config in --results, checkpoints gone",
             then(then(jsb_tiny(), edit(RUN, shutil.rmtree)), jsb_tiny("lr=0.01")),
             "run.json belongs to another run (config.lr: 0.001 there, 0.01 here)"),
    Scenario("two-corpora", "two folder corpora trained into the same --runs and --results",
             then(then(folder_corpus("mine"), folder_corpus("yours", gain=0.6)),
                  lambda repo: [sh(repo, "-m", "srnn.speech", "folder", c, "--out", "runs/data")
                                for c in ("mine", "yours")]
                  + [exp(repo, "speech", "--prepared", p, "--set", "d_dim=8", "z_dim=4", "mlp_dim=8", "epochs=1",
                         "batch_size=2", "--iwae-samples", "1", "--profile", "smoke")
                     for p in sorted(str(q.relative_to(repo)) for q in (repo / "runs/data").glob("folder-*"))]),
             "record in results/speech/folder-", 0),
    # damaged records and files
    Scenario("cut-record", "a run.json cut short", then(cut("results/music/jsb-npz-smooth-resq/run.json"), results_cmd),
             "jsb-npz-smooth-resq/run.json is not valid JSON"),
    Scenario("cut-history", "a history.jsonl cut mid-line",
             then(edit("results/music/jsb-npz-smooth-resq/history.jsonl",
                       lambda p: p.write_text(p.read_text()[:-30])), results_cmd),
             "history.jsonl line"),
    Scenario("future-record", "a record of another format",
             then(edit("results/music/jsb-npz-smooth-resq/run.json",
                       lambda p: p.write_text(p.read_text().replace('"format": 1', '"format": 7', 1))), results_cmd),
             "has results format 7, this srnn reads format 1"),
    Scenario("damaged-shipped-data", "the shipped JSB Chorales file altered",
             then(edit("data/jsb/jsb_raw_batchsize16_seqlen100.npz",
                       lambda p: p.write_bytes(p.read_bytes()[:-10] + b"0123456789")), jsb_tiny()),
             "is damaged"),
    Scenario("diverging", "a learning rate that diverges", jsb_tiny("epochs=3", "lr=5.0", "clip_norm=1e9",
                                                                   "clip_value=1e9"),
             "error: the training loss became"),
    # the book's runner
    Scenario("pages-empty", "--pages with no names (an empty shell variable)", runner("--profile", "smoke", "--pages"),
             "error: argument --pages: expected at least one argument"),
    Scenario("pages-unknown", "an unknown page", runner("--profile", "smoke", "--pages", "nope"),
             "error: unknown page(s) ['nope']"),
    Scenario("profile-unknown", "an unknown profile", runner("--profile", "fast"), "error: unknown profile 'fast'"),
    Scenario("page-yaml", "a page file that is not YAML",
             then(edit("book/pages/model.yml", lambda p: p.write_text("notebook: model\nparameters: {a: 1\n")),
                  runner("--profile", "smoke", "--pages", "model")),
             "error: book/pages/model.yml line"),
    # speech preparation
    Scenario("speech-missing", "a corpus folder that does not exist", speech("folder", "nowhere"), "nowhere"),
    Scenario("speech-empty", "an empty corpus folder",
             then(edit("empty", lambda p: p.mkdir()), speech("folder", "empty")), "empty"),
    Scenario("speech-garbage", "a corpus folder with one file that is not audio",
             then(then(folder_corpus("bad"), edit("bad/z.wav", lambda p: p.write_bytes(b"RIFF" + b"x" * 400))),
                  speech("folder", "bad")), "--skip-bad"),
    Scenario("prepared-garbage", "a prepared train.i16 overwritten with garbage of the same size",
             then(then(speech("sample", "--out", "runs/data"),
                       edit("runs/data", lambda p: [f.write_bytes(os.urandom(f.stat().st_size))
                                                    for f in p.glob("sample-*/train.i16")])),
                  lambda repo: [exp(repo, "speech", "--prepared", str(next((repo / "runs/data").glob("sample-*"))),
                                    *TINY[:-1], "--iwae-samples", "1", "--profile", "smoke")]),
             "train.i16"),
    Scenario("cut-manifest", "a prepared manifest.json cut short",
             then(then(speech("sample", "--out", "runs/data"),
                       edit("runs/data", lambda p: [f.write_text(f.read_text()[:100])
                                                    for f in p.glob("sample-*/manifest.json")])),
                  lambda repo: [exp(repo, "speech", "--prepared", str(next((repo / "runs/data").glob("sample-*"))),
                                    "--profile", "smoke")]),
             "manifest.json is not valid JSON"),
]


def interrupted(*argv: str, twice: bool = False) -> Callable:
    """The command stopped by Ctrl-C a moment after it starts (still importing torch), once or twice."""
    def run(repo):
        import signal
        import time
        p = subprocess.Popen([PY, *argv], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)})
        time.sleep(0.3)
        for _ in range(1 + twice):
            p.send_signal(signal.SIGINT)
            time.sleep(0.05)
        out, err = p.communicate(timeout=TIMEOUT[0])
        return [subprocess.CompletedProcess(argv, p.returncode, out, err)]
    return run


def python(code: str) -> Callable:
    return lambda repo: [sh(repo, "-c", code)]


def wav(name: str, samples) -> Callable:
    def run(repo):
        import numpy as np
        import soundfile as sf
        sf.write(repo / name, np.asarray(samples, dtype=np.float32), 16000, subtype="FLOAT")
        return []
    return run


STARTS = f"import json; print([s['epochs_done'] for s in json.load(open('{RUN}/starts.json'))])"
SCENARIOS += [
    Scenario("speech-nan", "a float WAV of NaN samples among good files",
             then(then(folder_corpus("bad"), wav("bad/z.wav", [float("nan")] * 16000)), speech("folder", "bad")),
             "z.wav holds 16000 NaN or infinite sample(s)"),
    Scenario("speech-zero-length", "a zero-length WAV among good files: left out, named, listed",
             then(then(folder_corpus("bad"), wav("bad/z.wav", [])), speech("folder", "bad")), "z.wav", 0),
    Scenario("speech-small-corpus", "a corpus smaller than one batch",
             then(then(folder_corpus("mine"), speech("folder", "mine", "--out", "runs/data")),
                  lambda repo: [exp(repo, "speech", "--prepared", str(next((repo / "runs/data").glob("folder-*"))),
                                    "--set", "batch_size=64", "--profile", "smoke")]), "--set batch_size="),
    Scenario("generate-again", "srnn generate into the folder of an earlier, larger one",
             then(lambda repo: [sh(repo, "-m", "srnn.cli", "generate", "--pretrained", "jsb", "--out", "s",
                                   "--pieces", str(n), "--steps", "4") for n in (6, 2)],
                  python("import os; print(sorted(os.listdir('s')))")),
             "['rolls.npz', 'sample1.mid', 'sample1.wav', 'sample2.mid']", 0),
    Scenario("not-a-checkpoint", "srnn evaluate --checkpoint on a file that is not one",
             lambda repo: [sh(repo, "-m", "srnn.cli", "evaluate", "--checkpoint", "README.md", "music", "--dataset",
                              "jsb")], "give the last.pt or best.pt of a run that srnn trained"),
    Scenario("absurd-size", "d_dim=1000000", jsb_tiny("d_dim=1000000"), "choose smaller sizes"),
    Scenario("settings-preset", "srnn settings --preset music",
             lambda repo: [sh(repo, "-m", "srnn.cli", "settings", "--preset", "music")],
             "the values of the preset 'music'", 0),
    Scenario("page-type", "a page file with a wrong-typed field",
             then(edit("book/pages/model.yml", lambda p: p.write_text("notebook: model\nparameters: [1, 2]\n")),
                  runner("--profile", "smoke", "--pages", "model")),
             "error: book/pages/model.yml: 'parameters' must be a mapping"),
    Scenario("page-utf8", "a page file that is not UTF-8",
             then(edit("book/pages/model.yml", lambda p: p.write_bytes(b"notebook: model\ntitle: Caf\xe9\n")),
                  runner("--profile", "smoke", "--pages", "model")), "is not UTF-8 text"),
    Scenario("cut-checkpoint-deleted", "a cut last.pt deleted as advised: the start log says 0 epochs done",
             then(then(then(jsb_tiny(), cut(f"{RUN}/last.pt", 5000)), then(jsb_tiny("epochs=2"),
                                                                            edit(f"{RUN}/last.pt", Path.unlink))),
                  then(jsb_tiny("epochs=2"), python(STARTS))), "[0, 0]", 0),
    Scenario("missing-history", "a committed run whose history.jsonl is missing, on its page",
             then(edit("results/music/jsb-npz-smooth-resq/history.jsonl", Path.unlink),
                  python("from srnn.book.pages import committed_record, run_summary; "
                         "print(run_summary(committed_record('music', 'jsb-npz-smooth-resq')))")),
             "No learning curve", 0),
    Scenario("ctrl-c-start", "Ctrl-C while a command starts",
             interrupted("-m", "srnn.experiment", "music", "--dataset", "jsb"), "interrupted: run the same", 130),
    Scenario("ctrl-c-twice", "Ctrl-C twice while a command starts",
             interrupted("-m", "srnn.experiment", "music", "--dataset", "jsb", twice=True),
             "interrupted: run the same", 130),
]


def clone(into: Path, commit: str) -> Path:
    """A clean clone of the committed code (the data caches under ~/.cache/srnn are shared)."""
    repo = into / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", commit], check=True)
    return repo


def judge(s: Scenario, done: list[subprocess.CompletedProcess]) -> tuple[str, str, bool]:
    last = done[-1]
    text = (last.stderr.strip() or last.stdout.strip()).replace("\r", "\n")
    lines = [line for line in text.splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    if s.code == 0:
        line = next((ln for ln in reversed(last.stdout.splitlines() + last.stderr.splitlines())
                     if ln.startswith(("warning:", "jsb", "folder", "error"))), line)
    traceback = "Traceback (most recent call last)" in last.stderr
    ok = (last.returncode == s.code) and s.expect in last.stdout + last.stderr and not traceback
    if s.code == 2:
        errors = [ln for ln in last.stderr.splitlines() if ln.startswith("error:")]    # on a line of its own
        ok = ok and len(errors) == 1
    elif s.code == 130:                                                         # Ctrl-C: one line, nothing else
        ok = ok and len(last.stderr.strip().splitlines()) == 1
    return str(last.returncode), line, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    parser.add_argument("--at", default="HEAD", help="the commit to try (default: HEAD)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds a command may run (default: 600)")
    args = parser.parse_args()
    TIMEOUT[0] = args.timeout
    chosen = [s for s in SCENARIOS if args.only in s.name]
    failed = 0
    print("| # | scenario | exit | what the user sees (last line) | ok |\n|---|---|---|---|---|")
    for i, s in enumerate(chosen, start=1):
        with tempfile.TemporaryDirectory() as tmp:
            repo = clone(Path(tmp), args.at)
            code, line, ok = judge(s, s.run(repo))
        failed += not ok
        print(f"| {i} | {s.what} | {code} | `{line[:160]}` | {'yes' if ok else '**NO**'} |", flush=True)
    print(f"\n{len(chosen) - failed} of {len(chosen)} scenarios answered as they should")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
