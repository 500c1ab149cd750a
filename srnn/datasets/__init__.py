"""The data as the models see it: batches and their carried state (``batching``); the four
music sets, verified against a registry of files and fingerprints (``music``, ``registry``),
with MIDI in and out (``midi``); speech as 200-sample frames of 16 kHz audio: corpora found
on disk (``speech_corpora``), prepared once (``speech_prepare``, reading and writing audio in
``audio``) and loaded as a data set (``speech``).

Not ``srnn.data``: the repository's top-level ``data/`` folder is installed as ``srnn._data``."""
