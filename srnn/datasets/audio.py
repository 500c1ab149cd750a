"""Reading and writing audio for the raw-waveform experiments (supplementary section 1.1).

Everything goes through libsndfile (the ``soundfile`` package), which recognises a file
by its header, not its name: WAV/RIFF, FLAC, MP3, OGG and NIST SPHERE (the TIMIT
``.WAV`` files) all read the same way. The experiments want 16 kHz mono, so several
channels are averaged into one and other rates are resampled by libsoxr (the ``soxr``
package, very high quality); :class:`Audio` says which of the two happened, and
whether averaging the channels cancelled them out (stereo channels in anti-phase average to
near silence).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..errors import UserError
from ..files import write_atomic

SAMPLE_RATE = 16000          # Hz, TIMIT and Blizzard as the paper used them
INT16_SCALE = 32768.0        # float samples in [-1, 1) <-> 16-bit PCM
CANCELLED_BELOW = 0.1        # mix_rms_ratio under this: the channels cancelled out


class AudioError(UserError, ValueError):
    """A file that cannot be decoded; the message names the file and the fix."""


@dataclass
class Audio:
    """Mono samples (float32 in [-1, 1]) at ``sample_rate``, and what reading did to them."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    source_channels: int
    mix_rms_ratio: float = 1.0    # RMS of the mono mix / mean RMS of the channels (1 for mono)

    @property
    def downmixed(self) -> bool:
        return self.source_channels > 1

    @property
    def resampled(self) -> bool:
        return self.source_rate != self.sample_rate

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Decode ``path`` to mono float32 at ``sample_rate``.

    Raises :class:`AudioError` naming the file when libsndfile cannot decode it or when it
    holds NaN or infinite samples (a float WAV can), which are not audio.
    """
    path = Path(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(_unreadable_message(path, e)) from e
    bad = int(np.count_nonzero(~np.isfinite(samples)))
    if bad:                       # a float file can hold them; as 16-bit PCM they would become silence
        raise AudioError(f"audio file {path} holds {bad} NaN or infinite sample(s) of {samples.size}: it is "
                         f"damaged, not audio. Fix: export it again, or pass --skip-bad (skip_bad=True in "
                         f"Python) to leave such files out (each is listed in the manifest).")
    channels = samples.shape[1]
    if channels == 1:
        return Audio(resample(samples[:, 0], rate, sample_rate), sample_rate, rate, 1)
    mono = samples.mean(axis=1, dtype=np.float32)
    channel_rms = float(np.mean(_rms(samples)))
    ratio = float(_rms(mono)) / channel_rms if channel_rms > 0 else 1.0
    return Audio(resample(mono, rate, sample_rate), sample_rate, rate, channels, ratio)


RESAMPLER = "soxr VHQ"      # named in a prepared folder's settings: another resampler, another folder


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resampling from ``rate`` to ``target`` Hz by libsoxr at its very high quality
    (what leaks through from above the new Nyquist frequency stays far below the 16-bit
    floor the data is stored at); float32 out, unchanged when the rates agree."""
    if rate == target:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), rate, target, quality="VHQ").astype(np.float32)


def to_int16(samples: np.ndarray) -> tuple[np.ndarray, int]:
    """16-bit PCM of float samples, and how many samples had to be clipped to fit."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * INT16_SCALE)
    clipped = int(np.count_nonzero((scaled < -32768) | (scaled > 32767)))
    return np.clip(scaled, -32768, 32767).astype(np.int16), clipped


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono float samples as a 16-bit PCM WAV file (clipped to [-1, 1]), atomically."""
    pcm, _ = to_int16(np.ravel(samples))
    buffer = io.BytesIO()
    sf.write(buffer, pcm, sample_rate, format="WAV", subtype="PCM_16")
    return write_atomic(path, buffer.getvalue())


def _rms(samples: np.ndarray) -> np.ndarray:
    """Root mean square over time (axis 0): one value per channel."""
    return np.sqrt(np.mean(np.square(samples, dtype=np.float64), axis=0))


def _unreadable_message(path: Path, error: Exception) -> str:
    try:
        head = path.read_bytes()[:1024]
    except OSError:
        head = b""
    hint = "check that it is a complete audio file (wav, flac, mp3, ogg or NIST SPHERE)"
    if head.startswith(b"NIST_1A") and b"shorten" in head:
        hint = ("it is shorten-compressed NIST SPHERE, which libsndfile cannot decode; "
                "convert it to plain SPHERE or WAV first, e.g. `sph2pipe -f wav in.wav out.wav`")
    return (f"cannot read audio file {path}: {error}. Fix: {hint}, or pass --skip-bad "
            f"(skip_bad=True in Python) to leave such files out (each is listed in the manifest).")
