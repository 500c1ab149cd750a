"""A GPU's TF32 switches, set for what runs inside a ``with tf32(...)`` and restored after.

PyTorch's defaults let cuDNN, and so the GRUs, compute in TF32 on a GPU that has it (Ampere
and later), while matrix products stay fp32. Precision ``fp32`` turns both off, so that a
run's GRUs are fp32 too; ``tf32`` turns both on. Evaluation always runs with both off.
"""
from __future__ import annotations

import contextlib

import torch


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 products and cuDNN kernels inside when ``enabled``, fp32 ones otherwise."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before
