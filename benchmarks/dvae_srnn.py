"""The DVAE project's SRNN (Bie et al., github.com/XiaoyuBIE1994/DVAE, GPL-3.0) at a preset's
sizes, for ``update_time.py --dvae PATH``: the goal for the package's CPU update is at least
its speed on the same machine. It is not part of this project: the user's own clone at PATH
is loaded at run time, and only its model file, ``dvae/model/srnn.py``.

Its SRNN differs from the paper's: LSTMs where the paper has GRUs, one hidden layer shared by
each head's mean and log-variance, an MLP on [h_t, x_t] before the backward RNN, plain ReLU.
Sized as below, an update of it takes about as many floating-point operations as the
package's (the benchmark counts and prints both), so the comparison is one of execution.
"""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import torch
import torch.nn.functional as F

from srnn.config import Config
from srnn.errors import UserError

MODEL_FILE = Path("dvae", "model", "srnn.py")


def load(path: Path):
    """The module ``dvae/model/srnn.py`` of the DVAE clone at ``path``."""
    file = Path(path) / MODEL_FILE
    if not file.is_file():
        raise UserError(f"--dvae {path}: no {MODEL_FILE} there; give the folder of a clone of "
                        f"https://github.com/XiaoyuBIE1994/DVAE")
    spec = importlib.util.spec_from_file_location("dvae_model_srnn", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def version(path: Path) -> dict:
    """Where the DVAE code came from: its folder and git commit (None outside a git clone)."""
    git = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {"path": str(Path(path).resolve()), "commit": git.stdout.strip() if git.returncode == 0 else None}


def sizes(cfg: Config) -> dict:
    """DVAE's constructor arguments for the preset's sizes: phi's layers before each RNN, the
    RNNs as wide as d_t, one hidden layer of mlp_dim in each head, the emission's layers."""
    m = cfg.mlp_dim
    return dict(x_dim=cfg.x_dim, z_dim=cfg.z_dim, activation="relu", dense_x_h=[m] * cfg.phi_layers,
                dim_RNN_h=cfg.d_dim, dense_hx_g=[m] * cfg.phi_layers, dim_RNN_g=cfg.d_dim,
                dense_gz_z=[m], dense_hz_z=[m], dense_hz_x=[m] * cfg.emission_layers)


def build(module, cfg: Config, device: torch.device) -> torch.nn.Module:
    return module.SRNN(**sizes(cfg), device=device).to(device)


def loss(model, x, u, noise, bernoulli: bool):
    """The negative ELBO per step of DVAE's SRNN on x (batch, steps, x_dim): its output as
    Bernoulli logits (music) or a unit-variance Gaussian mean (speech), and the analytic KL
    between its posterior and prior. It draws its own noise (``u`` and ``noise`` unused)."""
    x_t = x.transpose(0, 1)                                  # DVAE's layout: (steps, batch, x_dim)
    y = model(x_t)
    if bernoulli:
        ll = -F.binary_cross_entropy_with_logits(y, x_t, reduction="sum")
    else:
        ll = -0.5 * ((y - x_t) ** 2).sum()
    q_mu, q_logvar, p_mu, p_logvar = model.z_mean, model.z_logvar, model.z_mean_p, model.z_logvar_p
    kl = 0.5 * (p_logvar - q_logvar + (q_logvar.exp() + (q_mu - p_mu) ** 2) / p_logvar.exp() - 1).sum()
    return -(ll - kl) / x.shape[0] / x.shape[1]
