"""The model is the paper's model, checked against what it must equal, not against itself.

- The fast ``SRNN.forward`` against :mod:`srnn.testing.reference`, a second implementation written
  from the equations that shares no code with ``srnn/models/model.py``: values and gradients for
  the four variants, both outputs, masks, a carried state and several samples.
- Parameter counts against the original Theano/Lasagne graph, counted here layer by layer.
- The initialization of every layer: distribution and scale, as the original draws it.
- The constants and formulas against closed-form values, and a golden ELBO.

``scripts/mutations.py`` breaks the model on purpose, one small way at a time, and
checks that this suite notices every time.
"""
import math

import pytest
import torch

from srnn.config import preset
from srnn.datasets.batching import shifted_input
from srnn.models.model import SRNN, State, act, floored_log_prob, gaussian_kl
from srnn.models.objective import training_loss
from srnn.testing.reference import reference_forward

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


def original_weight_count(p: dict, smoothing: bool) -> int:
    """Weights of the original Theano/Lasagne graph (MainSRNN_midi.py / MainSRNN_timit.py with
    their model files), counted layer by layer; Lasagne's GRU has one bias per gate."""
    x, d, z, m = p["x_dim"], p["d_dim"], p["z_dim"], p["mlp_dim"]
    dense = lambda fan_in, units: fan_in * units + units
    gru = lambda fan_in, units: 3 * (fan_in * units + units * units + units)
    count = dense(x, m) + dense(m, m)                                   # u_dense1, u_dense2 (shared with x)
    count += gru(m, d)                                                  # d_layer
    if smoothing:
        count += gru(d + m, d)                                          # a_layer, backwards
    else:
        count += dense(d + m, d) + (p["filter_layers"] - 1) * dense(d, d)   # a_layer_flat: num_layers_mlp
    for c in (d, d):                                                    # prior on [d, z], posterior on [a, z]
        count += 2 * (dense(c + z, m) + dense(m, z))                    # mean MLP and log-variance MLP
    count += dense(d + z, m) + (p["emission_layers"] - 1) * dense(m, m)  # generative_mlp
    count += (2 if p["output"] == "gaussian" else 1) * dense(m, x)     # mean (and log-variance) output
    return count


# The paper presets' weight counts with Lasagne's GRUs, smooth+Resq / filt+Resq (printed by -s).
PAPER_COUNTS = {"music": (3_253_788, 2_503_188), "timit": (17_227_152, 11_983_248),
                "blizzard": (65_910_160, 44_936_592)}


@pytest.mark.parametrize("name", ["music", "timit", "blizzard"])
@pytest.mark.parametrize("inference,resq", VARIANTS)
def test_weight_counts_are_the_original_graphs(name, inference, resq, monkeypatch):
    monkeypatch.setattr(SRNN, "reset_parameters", lambda self: None)      # counting needs no draws
    lasagne_like = SRNN(preset(name, inference=inference, resq=resq, gru_hidden_bias=False))
    trainable = sum(p.numel() for p in lasagne_like.parameters() if p.requires_grad)
    expected = original_weight_count(preset(name).to_dict(), inference == "smoothing")
    assert trainable == expected
    assert trainable == PAPER_COUNTS[name][0 if inference == "smoothing" else 1]
    torch_gru = SRNN(preset(name, inference=inference, resq=resq))   # torch's GRU adds b_hn per gate
    grus = 2 if inference == "smoothing" else 1
    assert sum(p.numel() for p in torch_gru.parameters()) == expected + grus * 3 * preset(name).d_dim
    print(f"{name} {inference} resq={resq}: {trainable:,} weights as the original, "
          f"{expected + grus * 3 * preset(name).d_dim:,} with torch's GRU hidden bias")


# How the original code draws each dense layer: Lasagne's DenseLayer default (Glorot-uniform)
# for phi, the prior/posterior MLPs and the music output; its `mlp` helper (init_mlp='normal':
# Glorot-normal) for the generative MLP and the filtering network; Uniform(-0.001, 0.001)
# (init_range) for the speech models' last layers. Blocks: (name, first row, last row, draw).
def expected_draws(cfg) -> list[tuple[str, int, int, str]]:
    m, x, speech = cfg.mlp_dim, cfg.x_dim, cfg.output == "gaussian"
    last = "small" if speech else "uniform"
    draws = [("phi.layers.0.weight", 0, m, "uniform"), ("phi.layers.1.weight", 0, m, "uniform")]
    for head in ("prior", "posterior"):
        draws += [(f"{head}.hidden.weight", 0, m, "uniform"), (f"{head}.hidden.weight", m, 2 * m, "uniform"),
                  (f"{head}.mu.weight", 0, cfg.z_dim, last), (f"{head}.logvar.weight", 0, cfg.z_dim, last)]
    draws += [(f"emission.mlp.layers.{i}.weight", 0, m, "normal") for i in range(cfg.emission_layers)]
    draws += [("emission.out.weight", 0, x, last)] + ([("emission.out.weight", x, 2 * x, last)] if speech else [])
    if cfg.inference == "filtering":
        draws += [(f"mlp_a.layers.{i}.weight", 0, cfg.d_dim, "normal") for i in range(cfg.filter_layers)]
    return draws


def check_draw(w: torch.Tensor, draw: str, where: str):
    fan_out, fan_in = w.shape
    glorot = math.sqrt(2.0 / (fan_in + fan_out))
    if draw == "small":
        assert w.abs().max() <= 1e-3 and w.std() == pytest.approx(1e-3 / math.sqrt(3), rel=0.05), where
    elif draw == "uniform":
        bound = math.sqrt(3) * glorot
        assert bound * 0.98 < w.abs().max() <= bound, where
        assert w.std() == pytest.approx(glorot, rel=0.03), where
    else:
        assert w.std() == pytest.approx(glorot, rel=0.03), where
        tails = (w.abs() > math.sqrt(3) * glorot).double().mean()        # 8.3% for a normal, 0 for a uniform
        assert 0.06 < tails < 0.11, where


@pytest.mark.parametrize("name,inference", [("music", "smoothing"), ("music", "filtering"),
                                            ("timit", "filtering")])
def test_every_layer_is_initialized_as_the_original(name, inference):
    torch.manual_seed(0)
    model = SRNN(preset(name, inference=inference))
    params = dict(model.named_parameters())
    checked = set()
    for key, first, last, draw in expected_draws(model.cfg):
        check_draw(params[key][first:last].detach(), draw, f"{key}[{first}:{last}]")
        checked.add(key)
    for key, p in params.items():
        if "bias" in key:
            assert not p.any(), key
        elif key.startswith("gru_"):
            for gate in p.detach().double().chunk(3, 0):                 # orthogonal, gate by gate
                small = gate @ gate.T if gate.shape[0] <= gate.shape[1] else gate.T @ gate
                torch.testing.assert_close(small, torch.eye(len(small), dtype=torch.float64), atol=1e-5,
                                           rtol=0, msg=key)
        else:
            assert key in checked, f"{key} has no expected initialization"


def test_the_first_protocols_stacked_heads_had_a_narrower_spread():
    """init="stacked" drew each head's two hidden layers as one (2m, d+z) Glorot-normal matrix:
    0.80 times the original's spread for music (0.88 for TIMIT)."""
    torch.manual_seed(0)
    hidden = SRNN(preset("music", init="stacked")).prior.hidden.weight.detach()
    original = math.sqrt(2 / (400 + 500))
    assert hidden[:500].std() / original == pytest.approx(math.sqrt(900 / 1400), rel=0.03)
    assert math.sqrt((1024 + 256 + 512) / (1024 + 256 + 1024)) == pytest.approx(0.88, abs=0.005)


def test_the_nonlinearity_is_a_leaky_relu_of_slope_a_third_clipped_at_three():
    h = torch.tensor([-12.0, -9.0, -6.0, -3.0, -0.3, 0.0, 0.5, 2.9, 3.0, 7.0], dtype=torch.float64)
    expected = torch.tensor([-3.0, -3.0, -2.0, -1.0, -0.1, 0.0, 0.5, 2.9, 3.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(act(h), expected, rtol=0, atol=1e-15)


def test_latent_densities_and_kl_have_the_variance_floor_and_closed_forms():
    log2pi = math.log(2 * math.pi)
    tiny = torch.tensor([[-100.0]], dtype=torch.float64)                 # exp(-100): the floor 1e-6 is all
    assert floored_log_prob(torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64),
                            tiny).item() == pytest.approx(-0.5 * (log2pi + math.log(1e-6)), abs=1e-12)
    mu_q, lv_q, mu_p, lv_p = (torch.tensor([v], dtype=torch.float64) for v in (1.0, 0.5, -1.0, -1.0))
    vq, vp = math.exp(0.5) + 1e-6, math.exp(-1.0) + 1e-6
    expected = 0.5 * (math.log(vp / vq) + (vq + 4.0) / vp - 1.0)        # KL(N(1, vq) || N(-1, vp))
    assert gaussian_kl(mu_q, lv_q, mu_p, lv_p).item() == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(6.42739, abs=1e-5)                  # by hand: 0.5 (-1.5 + 15.355 - 1)
    z = torch.tensor([[0.3]], dtype=torch.float64)
    assert floored_log_prob(z, torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)).item() \
        == pytest.approx(-0.5 * (log2pi + math.log(1 + 1e-6) + 0.09 / (1 + 1e-6)), abs=1e-12)


def test_output_likelihoods_have_their_closed_forms():
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    bernoulli = SRNN(preset("tiny", output="bernoulli", x_dim=3)).emission
    half = bernoulli.log_prob(torch.zeros(1, 3, dtype=torch.float64), x).item()
    assert half == pytest.approx(3 * math.log(0.5 + 1e-7), abs=1e-12)
    sure = bernoulli.log_prob(torch.tensor([[40.0, 40.0, 40.0]], dtype=torch.float64), x).item()
    assert sure == pytest.approx(2 * math.log(1 + 1e-7) + math.log(1e-7 + 1 / (1 + math.exp(40))), abs=1e-9)
    gaussian = SRNN(preset("tiny", x_dim=3)).emission                    # no floor on the output variance
    params = torch.tensor([[0.0, 1.0, -1.0, math.log(4.0), math.log(4.0), -30.0]], dtype=torch.float64)
    y = torch.tensor([[1.0, 1.0, -1.0]], dtype=torch.float64)
    expected = -0.5 * (3 * math.log(2 * math.pi) + 2 * math.log(4.0) - 30.0 + 1 / 4)
    assert gaussian.log_prob(params, y).item() == pytest.approx(expected, abs=1e-12)


def fixed_model(output, inference, resq):
    """Weights, data and noise from fixed formulas, no random draws: the golden inputs."""
    model = SRNN(preset("tiny", output=output, inference=inference, resq=resq, x_dim=5, d_dim=4, z_dim=3,
                        mlp_dim=6, filter_layers=2)).double()
    with torch.no_grad():
        for k, (_, p) in enumerate(sorted(model.named_parameters())):
            p.copy_(0.4 * torch.sin(0.7 * torch.arange(p.numel(), dtype=torch.float64) + 1.3 * k + 0.5).view_as(p))
    t = torch.arange(2 * 6 * 5, dtype=torch.float64).view(2, 6, 5)
    x = (torch.sin(1.1 * t) > 0.2).double() if output == "bernoulli" else torch.sin(0.9 * t) + 0.3 * torch.cos(2.3 * t)
    noise = 0.8 * torch.cos(0.37 * torch.arange(6 * 2 * 3, dtype=torch.float64)).view(6, 2, 3)
    return model, x, noise


# ELBO summed over both sequences, and the sum of log-weights, for the fixed inputs above.
GOLDEN = {("bernoulli", "smoothing", True): (-64.89354564998678, -45.376333328476946),
          ("gaussian", "filtering", False): (-88.26623688592996, -74.09780614995216)}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_elbo(case):
    model, x, noise = fixed_model(*case)
    u = shifted_input(x)
    out = model(x, u, noise=noise)
    ref = reference_forward(model.cfg.to_dict(), model.state_dict(), x, u, noise=noise)
    elbo, log_w = GOLDEN[case]
    for got in ((out.ll - out.kl).sum().item(), (ref["ll"] - ref["kl"]).sum().item()):
        assert got == pytest.approx(elbo, abs=1e-10)
    for got in (out.log_w.sum().item(), ref["log_w"].sum().item()):
        assert got == pytest.approx(log_w, abs=1e-10)


def original_learning_rates(lr, decay, no_decay_epochs, epochs):
    """The original's rate in each epoch: ExponentialDecaySchedule gives schedule[i] = 1 for
    i < no_decay_epochs, else decay ** -(i - no_decay_epochs + 1); epoch 0 runs at lr and,
    after each epoch e, the training loop sets lr * schedule[e] for the next."""
    schedule = [1.0 if i < no_decay_epochs else decay ** -(i - no_decay_epochs + 1) for i in range(epochs)]
    return [lr] + [lr * schedule[e] for e in range(epochs - 1)]


@pytest.mark.parametrize("name,no_decay_epochs", [("music", 20), ("timit", 15)])   # the run() defaults
def test_learning_rate_follows_the_original_schedule(name, no_decay_epochs):
    from srnn.training.schedule import lr_at
    cfg = preset(name)
    expected = original_learning_rates(cfg.lr, cfg.lr_decay, no_decay_epochs, 60)
    assert [lr_at(cfg, e) for e in range(60)] == pytest.approx(expected, rel=1e-12)
    assert sum(rate == cfg.lr for rate in expected) == no_decay_epochs + 1      # 21 and 16 at the full rate


def test_dropout_acts_only_in_training_where_the_original_puts_it():
    """The original's dropout options (off by default): in eval mode the model is the
    reference's function; in training mode each option changes the bound, and p = 0 draws
    no random numbers, so runs without dropout keep their numbers."""
    drops = ("drop_phi_u", "drop_phi_x", "drop_d", "drop_z")
    model = small("bernoulli", **{name: 0.3 for name in drops}).eval()
    x = frames(model.cfg, 2, 5)
    noise = torch.randn(5, 2, model.cfg.z_dim, dtype=torch.float64)
    ref = reference_forward(model.cfg.to_dict(), model.state_dict(), x, shifted_input(x), noise=noise)
    torch.testing.assert_close(model(x, shifted_input(x), noise=noise).ll, ref["ll"], rtol=1e-12, atol=1e-12)
    for name in drops:
        one = small("bernoulli", **{name: 0.3}).train()
        torch.manual_seed(7)
        assert not torch.allclose(one(x, shifted_input(x), noise=noise).ll, ref["ll"]), name
    plain = small("bernoulli").train()
    torch.manual_seed(7)
    plain(x, shifted_input(x), noise=noise)
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(7).get_state())       # nothing drawn
