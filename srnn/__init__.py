"""SRNN (Fraccaro et al., NIPS 2016) in PyTorch, with the book that reruns the paper.

The subpackages are the parts a reader of the paper looks for: :mod:`srnn.models` (SRNN and
its baselines), :mod:`srnn.datasets` (music and speech as batches), :mod:`srnn.training`
(training, evaluation, checkpoints), :mod:`srnn.records` (the committed records and the
paper's numbers), :mod:`srnn.book` (what the book's pages call) and :mod:`srnn.testing`
(the independent references the tests check the models against). The modules at the top
are the commands (``python -m srnn.experiment``, ``srnn.results``, ``srnn.runner``,
``srnn.speech``, ``srnn.pretrained``, the ``srnn`` command in ``cli``) and the plumbing
everything shares (``config``, ``errors``, ``files``). Imports run only downward, in that
order: plumbing, then models, datasets and testing, training, records, the experiment, the
book, the other commands.
"""
