"""srnn.datasets.audio: decoding any format to 16 kHz mono, and writing WAV."""
import numpy as np
import pytest
import soundfile as sf

from srnn.datasets.audio import AudioError, read_audio, resample, to_int16, write_wav


def tone(freq, seconds, rate, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def peak_hz(samples, rate):
    spectrum = np.abs(np.fft.rfft(samples))
    return np.argmax(spectrum) * rate / len(samples)


@pytest.mark.parametrize("fmt", ["FLAC", "MP3", "WAV"])
def test_stereo_44k_is_downmixed_and_resampled_keeping_the_pitch(tmp_path, fmt):
    path = tmp_path / f"a.{fmt.lower()}"
    sf.write(path, tone(440, 1.0, 44100, channels=2), 44100, format=fmt)
    audio = read_audio(path)
    assert (audio.sample_rate, audio.source_rate, audio.source_channels) == (16000, 44100, 2)
    assert audio.downmixed and audio.resampled
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - 1.0) < 0.1          # mp3 adds encoder padding
    assert abs(peak_hz(audio.samples, 16000) - 440) < 3


def test_nist_sphere_reads_back_exactly(tmp_path):
    pcm = np.random.default_rng(0).integers(-3000, 3000, 4000).astype(np.int16)
    path = tmp_path / "SA1.WAV"
    sf.write(path, pcm, 16000, format="NIST", subtype="PCM_16")
    assert path.read_bytes().startswith(b"NIST_1A")
    audio = read_audio(path)
    assert not audio.downmixed and not audio.resampled
    np.testing.assert_array_equal(to_int16(audio.samples)[0], pcm)


def test_unreadable_file_names_the_file_and_the_fix(tmp_path):
    path = tmp_path / "SX38.WAV"
    path.write_bytes(b"NIST_1A\n   1024\nthis is not a header")
    with pytest.raises(AudioError, match=r"SX38\.WAV.*skip_bad=True"):
        read_audio(path)
    shorten = tmp_path / "wsj.wv1"
    shorten.write_bytes(b"NIST_1A\n   1024\nsample_coding -s26 pcm,embedded-shorten-v2.00\nend_head\n")
    with pytest.raises(AudioError, match="sph2pipe"):
        read_audio(shorten)


def test_resample_keeps_length_ratio_and_identity():
    x = np.random.default_rng(1).standard_normal(44100).astype(np.float32)
    assert len(resample(x, 44100, 16000)) == 16000
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)


def test_resampling_keeps_what_lies_above_the_new_nyquist_frequency_below_the_16_bit_floor():
    """A 10 kHz tone at 44.1 kHz has no place at 16 kHz (Nyquist 8 kHz): what leaks through,
    relative to a full-scale 1 kHz tone, must stay below 16-bit quantization (-98 dB);
    scipy's resample_poly let -57 dB through."""
    t = np.arange(2 * 44100) / 44100
    def level(x):
        x = x[2000:-2000].astype(np.float64)
        return np.abs(np.fft.rfft(x * np.hanning(len(x)))).max()
    leak = level(resample(np.sin(2 * np.pi * 10000 * t).astype(np.float32), 44100, 16000))
    kept = level(resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 44100, 16000))
    assert 20 * np.log10(leak / kept) < -98


def test_to_int16_counts_clipping_and_write_wav_round_trips(tmp_path):
    pcm, clipped = to_int16(np.array([0.0, 0.5, -1.0, 1.0, 2.0, -3.0]))
    assert list(pcm) == [0, 16384, -32768, 32767, 32767, -32768] and clipped == 3
    x = tone(300, 0.25, 16000)
    path = write_wav(tmp_path / "out" / "x.wav", x)
    back, rate = sf.read(path, dtype="float32")
    info = sf.info(path)
    assert (rate, info.format, info.subtype) == (16000, "WAV", "PCM_16")
    np.testing.assert_allclose(back, x, atol=1 / 32768)
