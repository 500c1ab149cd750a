"""Piano rolls as music: a Standard MIDI File writer and a small additive synthesizer.

A roll is (T, 88) with column j = MIDI note j + 21 (as in :mod:`srnn.datasets.music`); a key is
down where the value exceeds 0.5, and a run of consecutive active steps is one held
note (a piano roll cannot tell a held note from a repeated one). One roll step lasts
``step_seconds``.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..files import write_atomic

KEYS, LOWEST_NOTE = 88, 21
TICKS_PER_STEP = 480  # the file's division: one roll step is written as one quarter note


def notes(roll) -> list[tuple[int, int, int]]:
    """(MIDI note, first step, step after the last) for every run of active steps, by onset."""
    active = np.asarray(roll) > 0.5
    if active.ndim != 2 or active.shape[1] != KEYS:
        raise ValueError(f"a piano roll must be (T, {KEYS}) with column j = MIDI note j + 21, "
                         f"got shape {active.shape}")
    edges = np.diff(active.astype(np.int8), axis=0, prepend=0, append=0)  # (T + 1, 88)
    starts, ends = np.nonzero(edges.T == 1), np.nonzero(edges.T == -1)
    runs = [(int(k) + LOWEST_NOTE, int(s), int(e)) for k, s, e in zip(starts[0], starts[1], ends[1])]
    return sorted(runs, key=lambda run: (run[1], run[0]))


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(roll, step_seconds: float = 0.25, velocity: int = 80) -> bytes:
    """A format-0 Standard MIDI File: header, then one track with the tempo, a piano
    program change, note-on/note-off pairs on channel 1 and the end-of-track event."""
    tempo = round(step_seconds * 1e6)  # microseconds per quarter note = per roll step
    if not 0 < tempo < 1 << 24:
        raise ValueError(f"step_seconds must lie in (0, 16.7) s, got {step_seconds}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"velocity must lie in 1..127, got {velocity}")
    events = []  # (tick, order, bytes): note-offs sort before note-ons at the same tick
    for note, start, end in notes(roll):
        events.append((start * TICKS_PER_STEP, 1, bytes((0x90, note, velocity))))
        events.append((end * TICKS_PER_STEP, 0, bytes((0x80, note, 64))))
    track = bytearray(b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big") + b"\x00\xc0\x00")
    tick = 0
    for when, _, message in sorted(events):
        track += _varlen(when - tick) + message
        tick = when
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_STEP)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def write_midi(path: str | Path, roll, step_seconds: float = 0.25, velocity: int = 80) -> Path:
    """Write :func:`midi_bytes` to ``path`` (a .mid any player or notation program opens)."""
    return write_atomic(path, midi_bytes(roll, step_seconds, velocity))


def synthesize(roll, step_seconds: float = 0.25, sample_rate: int = 16000, harmonics: int = 6,
               attack: float = 0.01, release: float = 0.2) -> np.ndarray:
    """A mono float32 waveform in [-1, 1] (peak 0.9 unless silent).

    Each note is a sum of harmonics k f0 with amplitude 1/k (those below Nyquist), with
    f0 = 440 * 2 ** ((note - 69) / 12), shaped by a linear attack, an exponential decay
    that is faster for higher harmonics (like a struck string), and a linear release
    after the key goes up.
    """
    if step_seconds <= 0 or sample_rate <= 0 or attack <= 0 or release <= 0 or harmonics < 1:
        raise ValueError("step_seconds, sample_rate, attack, release and harmonics must be positive")
    played = notes(roll)
    length = round((len(np.asarray(roll)) * step_seconds + release) * sample_rate)
    audio = np.zeros(length, np.float64)
    for note, start, end in played:
        f0 = 440.0 * 2.0 ** ((note - 69) / 12)
        held = (end - start) * step_seconds
        t = np.arange(round((held + release) * sample_rate)) / sample_rate
        envelope = np.minimum(t / attack, 1.0) * np.clip(1.0 - (t - held) / release, 0.0, 1.0)
        tone = sum(np.sin(2 * np.pi * k * f0 * t) * np.exp(-t * (0.8 + 0.6 * k)) / k
                   for k in range(1, harmonics + 1) if k * f0 < sample_rate / 2)
        first = round(start * step_seconds * sample_rate)
        piece = (envelope * tone)[:length - first]
        audio[first:first + len(piece)] += piece
    peak = np.abs(audio).max(initial=0.0)
    return (audio * (0.9 / peak) if peak > 0 else audio).astype(np.float32)
