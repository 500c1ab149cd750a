"""The model is the paper's model, checked against what it must equal, not against itself.

- The fast ``SRNN.forward`` against :mod:`srnn.reference`, a second implementation written
  from the equations that shares no code with ``srnn/model.py``: values and gradients for
  the four variants, both outputs, masks, a carried state and several samples.
- Parameter counts against the original Theano/Lasagne graph, counted here layer by layer.
- The initialization of every layer: distribution and scale, as the original draws it.
- The constants and formulas against closed-form values, and a golden ELBO.

``benchmarks/mutations.py`` breaks the model on purpose, one small way at a time, and
checks that this suite notices every time.
"""
import math

import pytest
import torch

from srnn.batching import shifted_input
from srnn.config import preset
from srnn.model import SRNN, State, act, floored_log_prob, gaussian_kl, gaussian_log_prob
from srnn.objective import training_loss
from srnn.reference import reference_forward

VARIANTS = [("smoothing", True), ("smoothing", False), ("filtering", True), ("filtering", False)]


def small(output="gaussian", inference="smoothing", resq=True, seed=0, **overrides):
    """A small float64 model whose output layers are large enough to matter."""
    torch.manual_seed(seed)
    cfg = preset("tiny", output=output, inference=inference, resq=resq, filter_layers=2, **overrides)
    model = SRNN(cfg).double()
    for layer in (model.prior.mu, model.prior.logvar, model.posterior.mu, model.posterior.logvar,
                  model.emission.out):
        torch.nn.init.normal_(layer.weight, std=0.3)
    for name, p in model.named_parameters():       # non-zero biases, so that a dropped bias shows
        if "bias" in name and p.requires_grad:
            torch.nn.init.normal_(p, std=0.1)
    return model


def frames(cfg, B, T, seed=1):
    g = torch.Generator().manual_seed(seed)
    if cfg.output == "bernoulli":
        return torch.bernoulli(torch.full((B, T, cfg.x_dim), 0.3, dtype=torch.float64), generator=g)
    return torch.randn(B, T, cfg.x_dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("inference,resq", VARIANTS)
@pytest.mark.parametrize("output", ["gaussian", "bernoulli"])
def test_fast_path_equals_the_independent_reference(output, inference, resq):
    model = small(output, inference, resq)
    cfg, B, T, K = model.cfg, 3, 6, 2
    x = frames(cfg, B, T)
    u = shifted_input(x)
    u[:, 0] = frames(cfg, B, 1, seed=2)[:, 0]          # a first input from before the window
    mask = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [1.0] * 2 + [0.0] * 4], dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    state = State(torch.randn(B, cfg.d_dim, generator=g, dtype=torch.float64),
                  torch.randn(K * B, cfg.z_dim, generator=g, dtype=torch.float64))
    noise = torch.randn(T, K * B, cfg.z_dim, generator=g, dtype=torch.float64)

    out = model(x, u, mask, state, samples=K, noise=noise)
    (training_loss(out, mask, beta=0.7) + 0.01 * out.log_w.sum()).backward()

    weights = {k: v.detach().clone().requires_grad_() for k, v in model.state_dict().items()}
    rep = lambda t: t.repeat(K, *([1] * (t.dim() - 1)))            # row k*B + b is sample k of b
    ref = reference_forward(cfg.to_dict(), weights, rep(x), rep(u), rep(mask), rep(state.d), state.z, noise)
    steps = rep(mask).sum()
    (-(ref["ll"] - 0.7 * ref["kl"]).sum() / steps + 0.01 * ref["log_w"].sum()).backward()

    for name in ("ll", "kl", "log_w", "kl_dim"):
        torch.testing.assert_close(getattr(out, name), ref[name], rtol=1e-10, atol=1e-10)
    real = rep(mask).bool()
    torch.testing.assert_close(out.z[real], ref["z"][real], rtol=1e-10, atol=1e-10)
    for name, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, weights[name].grad, rtol=1e-9, atol=1e-10, msg=name)
    assert out.ll.abs().sum() > 1 and out.kl.sum() > 0.1                   # nothing trivially zero


@pytest.mark.parametrize("inference,resq", VARIANTS)
def test_the_carried_state_is_the_references(inference, resq):
    """Without padding, the state handed to the next window is d_T and the last sample z_T."""
    model = small("bernoulli", inference, resq)
    x = frames(model.cfg, 2, 5)
    noise = torch.randn(5, 2, model.cfg.z_dim, dtype=torch.float64)
    out = model(x, shifted_input(x), noise=noise)
    ref = reference_forward(model.cfg.to_dict(), model.state_dict(), x, shifted_input(x), noise=noise)
    torch.testing.assert_close(out.state.d, ref["d"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.state.z, ref["z_last"], rtol=1e-12, atol=1e-12)
