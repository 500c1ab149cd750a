"""Training and evaluation: the training loop (``train``, with its schedules in ``schedule``
and its on-device sums in ``tally``), the bounds on held-out data (``evaluate``),
checkpoints bound to their config and data (``checkpoint``), several processes under
torchrun (``distributed``) and the reduced precisions on a GPU (``precision``)."""
