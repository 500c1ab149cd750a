"""The paper's numbers: the test bounds of its Table 1 (speech) and Table 2 (music), and
the baselines its Table 1 quotes. The comparisons in :mod:`srnn.records.tables` set our
records beside these; nothing here is computed.
"""
from __future__ import annotations

# The paper's Table 2 (music, log-likelihood bound per time step) and Table 1 (speech,
# average log-likelihood bound: per 0.5 s sequence for Blizzard, per utterance for TIMIT).
PAPER_MUSIC = {"piano": -8.20, "nottingham": -2.94, "muse": -6.28, "jsb": -4.74}
PAPER_SPEECH = {
    "smooth+Resq": {"blizzard": 11991, "timit": 60550},
    "smooth": {"blizzard": 10991, "timit": 59269},
    "filt+Resq": {"blizzard": 10572, "timit": 52126},
    "filt": {"blizzard": 10846, "timit": 50524},
}
# The baselines the paper's Table 1 quotes from Chung et al. (2015), beside the variant of
# ours that is the same model.
PAPER_SPEECH_BASELINES = {
    "VRNN-Gauss": ("VRNN", {"blizzard": 9223, "timit": 28805}),
    "VRNN-I-Gauss": ("VRNN-I", {"blizzard": 8933, "timit": 28340}),
    "VRNN-GMM": ("VRNN-GMM", {"blizzard": 9107, "timit": 28982}),
    "RNN-GMM": ("RNN-GMM", {"blizzard": 7413, "timit": 26643}),
    "RNN-Gauss": ("RNN", {}),
}
MUSIC_NAMES = {"jsb": "JSB Chorales", "nottingham": "Nottingham", "muse": "MuseData",
               "piano": "Piano-midi.de"}

