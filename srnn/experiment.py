"""One experiment end to end: train, select on validation, test once, record with provenance.

    python -m srnn.experiment music --dataset jsb --form npz
    python -m srnn.experiment music --dataset nottingham --variant filt --name batch8 --set batch_size=8
    python -m srnn.experiment speech --prepared runs/data/timit-... --preset timit

Checkpoints go to ``runs/<id>/`` (git-ignored; rerunning the command resumes there); the
record goes to ``results/<domain>/<id>/`` (committed): ``run.json`` and ``history.jsonl``,
plus generated samples. The id names the data (set and form; a folder corpus also by a
hash of its content), a preset other than the data's own, the variant and ``--name``; the
checkpoints and the record are bound to the run's config and data, and a command that
would resume, test or overwrite them with another config or other data is refused.
Add --debug to see the traceback of an error.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .config import Config, preset, settings_help
from .datasets.speech import SpeechData, load_prepared
from .datasets.speech_corpora import full_corpus
from .errors import ArgumentParser, UserError, command_line
from .files import locked, read_json, write_atomic, write_json
from .records.provenance import provenance
from .records.store import load_run, run_name, write_run
from .training.checkpoint import CheckpointError, check_identity, load_checkpoint, model_from
from .training.devices import resolve_device
from .training.distributed import current_world, start_from_environment
from .training.evaluate import evaluate, recorded_elbo
from .training.train import train

# What a run may set and keep its preset's id: the record states each (the seed, the device and
# its numerics), and the prior picks the variant VRNN-I, which its id names.
FREE_FIELDS = ("seed", "device", "precision", "compile", "vrnn_prior")
VARIANTS = {"smooth+Resq": ("smoothing", True), "smooth": ("smoothing", False),
            "filt+Resq": ("filtering", True), "filt": ("filtering", False)}
MAIN_VARIANTS = ("smooth+Resq", "VRNN", "VRNN-I", "RNN")    # the runs that write samples


class ExperimentError(UserError, ValueError):
    """A command that cannot make the run it asks for."""


def variant_config(cfg: Config, variant: str) -> Config:
    if variant not in VARIANTS:
        raise ExperimentError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    inference, resq = VARIANTS[variant]
    return cfg.replace(inference=inference, resq=resq)


def run_experiment(cfg: Config, data, run_id: str, domain: str, *, runs_root="runs",
                   results_root="results", iwae_samples: int = 100, test_paths: int = 10, profile: str = "paper",
                   command: str = "", progress: bool = True, allow_dirty: bool = False,
                   write_samples: Callable | None = None, wait_busy: bool = False) -> dict:
    """Train ``cfg`` on ``data`` (resuming if ``runs/<id>`` holds a partial run), evaluate
    the best-on-validation model on the test set by the ELBO (the mean over ``test_paths``
    sample paths, with its standard error) and the importance-weighted bound with
    ``iwae_samples`` samples, and write the record. Returns the record. A run that has
    trained is tested again from its ``best.pt`` by the same command (with the code of that
    start, which the record's ``starts`` names).

    The code is read from git when the command starts, and a tree with uncommitted changes
    is refused for the ``paper`` profile unless ``allow_dirty`` (other profiles make no
    results and record it either way). Every start of the run (the first, and each resume
    from a checkpoint) is kept in ``runs/<id>/starts.json`` and in the record's ``starts``.
    One process trains a run at a time: a second command for the same run, while the first
    still runs, is refused (it holds ``runs/.<id>.lock``), or with ``wait_busy`` waits for it
    and then finds the run trained (the book's pages, which may run side by side). Under
    torchrun every rank trains (see :mod:`srnn.training.distributed`) and rank 0 alone holds the lock,
    tests and writes the record; the other ranks return an empty dict.
    """
    if iwae_samples < 1 or test_paths < 1:
        raise ExperimentError(f"iwae_samples and test_paths must be at least 1, got {iwae_samples} and {test_paths}")
    device = resolve_device(cfg.device)
    origin = provenance(device, allow_dirty=allow_dirty or profile != "paper")
    run_dir = Path(runs_root) / run_id
    folder = Path(results_root) / domain / run_id
    folder.parent.mkdir(parents=True, exist_ok=True)     # a results folder that cannot be made fails now,
    if not os.access(folder.parent, os.W_OK):            # not after hours of training
        raise ExperimentError(f"cannot write to the results folder {folder.parent}: choose another --results")
    if (folder / "run.json").is_file():
        check_identity(load_run(folder / "run.json"), cfg, data.fingerprint, folder / "run.json", "record this run")
    world = current_world()
    lock = locked(Path(runs_root) / f".{run_id}.lock", f"the run {run_id}", wait=wait_busy)
    with lock if world.main else contextlib.nullcontext():
        starts: list[dict] = []
        log_start = (lambda done: starts.extend(_log_start(run_dir, origin, done))) if world.main else None
        history = train(cfg, data.train, data.valid, run_dir, data=data.fingerprint, progress=progress,
                        on_start=log_start)
        if not world.main:                  # rank 0 tests and records the run
            return {}
        best = max((r for r in history if "valid_elbo_per_step" in r), key=lambda r: r["valid_elbo_per_step"])
        model = best_model(run_dir, cfg, data.fingerprint, best, device)
        t0 = time.time()
        paths = recorded_elbo(model, data.test, cfg.seed, test_paths, progress)
        test = {k: v for k, v in paths.items() if not k.startswith("iwae")}
        test.update(samples=1, paths=paths.get("paths", 1))            # the RNN's exact bound: one path
        if iwae_samples > 1:
            iw = evaluate(model, data.test, samples=iwae_samples, progress=progress, desc="test IWAE")
            test.update({k: v for k, v in iw.items() if k.startswith("iwae")}, iwae_samples=iwae_samples)
        per_sequence = test.pop("per_sequence")
        if isinstance(data, SpeechData):
            if data.test_windows is not data.test:      # the windowed estimator too, where it is another
                torch.manual_seed(cfg.seed)
                windows = evaluate(model, data.test_windows, progress=progress, desc="test ELBO, windows")
                test["windows"] = {k: v for k, v in windows.items() if k.startswith(("elbo", "steps", "sequences"))}
            test.update(per_sample(test, data.samples_per_step, data.std))   # comparable across corpora
        record = {
            "id": run_id, "domain": domain, "dataset": data.name.split("-")[0],
            "data_form": data.name.split("-", 1)[-1], "variant": cfg.variant,
            "profile": profile, "command": command, "seed": cfg.seed, "config": cfg.to_dict(),
            "data": data.fingerprint, "code": starts[0]["code"], "hardware": origin["hardware"],
            "processes": world.size,
            "started": starts[0]["started"], "starts": starts,
            "train_wall_time_s": history[-1]["wall_time_s"], "test_wall_time_s": time.time() - t0,
            "epochs": len(history), "best_epoch": best["epoch"],
            "still_improving": best["epoch"] == history[-1]["epoch"],
            "valid_best": {k[6:]: v for k, v in best.items() if k.startswith("valid_")},
            "test": test, "test_per_sequence": per_sequence,
            "warnings": [r["warning"] for r in history if "warning" in r],
        }
        record["wall_time_s"] = record["train_wall_time_s"] + record["test_wall_time_s"]
        if write_samples is not None:
            torch.manual_seed(cfg.seed)
            record["samples"] = [str(p.relative_to(folder)) for p in write_samples(model, folder / "samples")]
        write_run(folder, record, history)
        return record


def best_model(run_dir: Path, cfg: Config, data: dict, best: dict, device) -> torch.nn.Module:
    """The run's ``best.pt``, checked to be this run's (config, data) and to hold the epoch
    its history names best, as a model in eval mode."""
    path = run_dir / "best.pt"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing, but the run has trained (best validation at epoch "
                              f"{best['epoch']}), so there is no model to test: put the file back, or delete "
                              f"{run_dir} and run the same command again to retrain")
    ckpt = load_checkpoint(path, fix=f"delete {run_dir} and run the same command again to retrain")
    check_identity(ckpt, cfg, data, path, "test this run")
    saved = ckpt["history"][-1] if ckpt.get("history") else {}
    if (saved.get("epoch"), saved.get("valid_elbo_per_step")) != (best["epoch"], best["valid_elbo_per_step"]):
        raise CheckpointError(f"{path} holds epoch {saved.get('epoch')}, but this run's best validation epoch is "
                              f"{best['epoch']} (history.jsonl): the file is not this run's best model; delete "
                              f"{run_dir} and run the same command again to retrain")
    return model_from(ckpt, device)


def _log_start(run_dir: Path, origin: dict, epochs_done: int) -> list[dict]:
    """Append this start (time, the epochs its checkpoint holds, code, hardware) to the run's
    ``starts.json``, atomically, and return all starts so far."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "starts.json"
    starts = read_json(path) if path.is_file() else []
    starts.append({"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "epochs_done": epochs_done, **origin})
    write_json(path, starts, indent=2)
    return starts


def music_samples(model, folder: Path, pieces: int = 4, steps: int = 64, seconds: float = 0.25,
                  prefix: torch.Tensor | None = None) -> list[Path]:
    """Piano rolls sampled from p (continuing ``prefix``, (pieces, T0, 88), where given, which
    then opens each roll): ``rolls.npz``, one MIDI file each, and the first rendered to a
    short WAV clip by the simple synthesizer of :mod:`srnn.datasets.midi`."""
    from .datasets.audio import write_wav
    from .datasets.midi import synthesize, write_midi
    with torch.no_grad():
        rolls = model.generate(steps, batch_size=pieces, prefix_x=prefix)
    if prefix is not None:
        rolls = torch.cat([prefix.to(rolls), rolls], 1)
    rolls = rolls.cpu().numpy().astype(np.uint8)
    paths, buffer = [folder / "rolls.npz"], io.BytesIO()
    np.savez_compressed(buffer, rolls=rolls, step_seconds=seconds)
    write_atomic(paths[0], buffer.getvalue())
    paths += [write_midi(folder / f"sample{i + 1}.mid", r, seconds) for i, r in enumerate(rolls)]
    paths.append(write_wav(folder / "sample1.wav", synthesize(rolls[0][:40], seconds)))
    return paths


def per_sample(test: dict, samples_per_step: int, std: float) -> dict:
    """Bounds per audio sample in nats and bits, on the normalized scale the model sees and
    on the raw waveform scale (float samples in [-1, 1]): log p_raw = log p_norm - log std."""
    out = {}
    for name in ("elbo", "iwae"):
        if f"{name}_per_step" in test:
            nats = test[f"{name}_per_step"] / samples_per_step
            out[f"{name}_nats_per_sample"] = nats
            out[f"{name}_bits_per_sample_raw"] = (nats - math.log(std)) / math.log(2)
    return out


def _music(args, cfg):
    from .datasets.music import dataset
    data = dataset(args.dataset, args.form, batch_size=cfg.batch_size, window=cfg.window,
                   valid_state=cfg.valid_state)
    with_samples = cfg.variant in MAIN_VARIANTS and not args.name
    return data, music_samples if with_samples else None


def _speech(args, cfg):
    if not args.prepared:
        raise ExperimentError("speech runs need --prepared FOLDER, a folder that python -m srnn.speech prepared "
                              "(see python -m srnn.speech --help)")
    data = load_prepared(args.prepared, batch_size=cfg.batch_size, window=cfg.window, seed=cfg.seed,
                         valid_state=cfg.valid_state, test_pass=cfg.test_pass)
    return data, data.write_samples


def _without_places(argv: list[str]) -> list[str]:
    """``argv`` without --runs and --results: where the checkpoints and the record lie is no
    part of the run, so that its command reads the same from any folder."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--runs", "--results"):
            skip = True
        elif not arg.startswith(("--runs=", "--results=")):
            out.append(arg)
    return out


def _override(item: str) -> tuple[str, object]:
    """'epochs=80' -> ('epochs', 80); values are JSON, or plain strings."""
    if "=" not in item:
        raise ExperimentError(f"--set takes FIELD=VALUE, got {item!r}")
    key, value = item.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def data_preset(domain: str, data_name: str) -> str:
    """The data set's own preset, which its run ids leave out: the paper's for music, TIMIT
    and Blizzard, the small CPU model for the other speech corpora."""
    corpus = data_name.split("-")[0]
    return "music" if domain == "music" else corpus if corpus in ("timit", "blizzard") else "speech_small"


def default_run_id(domain: str, data, cfg: Config, name: str | None) -> str:
    """The id :func:`~srnn.records.store.run_name` gives this run, ``<data>-<variant>[-<preset>][-<name>]``:
    the variant is SRNN's (e.g. smooth-resq) or the baseline's (vrnn, vrnn-i, rnn); the preset only where it
    is not the data's own
    (for a baseline: not the data's own preset's baseline, e.g. vrnn_music); a user's
    folder corpus, and a TIMIT or Blizzard that is not the whole corpus (see
    :func:`~srnn.datasets.speech_corpora.full_corpus`), is named by the first 8 hex digits of
    its fingerprint's sha256, so that two corpora never share a run and a part of TIMIT never
    takes the id of the paper's TIMIT run."""
    base, corpus = data.name, data.name.split("-")[0]
    named = corpus == "sample" or (corpus in ("timit", "blizzard") and full_corpus(data.fingerprint))
    if domain == "speech" and not named:
        content = hashlib.sha256(json.dumps(data.fingerprint, sort_keys=True).encode()).hexdigest()[:8]
        base = data.name.replace(corpus, f"{corpus}-{content}", 1)
    own = data_preset(domain, data.name)
    shown = "" if cfg.name in (own, f"{cfg.model}_{own}", f"{cfg.model}_gmm_{own}") else cfg.name
    return run_name(domain, base, "", cfg.variant, "-".join(filter(None, [shown, name])))


def check_fits(cfg: Config, domain: str, data) -> None:
    """Refuse a config whose output does not model this data (e.g. a speech preset on music)."""
    want = ("bernoulli", 88) if domain == "music" else ("gaussian", data.samples_per_step)
    real = "gaussian" if cfg.output == "gmm" else cfg.output       # a mixture of Gaussians models the same values
    if (real, cfg.x_dim) != want:
        raise ExperimentError(f"preset {cfg.name!r} models {cfg.x_dim} {cfg.output} values per step, but "
                              f"{data.name} has {want[1]} {want[0]} values per step: choose a preset made for "
                              f"{domain} (e.g. {data_preset(domain, data.name)})")


def run_command(argv: list[str], prog: str = "python -m srnn.experiment",
                wait_busy: bool = False) -> tuple[dict, str]:
    """Make (or resume, or find made) the run the command line ``argv`` asks for; return its
    record (empty on every rank but 0 under torchrun) and the folder it was written to.
    :func:`main` prints the two; the book's pages take them, so that a page shows the run
    its own call made."""
    p = ArgumentParser(prog=prog, description=__doc__, epilog=settings_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("domain", choices=["music", "speech"], help="music (piano rolls) or speech (raw audio)")
    p.add_argument("--dataset", choices=["jsb", "nottingham", "muse", "piano"], help="music: the data set")
    p.add_argument("--form", default="npz", choices=["npz", "classic", "pickle"],
                   help="music: npz (the authors' arrays), classic (.mat rolls) or pickle")
    p.add_argument("--prepared", help="speech: a folder that python -m srnn.speech prepared")
    p.add_argument("--preset", help="config preset (default: music / speech_small; the paper's TIMIT and "
                                    "Blizzard models are the presets timit and blizzard)")
    p.add_argument("--variant", default="smooth+Resq", choices=sorted(VARIANTS),
                   help="SRNN's inference network: smoothing or filtering, with or without Resq (default smooth+Resq)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="config overrides, e.g. batch_size=8 kl_start=0.0 (JSON values)")
    p.add_argument("--iwae-samples", type=int, default=100,
                   help="samples of the importance-weighted test bound (1: the ELBO only)")
    p.add_argument("--test-paths", type=int, default=10,
                   help="sample paths whose mean is the test ELBO, with its standard error (default 10)")
    p.add_argument("--profile", default="paper",
                   help="paper (a result: refused from a tree with uncommitted changes) or smoke (a test run)")
    p.add_argument("--allow-dirty", action="store_true",
                   help="run from a tree with uncommitted changes; the record says so, with a hash of the diff")
    p.add_argument("--name", help="run id suffix, e.g. an ablation's name")
    p.add_argument("--runs", default="runs", help="where the checkpoints go: RUNS/<id>/ (default: runs)")
    p.add_argument("--results", default="results", help="where the record goes: RESULTS/<domain>/<id>/ "
                                                          "(default: results)")
    args = p.parse_args(argv)
    if args.domain == "music" and not args.dataset:
        p.error("music runs need --dataset (jsb, nottingham, muse or piano)")
    if args.iwae_samples < 1:
        p.error(f"--iwae-samples must be at least 1 (1: the ELBO only), got {args.iwae_samples}")
    if args.test_paths < 1:
        p.error(f"--test-paths must be at least 1, got {args.test_paths}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # repeatable cuBLAS on a GPU
    torch.backends.cudnn.deterministic = True

    overrides = dict(_override(item) for item in args.set)
    preset_name = args.preset or ("music" if args.domain == "music" else "speech_small")
    cfg = variant_config(preset(preset_name, **overrides), args.variant)
    changed = sorted(k for k in overrides if k not in FREE_FIELDS)
    if args.profile == "paper" and changed and not args.name:
        raise ExperimentError(f"--set {' '.join(changed)} departs from the preset {preset_name!r}, and a run "
                              f"without --name takes the id of the preset's own run: name it (e.g. --name "
                              f"{changed[0].replace('_', '-')}) so that its id and label say what it is")
    world = start_from_environment(cfg.device, cfg.batch_size)
    data, samples = (_music if args.domain == "music" else _speech)(args, cfg)
    check_fits(cfg, args.domain, data)
    run_id = default_run_id(args.domain, data, cfg, args.name)
    if world.active:     # its noise streams differ from one process's: another run, another id
        run_id += f"-{world.size}proc"
    command = "python -m srnn.experiment " + " ".join(shlex.quote(a) for a in _without_places(argv))
    record = run_experiment(cfg, data, run_id, args.domain, runs_root=args.runs,
                            results_root=args.results, iwae_samples=args.iwae_samples, test_paths=args.test_paths,
                            profile=args.profile, command=command, allow_dirty=args.allow_dirty,
                            write_samples=samples, progress=world.main, wait_busy=wait_busy)
    return record, f"{args.results}/{args.domain}/{run_id}"


@command_line
def main(argv: list[str], prog: str = "python -m srnn.experiment", wait_busy: bool = False) -> int:
    record, folder = run_command(argv, prog, wait_busy)
    if not record:                          # rank 0 alone reports
        return 0
    t = record["test"]
    se = f" ± {t['elbo_per_step_seq_se']:.4f}" if "elbo_per_step_seq_se" in t else ""
    print(f"{record['id']}: test ELBO per step {t['elbo_per_step_seq']:.4f}{se} (mean over sequences, "
          f"{t['paths']} sample path{'s' if t['paths'] > 1 else ''}), "
          f"{t['elbo_per_step']:.4f} (over all steps)"
          + (f"; IWAE K={t['iwae_samples']} {t['iwae_per_step_seq']:.4f}" if "iwae_samples" in t else "")
          + f"; record in {folder}")
    for warning in record["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
