"""MIDI writing (parsed back by an independent reader) and the synthesizer."""
import struct

import numpy as np
import pytest
import soundfile

from srnn import midi, music
from srnn.audio import write_wav


def _roll(T=8):
    roll = np.zeros((T, 88), np.float32)
    roll[0:3, 60 - 21] = 1   # C4 held for 3 steps
    roll[5:6, 60 - 21] = 1   # C4 struck again
    roll[2:8, 64 - 21] = 1   # E4 held to the end
    roll[7, 87] = 1          # C8, the top key, in the last step
    return roll


def _read_varlen(data, i):
    value = 0
    while True:
        byte = data[i]
        i += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, i


def _parse(data):
    """(division, tempo, [(tick, kind, note)]) from a format-0 file, checking its framing."""
    assert data[:4] == b"MThd"
    length, fmt, tracks, division = struct.unpack(">IHHH", data[4:14])
    assert (length, fmt, tracks) == (6, 0, 1)
    assert data[14:18] == b"MTrk"
    (size,) = struct.unpack(">I", data[18:22])
    assert len(data) == 22 + size
    i, tick, tempo, events = 22, 0, None, []
    while i < len(data):
        delta, i = _read_varlen(data, i)
        tick += delta
        status = data[i]
        if status == 0xFF:
            kind, (n, i) = data[i + 1], _read_varlen(data, i + 2)
            if kind == 0x51:
                tempo = int.from_bytes(data[i:i + n], "big")
            events.append((tick, "meta", kind))
            i += n
        elif status >> 4 == 0xC:
            i += 2
        else:
            assert status >> 4 in (0x8, 0x9)
            on = status >> 4 == 0x9 and data[i + 2] > 0
            events.append((tick, "on" if on else "off", data[i + 1]))
            i += 3
    assert events[-1][1:] == ("meta", 0x2F)  # end of track
    return division, tempo, events


def test_varlen_matches_the_smf_examples():
    for value, encoded in [(0, "00"), (0x40, "40"), (0x7F, "7F"), (0x80, "8100"), (0x2000, "C000"),
                           (0x3FFF, "FF7F"), (0x4000, "818000"), (0x0FFFFFFF, "FFFFFF7F")]:
        assert midi._varlen(value) == bytes.fromhex(encoded)


def test_notes_are_runs_of_active_steps():
    assert midi.notes(_roll()) == [(60, 0, 3), (64, 2, 8), (60, 5, 6), (108, 7, 8)]


def test_midi_round_trip(tmp_path):
    path = midi.write_midi(tmp_path / "a.mid", _roll(), step_seconds=0.125)
    division, tempo, events = _parse(path.read_bytes())
    assert tempo == 125_000 and division == midi.TICKS_PER_STEP
    ons = [(t // division, n) for t, kind, n in events if kind == "on"]
    offs = [(t // division, n) for t, kind, n in events if kind == "off"]
    assert sorted(ons) == [(0, 60), (2, 64), (5, 60), (7, 108)]
    assert sorted(offs) == [(3, 60), (6, 60), (8, 64), (8, 108)]


def test_a_real_piece_round_trips():
    roll = music.pieces("jsb", "classic", "test")[0]
    _, _, events = _parse(midi.midi_bytes(roll))
    assert sum(kind == "on" for _, kind, _ in events) == len(midi.notes(roll)) > 50


def test_synthesized_audio(tmp_path):
    audio = midi.synthesize(_roll(), step_seconds=0.25, sample_rate=8000, release=0.2)
    assert audio.dtype == np.float32 and len(audio) == round((8 * 0.25 + 0.2) * 8000)
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1 and np.abs(audio).max() > 0.5
    path = write_wav(tmp_path / "a.wav", audio, 8000)
    back, rate = soundfile.read(path)
    assert rate == 8000 and len(back) == len(audio) and np.abs(back - audio).max() < 1e-3


def test_one_key_sounds_at_its_pitch():
    roll = np.zeros((8, 88), np.float32)
    roll[:, 69 - 21] = 1  # A4
    audio = midi.synthesize(roll, step_seconds=0.25, sample_rate=16000)
    spectrum = np.abs(np.fft.rfft(audio[:16000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spectrum.argmax()] == pytest.approx(440, abs=1)


def test_silence_and_bad_input():
    assert not midi.synthesize(np.zeros((4, 88))).any()
    with pytest.raises(ValueError, match=r"\(T, 88\)"):
        midi.midi_bytes(np.zeros((4, 12)))
    with pytest.raises(ValueError, match="step_seconds"):
        midi.midi_bytes(_roll(), step_seconds=20)
