"""`pip install .` (not editable) carries the shipped data: installed into a folder of its
own and run from another one, the package loads JSB Chorales, lists the speech sample and
writes a MIDI file, with no network and no cache to fall back on."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from srnn.datasets import midi, music, registry, speech_corpora
from srnn.datasets.registry import DataError

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "srnn", "data")

# Run by the installed package: what it found, for the test to compare with the checkout.
SCRIPT = """
import hashlib, json, sys
from pathlib import Path
import srnn
from srnn.datasets import midi
from srnn.datasets import music
from srnn.datasets import registry
from srnn.datasets import speech_corpora
from srnn.pretrained import load_pretrained

out = Path(sys.argv[1])
npz = registry.fetch(music.DATASETS["jsb"]["npz"])
jsb = music.dataset("jsb", "npz")                  # the verified file, its content checked
first = music.pieces("jsb", "npz", "test")[0]
written = midi.write_midi(out / "first.mid", first)
import torch
torch.manual_seed(0)
model = load_pretrained("jsb")                      # the shipped model, verified by its sha256
generated = midi.write_midi(out / "generated.mid", model.generate(16, batch_size=1)[0].numpy())
sample = speech_corpora.sample()
sums = (sample.root.parent / "SHA256SUMS").read_text().split()
bad = [name for digest, name in zip(sums[::2], sums[1::2])
       if hashlib.sha256((sample.root.parent / name).read_bytes()).hexdigest() != digest]
print(json.dumps({"srnn": str(Path(srnn.__file__).resolve()), "npz": str(npz.resolve()),
                  "fingerprint": jsb.fingerprint["test"], "midi": str(written),
                  "sample": [[r.key, r.split] for r in sample.recordings], "root": str(sample.root.resolve()),
                  "checked": len(sums) // 2, "bad": bad, "generated": generated.stat().st_size}))
"""


def _copy_sources(dest: Path) -> list[str]:
    """What a clone holds of the package and its data (tracked and new files, not ignored
    ones such as __pycache__ or runs/), copied to ``dest``; the data files, relative to data/."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                                 *SOURCES], cwd=ROOT, capture_output=True, check=True).stdout.decode()
        files = [f for f in listed.split("\0") if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):     # not a git checkout: take the folders as they are
        files = [str(p.relative_to(ROOT)) for s in SOURCES for p in [ROOT / s, *(ROOT / s).rglob("*")]
                 if p.is_file() and "__pycache__" not in p.parts]
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    return sorted(Path(f).relative_to("data").as_posix() for f in files if Path(f).parts[0] == "data")


def test_non_editable_install_carries_the_shipped_data(tmp_path):
    source, target, elsewhere, cache = (tmp_path / n for n in ("source", "site", "elsewhere", "cache"))
    for folder in (source, elsewhere, cache):
        folder.mkdir()
    data_files = _copy_sources(source)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1", "OMP_NUM_THREADS": "1"}
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                            "--no-build-isolation", "--target", str(target), str(source)],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]

    # Only the installed copy: no checkout on the path, no cache, and any download refused at once.
    env = {k: v for k, v in env.items() if k.lower() not in ("no_proxy", "pythonhome")}
    env.update(PYTHONPATH=str(target), SRNN_CACHE=str(cache), http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(elsewhere)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])

    installed = target.resolve() / "srnn"
    assert Path(found["srnn"]).parent == installed                  # the installed package, not the checkout
    assert Path(found["npz"]).is_relative_to(installed) and not any(cache.iterdir())
    test_pieces = music.pieces("jsb", "npz", "test")
    assert found["fingerprint"] == music.fingerprint(test_pieces)
    assert Path(found["midi"]).read_bytes() == midi.midi_bytes(test_pieces[0])
    assert Path(found["root"]).is_relative_to(installed)
    assert found["sample"] == [[r.key, r.split] for r in speech_corpora.sample().recordings]
    assert found["checked"] == len(found["sample"]) > 0 and found["bad"] == []
    assert found["generated"] > 0                                    # a MIDI file from the pretrained model
    command = subprocess.run([str(target / "bin" / "srnn"), "settings"], cwd=elsewhere, env=env,
                             capture_output=True, text=True, timeout=120)
    assert command.returncode == 0 and "  batch_size " in command.stdout     # the console script

    # The wheel carries the data folders, byte for byte, inside the package, and nothing
    # else of the repository's top level (no data/, runs/ or results/ in site-packages).
    top = sorted(p.name for p in target.iterdir() if p.name != "bin")
    assert top[0] == "srnn" and len(top) == 2 and top[1].startswith("srnn-") and top[1].endswith(".dist-info")
    shipped_root = Path(found["npz"]).parents[1]
    shipped = sorted(p.relative_to(shipped_root).as_posix() for p in shipped_root.rglob("*") if p.is_file())
    assert shipped == [f for f in data_files if f.split("/")[0] in registry.SHIPPED]
    assert all((shipped_root / f).read_bytes() == (ROOT / "data" / f).read_bytes() for f in shipped)


def test_data_dir_prefers_the_clone_then_the_installed_copy(tmp_path, monkeypatch):
    clone, installed = tmp_path / "data", tmp_path / "srnn" / "_data"
    monkeypatch.setattr(registry, "CHECKOUT_DATA", clone)
    monkeypatch.setattr(registry, "INSTALLED_DATA", installed)
    clone.mkdir()                                   # a stray data/ without the shipped folders
    (installed / "speech").mkdir(parents=True)
    assert registry._shipped_data() == installed
    (clone / "jsb").mkdir()
    assert registry._shipped_data() == clone
    monkeypatch.setattr(registry, "DATA_DIR", installed)
    assert registry.data_dir() == installed and "reinstall the package" in registry.restore_hint("jsb/x")
    (installed / "speech").rmdir()
    both = f"neither {re.escape(str(clone))} .* nor {re.escape(str(installed))} .*holds jsb, speech"
    with pytest.raises(DataError, match=both):
        registry.data_dir()
    with pytest.raises(DataError, match="neither"):
        speech_corpora.sample()
