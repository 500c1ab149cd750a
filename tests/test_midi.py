"""MIDI writing (read back by mido, an independent reader) and the synthesizer."""
import mido
import numpy as np
import pytest
import soundfile

from srnn.datasets import midi, music
from srnn.datasets.audio import write_wav


def _roll(T=8):
    roll = np.zeros((T, 88), np.float32)
    roll[0:3, 60 - 21] = 1   # C4 held for 3 steps
    roll[5:6, 60 - 21] = 1   # C4 struck again
    roll[2:8, 64 - 21] = 1   # E4 held to the end
    roll[7, 87] = 1          # C8, the top key, in the last step
    return roll


def _parse(path):
    """(division, tempo, [(tick, kind, note)]) read back by mido, an independent MIDI reader."""
    song = mido.MidiFile(path)
    assert song.type == 0 and len(song.tracks) == 1
    tick, tempo, events = 0, None, []
    for message in song.tracks[0]:
        tick += message.time
        if message.type == "set_tempo":
            tempo = message.tempo
        elif message.type in ("note_on", "note_off"):
            on = message.type == "note_on" and message.velocity > 0
            events.append((tick, "on" if on else "off", message.note))
    assert song.tracks[0][-1].type == "end_of_track"
    return song.ticks_per_beat, tempo, events


def test_varlen_matches_the_smf_examples():
    for value, encoded in [(0, "00"), (0x40, "40"), (0x7F, "7F"), (0x80, "8100"), (0x2000, "C000"),
                           (0x3FFF, "FF7F"), (0x4000, "818000"), (0x0FFFFFFF, "FFFFFF7F")]:
        assert midi._varlen(value) == bytes.fromhex(encoded)


def test_notes_are_runs_of_active_steps():
    assert midi.notes(_roll()) == [(60, 0, 3), (64, 2, 8), (60, 5, 6), (108, 7, 8)]


def test_midi_round_trip(tmp_path):
    path = midi.write_midi(tmp_path / "a.mid", _roll(), step_seconds=0.125)
    division, tempo, events = _parse(path)
    assert tempo == 125_000 and division == midi.TICKS_PER_STEP
    ons = [(t // division, n) for t, kind, n in events if kind == "on"]
    offs = [(t // division, n) for t, kind, n in events if kind == "off"]
    assert sorted(ons) == [(0, 60), (2, 64), (5, 60), (7, 108)]
    assert sorted(offs) == [(3, 60), (6, 60), (8, 64), (8, 108)]


def test_a_real_piece_round_trips(tmp_path):
    roll = music.pieces("jsb", "classic", "test")[0]
    _, _, events = _parse(midi.write_midi(tmp_path / "piece.mid", roll))
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
