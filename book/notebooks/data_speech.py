# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Raw speech
#
# SRNN models speech as raw audio, without any spectral features (section 5 and
# supplementary section 1.1 of {cite:t}`fraccaro2016srnn`). The paper's corpora are
# Blizzard {cite:p}`king2013blizzard` and TIMIT {cite:p}`garofolo1993timit`, both
# licensed; the repository embeds a small sample of LibriSpeech {cite:p}`panayotov2015`
# (CC BY 4.0, `data/speech/`) that goes through exactly the same pipeline. This page
# follows the sample from the audio files to the batches the model trains on.

# %% tags=["parameters"]
profile = "smoke"
runs_dir = "runs/smoke"   # the prepared sample is written under <runs_dir>/data
seconds = 2.0             # length of the excerpt shown and played

# %% tags=["remove-input"]
from itertools import islice
from pathlib import Path

import numpy as np
from IPython.display import Audio, display
from myst_nb import glue

from srnn.book.plots import markdown_table, waveforms
from srnn.datasets import speech

prepared = speech.prepare_sample(Path(runs_dir) / "data")
data = speech.load_prepared(prepared, batch_size=16)
manifest, rate, frame = data.manifest, data.sample_rate, data.samples_per_step

# %% [markdown]
# ## Preparation
#
# Every recording is decoded to 16 kHz mono, trimmed to a whole number of 200-sample
# frames and stored once as 16-bit samples, split by file into training, validation and
# test recordings. The mean and standard deviation of the *training* samples normalize
# every split.

# %% tags=["remove-input"]
rows = [(split, len(info["recordings"]), f"{info['seconds']:.1f}", f"{info['steps']:,}", info["chunks"])
        for split, info in manifest["splits"].items()]
for split, info in manifest["splits"].items():
    glue(f"{split}_seconds", info["seconds"], display=False)
glue("mean", data.mean, display=False)
glue("std", data.std, display=False)
markdown_table(["split", "recordings", "seconds", "frames of 200 samples", "2 s chunks"], rows,
               caption=f"The embedded LibriSpeech sample after preparation ({manifest['split_rule']}).",
               name="tab-speech-splits")

# %% [markdown]
# ## Frames
#
# One step of the model is one frame $x_t \in \mathbb{R}^{200}$: 200 consecutive samples,
# 12.5 ms of audio. The model predicts each frame from the previous one, $u_t = x_{t-1}$,
# so it has to model the waveform inside a frame through the 200-dimensional factorized
# Gaussian of its emission, and across frames through its states. {cite:t}`dai2019`
# point out that a latent variable lets such a model capture the correlation *within* a
# frame, which a deterministic RNN with the same factorized output cannot, and that with
# an autoregressive output inside the frame plain RNNs match or beat the latent models.
# One of their checks shuffles the samples inside every frame with one fixed permutation
# (`permute_seed` of `srnn.datasets.speech_prepare.prepare`).

# %%
pcm = np.memmap(prepared / manifest["splits"]["train"]["file"], dtype=np.int16, mode="r")
n = int(seconds * rate)
excerpt = np.asarray(pcm[:n], dtype=np.float32) / 32768.0
frames = (excerpt - data.mean) / data.std            # what the model sees, in frames below
x = frames.reshape(-1, frame)
print(f"{seconds} s of audio = {len(x)} frames of {frame} samples; normalized mean {frames.mean():+.3f}, "
      f"std {frames.std():.3f}")

# %% mystnb={"figure": {"caption": "The first seconds of the training audio of the embedded sample.", "name": "fig-speech-excerpt"}}
waveforms([excerpt], [f"first {seconds} s of the training split"], rate)

# %% mystnb={"figure": {"caption": "Zoom: 0.1 s of audio, gray lines every 200 samples (12.5 ms), the boundaries of x_t.", "name": "fig-speech-zoom"}}
waveforms([excerpt[: rate // 10]], ["0.1 s = 8 frames"], rate, frame=frame)

# %% [markdown]
# The excerpt as recorded, and rebuilt from the normalized frames by
# `SpeechData.waveform`, which undoes the normalization; the two must sound the same:

# %%
rebuilt = data.waveform(x[None])[0]
glue("rebuild_error", float(np.abs(rebuilt - excerpt).max()), display=False)
display(Audio(excerpt, rate=rate))
display(Audio(rebuilt, rate=rate))

# %% [markdown]
# ## Chunks and windows
#
# Training cuts the audio into 2 s chunks of 160 frames. Backpropagation runs over 0.5 s
# windows of 40 frames: the state starts at zero for the first window of a chunk and is
# carried into the next three, so each chunk gives four updates
# (`srnn.datasets.batching.ChunkBatches`). The figure marks the windows of one chunk.

# %% mystnb={"figure": {"caption": "One 2 s training chunk; the gray lines split it into the four 0.5 s windows of truncated backpropagation.", "name": "fig-speech-windows"}}
windows = [b.to("cpu").x[0].numpy() for b in islice(data.train.batches(0), data.train.windows_per_chunk)]
chunk = data.waveform(np.concatenate(windows))
waveforms([chunk], [f"a chunk of {len(chunk) // frame} frames in windows of {len(windows[0])}"], rate,
          frame=frame * len(windows[0]))

# %% [markdown]
# Test sequences are scored in one pass each (`test_pass="whole"`, the original code's
# TIMIT test): the backward GRU sees the whole sequence, its first frame is only an input,
# and the bound is summed over the frames scored: a 0.5 s piece for Blizzard and for this
# sample, a whole utterance for TIMIT. Validation cuts the same kind of sequences into
# windows, each starting from a zero state.
