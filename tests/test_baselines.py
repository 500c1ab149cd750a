"""The baselines (srnn/models/baselines.py) held to the standard of the SRNN model's tests.

- The fast VRNN and RNN against :mod:`srnn.testing.reference_baselines`, a second implementation
  written from the equations that shares no code with the fast path: values and gradients,
  both outputs, VRNN-I, masks, a carried state and several samples with fixed noise, and
  VRNN's dropout with the masks the fast path drew.
- The analytic KL against a Monte Carlo estimate; the RNN's likelihood as a normalized
  distribution; padding, carried windows, generation, a golden bound.
- Parameter counts against SRNN's, the initialization of every layer, the config's rules.
- Training, resuming and evaluating them through the same train() and evaluate() as SRNN.

``scripts/mutations.py`` breaks the baselines in small ways and checks that this file notices.
"""
import itertools
import math

import pytest
import torch
from test_fidelity import check_draw
from test_train import KilledAt, numbers, toy_chunks

from srnn.config import BASELINE_PRESETS, Config, ConfigError, preset
from srnn.datasets.batching import ChunkBatches, sequence_batches, shifted_input
from srnn.models.baselines import RNN, VRNN, RNNState, VRNNState, build_model
from srnn.models.model import SRNN
from srnn.models.objective import training_loss
from srnn.testing.reference import dense, gaussian_head, gru_step, mlp
from srnn.testing.reference_baselines import rnn_forward, vrnn_forward
from srnn.training.checkpoint import CheckpointError, load_checkpoint, load_model
from srnn.training.evaluate import evaluate
from srnn.training.train import train

MODEL_PRIORS = [("vrnn", "learned"), ("vrnn", "standard"), ("rnn", "learned")]


def small(model, output="gaussian", vrnn_prior="learned", seed=0, **overrides):
    """A small float64 baseline whose last layers are large enough to matter, with non-zero biases."""
    torch.manual_seed(seed)
    extra = {"vrnn_prior": vrnn_prior} if model == "vrnn" else {}
    net = build_model(preset("tiny", model=model, output=output, **extra, **overrides)).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("mu.weight", "logvar.weight", "out.weight")):
                p.normal_(0, 0.3)
            elif "bias" in name:
                p.normal_(0, 0.1)
    return net


def frames(cfg, B, T, seed=1):
    g = torch.Generator().manual_seed(seed)
    if cfg.output == "bernoulli":
        return torch.bernoulli(torch.full((B, T, cfg.x_dim), 0.3, dtype=torch.float64), generator=g)
    return torch.randn(B, T, cfg.x_dim, generator=g, dtype=torch.float64)


def reference(net, weights, x, u, mask=None, state=None, noise=None) -> dict:
    """The reference's terms for ``net``'s settings and ``weights``, rows as the fast path's."""
    settings = net.cfg.to_dict()
    if net.cfg.model == "vrnn":
        h0, z0 = (None, None) if state is None else (state.h, state.z)
        return vrnn_forward(settings, weights, x, u, mask, h0, z0, noise)
    ref = rnn_forward(settings, weights, x, u, mask, None if state is None else state.h)
    return {**ref, "kl": torch.zeros_like(ref["ll"]), "log_w": ref["ll"]}


def random_state(net, B, K, seed=3):
    g = torch.Generator().manual_seed(seed)
    draw = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    cfg = net.cfg
    if cfg.model == "vrnn":
        return VRNNState(draw(K * B, cfg.d_dim), draw(K * B, cfg.z_dim))
    return RNNState(draw(B, cfg.d_dim))


@pytest.mark.parametrize("model,prior", MODEL_PRIORS)
@pytest.mark.parametrize("output", ["gaussian", "bernoulli"])
def test_fast_path_equals_the_independent_reference(model, prior, output):
    net = small(model, output, prior)
    cfg, B, T, K = net.cfg, 3, 6, 2
    x = frames(cfg, B, T)
    u = shifted_input(x)
    u[:, 0] = frames(cfg, B, 1, seed=2)[:, 0]          # a first input from before the window
    mask = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [1.0] * 2 + [0.0] * 4], dtype=torch.float64)
    state = random_state(net, B, K)
    noise = torch.randn(T, K * B, cfg.z_dim if model == "vrnn" else 0, dtype=torch.float64)

    out = net(x, u, mask, state, samples=K, noise=noise)
    (training_loss(out, mask, beta=0.7) + 0.01 * out.log_w.sum()).backward()

    weights = {k: v.detach().clone().requires_grad_() for k, v in net.state_dict().items()}
    rep = lambda t: t.repeat(K, *([1] * (t.dim() - 1)))            # row k*B + b is sample k of b
    if model == "vrnn":                                            # one sample path per row
        ref = reference(net, weights, rep(x), rep(u), rep(mask), state, noise)
    else:                                                          # nothing sampled: K equal copies
        ref = {k: rep(v) for k, v in reference(net, weights, x, u, mask, state).items()}
    (-(ref["ll"] - 0.7 * ref["kl"]).sum() / rep(mask).sum() + 0.01 * ref["log_w"].sum()).backward()

    for name in ("ll", "kl", "log_w"):
        torch.testing.assert_close(getattr(out, name), ref[name], rtol=1e-10, atol=1e-10)
    if model == "vrnn":
        torch.testing.assert_close(out.kl_dim, ref["kl_dim"], rtol=1e-10, atol=1e-10)
        real = rep(mask).bool()
        torch.testing.assert_close(out.z[real], ref["z"][real], rtol=1e-10, atol=1e-10)
        assert out.kl.sum() > 0.1                                  # the KL is not trivially zero
    else:
        assert not out.kl.any() and out.kl_dim.shape == out.z.shape == (K * B, T, 0)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, weights[name].grad, rtol=1e-9, atol=1e-10, msg=name)
        assert p.grad.abs().sum() > 0, f"{name} gets no gradient"
    assert out.ll.abs().sum() > 1


@pytest.mark.parametrize("prior", ["learned", "standard"])
def test_vrnn_dropout_is_the_references_with_the_same_masks(prior):
    """Dropout on h (prior, posterior, emission) and on z (emission), as SRNN's: the fast path
    with the masks it drew equals the reference given those masks, in values and gradients."""
    net = small("vrnn", "bernoulli", prior, drop_d=0.3, drop_z=0.4).train()
    cfg, B, T = net.cfg, 3, 6
    x = frames(cfg, B, T)
    u = shifted_input(x)
    mask = torch.tensor([[1.0] * 6, [1.0] * 4 + [0.0] * 2, [1.0] * 2 + [0.0] * 4], dtype=torch.float64)
    state, noise = random_state(net, B, 1), torch.randn(T, B, cfg.z_dim, dtype=torch.float64)
    drawn, draw = [], net.dropout_mask
    net.dropout_mask = lambda *args: drawn.append(draw(*args)) or drawn[-1]
    out = net(x, u, mask, state, noise=noise)
    training_loss(out, mask, beta=0.7).backward()
    keep_h, keep_z = drawn
    assert keep_h.shape == (T, B, cfg.d_dim) and keep_z.shape == (T, B, cfg.z_dim)
    for keep, p in ((keep_h, 0.3), (keep_z, 0.4)):                  # inverted dropout's scaled masks
        assert set(keep.unique().tolist()) == {0.0, 1 / (1 - p)}

    weights = {k: v.detach().clone().requires_grad_() for k, v in net.state_dict().items()}
    ref = reference(net, weights, x, u, mask, state, noise)
    assert not torch.allclose(ref["ll"], out.ll)                    # the masks matter ...
    ref = vrnn_forward(cfg.to_dict(), weights, x, u, mask, state.h, state.z, noise, keep_h, keep_z)
    (-(ref["ll"] - 0.7 * ref["kl"]).sum() / mask.sum()).backward()
    for name in ("ll", "kl", "log_w"):                             # ... and are placed as the reference's
        torch.testing.assert_close(getattr(out, name), ref[name], rtol=1e-10, atol=1e-10)
    for name, p in net.named_parameters():
        torch.testing.assert_close(p.grad, weights[name].grad, rtol=1e-9, atol=1e-10, msg=name)


def test_vrnn_dropout_acts_only_in_training_and_draws_nothing_when_off():
    """In eval mode a VRNN with dropout is the reference's function without masks; in training
    each option changes the bound; p = 0 draws no random numbers, so runs without dropout keep
    their numbers."""
    x = frames(small("vrnn", "bernoulli").cfg, 2, 5)
    u, noise = shifted_input(x), torch.randn(5, 2, 4, dtype=torch.float64)
    net = small("vrnn", "bernoulli", drop_d=0.3, drop_z=0.3).eval()
    weights = net.state_dict()
    ref = reference(net, weights, x, u, noise=noise)
    torch.testing.assert_close(net(x, u, noise=noise).ll, ref["ll"], rtol=1e-12, atol=1e-12)
    for name in ("drop_d", "drop_z"):
        one = small("vrnn", "bernoulli", **{name: 0.3}).train()
        torch.manual_seed(7)
        assert not torch.allclose(one(x, u, noise=noise).ll, ref["ll"]), name
    plain = small("vrnn", "bernoulli").train()
    torch.manual_seed(7)
    plain(x, u, noise=noise)
    assert torch.equal(torch.get_rng_state(), torch.manual_seed(7).get_state())       # nothing drawn


@pytest.mark.parametrize("model,prior", MODEL_PRIORS)
def test_the_carried_state_is_the_references_and_continues_the_sequence(model, prior):
    """Without padding the state handed on is the reference's, and two windows with it carried
    compute exactly what one window computes (neither model looks ahead)."""
    net = small(model, "bernoulli", prior)
    x = frames(net.cfg, 2, 8)
    u = shifted_input(x)
    noise = torch.randn(8, 2, net.cfg.z_dim if model == "vrnn" else 0, dtype=torch.float64)
    whole = net(x, u, noise=noise)
    ref = reference(net, net.state_dict(), x, u, noise=noise)
    torch.testing.assert_close(whole.state.h, ref["h"], rtol=1e-12, atol=1e-12)
    if model == "vrnn":
        torch.testing.assert_close(whole.state.z, ref["z_last"], rtol=1e-12, atol=1e-12)
    first = net(x[:, :5], u[:, :5], noise=noise[:5])
    second = net(x[:, 5:], u[:, 5:], state=first.state, noise=noise[5:])
    for name in ("ll", "kl", "log_w"):
        torch.testing.assert_close(torch.cat([getattr(first, name), getattr(second, name)], 1), getattr(whole, name))
    for a, b in zip(vars(second.state).values(), vars(whole.state).values()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("prior", ["learned", "standard"])
def test_analytic_kl_matches_monte_carlo(prior):
    """E_q[log q(z_{1:T}) - log p(z_{1:T})] over the model's own sample paths, from the
    importance weights, equals the expected sum of the analytic KLs."""
    net = small("vrnn", "bernoulli", prior)
    x = frames(net.cfg, 1, 4)
    torch.manual_seed(5)
    K = 20_000
    with torch.no_grad():
        out = net(x, shifted_input(x), samples=K)
    mc = (out.ll - out.log_w).sum(1)                               # log q - log p per path
    analytic = out.kl.sum(1)
    assert abs(mc.mean() - analytic.mean()) < 4 * (mc - analytic).std() / K ** 0.5
    assert analytic.mean() > 0.5                                   # the test compares something non-trivial


@pytest.mark.parametrize("model,prior", MODEL_PRIORS)
def test_padding_changes_nothing_under_the_mask(model, prior):
    net = small(model, "gaussian", prior)
    x = frames(net.cfg, 2, 5)
    u = shifted_input(x)
    noise = torch.randn(9, 2, net.cfg.z_dim if model == "vrnn" else 0, dtype=torch.float64)
    plain = net(x, u, noise=noise[:5])
    pad = torch.randn(2, 4, net.cfg.x_dim, dtype=torch.float64) * 100   # garbage in the padding
    mask = torch.cat([torch.ones(2, 5), torch.zeros(2, 4)], 1).to(torch.float64)
    padded = net(torch.cat([x, pad], 1), torch.cat([u, pad], 1), mask, noise=noise)
    for name in ("ll", "kl", "log_w"):
        torch.testing.assert_close(getattr(padded, name)[:, :5], getattr(plain, name), rtol=1e-12, atol=1e-12)
        assert (getattr(padded, name)[:, 5:] == 0).all()


@pytest.mark.parametrize("model,prior", MODEL_PRIORS)
def test_generation_shapes_ranges_determinism_and_prefix(model, prior):
    music, speech = small(model, "bernoulli", prior, x_dim=6), small(model, "gaussian", prior)
    x = frames(music.cfg, 2, 4)
    torch.manual_seed(0)
    a = music.generate(5, batch_size=3)
    torch.manual_seed(0)
    assert torch.equal(a, music.generate(5, batch_size=3))
    assert a.shape == (3, 5, 6) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert 0 < a.mean() < 1                                        # not stuck at one value
    means = music.generate(5, batch_size=3, mean_output=True)
    assert ((means > 0) & (means < 1)).all()
    continued = music.generate(4, prefix_x=x)
    assert continued.shape == (2, 4, 6) and set(continued.unique().tolist()) <= {0.0, 1.0}
    waves = speech.generate(7, batch_size=2)
    assert waves.shape == (2, 7, speech.cfg.x_dim) and torch.isfinite(waves).all() and waves.std() > 0


@pytest.mark.parametrize("model,prior", MODEL_PRIORS)
def test_generation_steps_the_models_own_equations(model, prior):
    """Two generated steps (emission means fed back) are p's, from the reference's layers:
    h reads the last x (and z), z is drawn from the prior, x is the emission's mean."""
    net = small(model, "gaussian", prior)
    cfg, w = net.cfg, net.state_dict()
    torch.manual_seed(4)
    got = net.generate(2, batch_size=2, mean_output=True)
    torch.manual_seed(4)
    x, h, z = (torch.zeros(2, n, dtype=torch.float64) for n in (cfg.x_dim, cfg.d_dim, cfg.z_dim))
    for t in range(2):
        if model == "rnn":
            h = gru_step(w, "gru_h", mlp(w, "phi", x), h)
            inputs = h
        else:
            h = gru_step(w, "gru_h", torch.cat([mlp(w, "phi", x), mlp(w, "phi_z", z)], -1), h)
            mean_p, logvar_p = gaussian_head(w, "prior", h, h[:, :0]) if prior == "learned" else (0 * z, 0 * z)
            z = mean_p + torch.sqrt(torch.exp(logvar_p) + 1e-6) * torch.randn(2, cfg.z_dim, dtype=torch.float64)
            inputs = torch.cat([h, mlp(w, "phi_z", z)], -1)
        x = dense(w, "emission.out", mlp(w, "emission.mlp", inputs))[:, :cfg.x_dim]
        torch.testing.assert_close(got[:, t], x, rtol=1e-12, atol=1e-12)


def test_the_rnns_likelihood_is_exact():
    """Summed over every binary sequence, exp(ll) is 1 (up to the Bernoulli eps 1e-7):
    the RNN's ll is a normalized log-likelihood; its log-weights are ll, its KL is 0, and its
    importance-weighted bound with any K is its ELBO."""
    net = small("rnn", "bernoulli", x_dim=2)
    seqs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2 * 3)), dtype=torch.float64).view(-1, 3, 2)
    out = net(seqs, shifted_input(seqs))
    assert torch.logsumexp(out.ll.sum(1), 0).item() == pytest.approx(0.0, abs=1e-5)
    assert torch.equal(out.log_w, out.ll) and not out.kl.any()
    data = [frames(net.cfg, 1, n, seed=n)[0].float().numpy() for n in (3, 5)]
    passes = []
    net.register_forward_hook(lambda module, args, kwargs, out: passes.append(kwargs.get("samples", 1)),
                              with_kwargs=True)
    m = evaluate(net.float(), list(sequence_batches(data, 2)), samples=7, sample_chunk=3)
    assert m["iwae_per_step"] == pytest.approx(m["elbo_per_step"], abs=1e-6) and m["kl_per_step"] == 0
    assert passes == [1] and m["samples"] == 7            # every sample would be the same: one pass
    assert m["kl_per_dim"] == []


# SRNN smooth+Resq's count for each domain, as its preset builds it (torch's GRUs; the
# Lasagne counts of test_fidelity.PAPER_COUNTS plus 3 d_dim hidden biases per GRU).
SRNN_COUNTS = {"music": 3_255_588, "timit": 17_233_296, "blizzard": 65_922_448, "speech_small": 139_472}


@pytest.mark.parametrize("domain", sorted(SRNN_COUNTS))
def test_parameter_counts_match_srnns(domain):
    def count(cfg):
        with torch.device("meta"):   # shapes only
            return sum(p.numel() for p in build_model(cfg).parameters())

    srnn = count(preset(domain))
    assert srnn == SRNN_COUNTS[domain]
    lines = [f"{domain}: SRNN {srnn:,}"]
    for model in ("vrnn", "rnn"):
        cfg = preset(f"{model}_{domain}")
        n = count(cfg)
        lines.append(f"{model.upper()} {n:,} ({100 * (n / srnn - 1):+.2f}%, d_dim={cfg.d_dim})")
        assert abs(n / srnn - 1) < 0.01, lines[-1]
    n = count(preset(f"vrnn_{domain}", vrnn_prior="standard"))
    lines.append(f"VRNN-I {n:,} ({100 * (n / srnn - 1):+.2f}%)")
    if domain != "music":            # the mixture output layer alone: mlp_dim x (2 x 20 x 200 + 20)
        for model in ("vrnn", "rnn"):
            n = count(preset(f"{model}_gmm_{domain}"))
            lines.append(f"{model.upper()}-GMM {n:,} ({100 * (n / srnn - 1):+.2f}%)")
    print("; ".join(lines))


@pytest.mark.parametrize("name", ["vrnn_gmm_speech_small", "rnn_gmm_speech_small"])
def test_the_mixture_output_is_a_mixture_of_factorized_gaussians(name):
    """log p(x) against torch.distributions' mixture (written independently of ours), every
    component weighted; samples with the mixture's mean; the model runs and generates."""
    torch.manual_seed(0)
    net = build_model(preset(name, gmm_components=5)).double()
    emission, K, D = net.emission, 5, net.cfg.x_dim
    params = torch.randn(3, 2 * K * D + K, dtype=torch.float64)
    mu, logvar, logits = params[:, :K * D].view(3, K, D), params[:, K * D:2 * K * D].view(3, K, D), params[:, -K:]
    dist = torch.distributions
    mixture = dist.MixtureSameFamily(dist.Categorical(logits=logits),
                                     dist.Independent(dist.Normal(mu, torch.exp(0.5 * logvar)), 1))
    x = mixture.sample()
    torch.testing.assert_close(emission.log_prob(params, x), mixture.log_prob(x), rtol=0, atol=1e-10)
    draws = emission.sample(params[:1].expand(4000, -1))
    se = mixture.stddev[0] / 4000 ** 0.5
    assert ((draws.mean(0) - mixture.mean[0]).abs() < 5 * se).all()
    torch.testing.assert_close(emission.sample(params, mean_only=True), mixture.mean)
    x = torch.randn(2, 6, D, dtype=torch.float64)
    out = net(x, torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1))
    assert out.ll.shape == (2, 6) and torch.isfinite(out.ll).all()
    assert net.generate(3, batch_size=2).shape == (2, 3, D)


def test_srnn_keeps_the_papers_outputs():
    with pytest.raises(ConfigError, match="output 'gmm' is the baselines'"):
        preset("timit", output="gmm")


def test_baseline_presets_keep_every_srnn_setting_but_the_model_and_the_width():
    for name, fields in BASELINE_PRESETS.items():
        model, domain = name.split("_", 1)
        mixture = domain.startswith("gmm_")
        srnn = preset(domain.removeprefix("gmm_")).to_dict()
        differ = {k for k, v in preset(name).to_dict().items() if srnn[k] != v}
        assert differ <= {"name", "model", "d_dim"} | ({"output"} if mixture else set()), name   # vrnn_music
        assert preset(name).variant == {"vrnn": "VRNN", "rnn": "RNN"}[model] + ("-GMM" if mixture else "")
        assert fields["model"] == model and isinstance(build_model(preset(name, d_dim=8, z_dim=2, mlp_dim=8)),
                                                      {"vrnn": VRNN, "rnn": RNN}[model])


@pytest.mark.parametrize("name,prior", [("vrnn_music", "learned"), ("vrnn_speech_small", "learned"),
                                        ("vrnn_speech_small", "standard"), ("rnn_speech_small", "learned")])
def test_every_layer_is_initialized_as_srnns_like_layers(name, prior):
    """Glorot-uniform for phi_x, phi_z, the heads and the output layer, Glorot-normal for the
    emission MLP, Uniform(-1e-3, 1e-3) last layers for speech, orthogonal GRU gates, zero biases."""
    torch.manual_seed(0)
    net = build_model(preset(name, **({"vrnn_prior": prior} if prior != "learned" else {})))
    cfg, params = net.cfg, dict(net.named_parameters())
    m, x, speech = cfg.mlp_dim, cfg.x_dim, cfg.output == "gaussian"
    last = "small" if speech else "uniform"
    draws = [(f"phi.layers.{i}.weight", 0, m, "uniform") for i in range(cfg.phi_layers)]
    draws += [(f"emission.mlp.layers.{i}.weight", 0, m, "normal") for i in range(cfg.emission_layers)]
    draws += [("emission.out.weight", 0, x, last)] + ([("emission.out.weight", x, 2 * x, last)] if speech else [])
    if cfg.model == "vrnn":
        draws.append(("phi_z.layers.0.weight", 0, m, "uniform"))
        for head in ("posterior",) + (("prior",) if prior == "learned" else ()):
            draws += [(f"{head}.hidden.weight", 0, m, "uniform"), (f"{head}.hidden.weight", m, 2 * m, "uniform"),
                      (f"{head}.mu.weight", 0, cfg.z_dim, last), (f"{head}.logvar.weight", 0, cfg.z_dim, last)]
    checked = set()
    for key, first, end, draw in draws:
        check_draw(params[key][first:end].detach(), draw, f"{key}[{first}:{end}]")
        checked.add(key)
    for key, p in params.items():
        if "bias" in key:
            assert not p.any(), key
        elif key.startswith("gru_"):
            for gate in p.detach().double().chunk(3, 0):
                sq = gate @ gate.T if gate.shape[0] <= gate.shape[1] else gate.T @ gate
                torch.testing.assert_close(sq, torch.eye(len(sq), dtype=torch.float64), atol=1e-5, rtol=0, msg=key)
        else:
            assert key in checked, f"{key} has no expected initialization"


def fixed(model, output, vrnn_prior="learned"):
    """Weights, data and noise from fixed formulas, no random draws: the golden inputs."""
    extra = {"vrnn_prior": vrnn_prior} if model == "vrnn" else {}
    net = build_model(preset("tiny", model=model, output=output, x_dim=5, d_dim=4, z_dim=3, mlp_dim=6, **extra))
    net = net.double()
    with torch.no_grad():
        for k, (_, p) in enumerate(sorted(net.named_parameters())):
            p.copy_(0.4 * torch.sin(0.7 * torch.arange(p.numel(), dtype=torch.float64) + 1.3 * k + 0.5).view_as(p))
    t = torch.arange(2 * 6 * 5, dtype=torch.float64).view(2, 6, 5)
    x = (torch.sin(1.1 * t) > 0.2).double() if output == "bernoulli" else torch.sin(0.9 * t) + 0.3 * torch.cos(2.3 * t)
    noise = 0.8 * torch.cos(0.37 * torch.arange(6 * 2 * 3, dtype=torch.float64)).view(6, 2, 3)
    return net, x, noise


# ELBO summed over both sequences, and the sum of log-weights, for the fixed inputs above:
# computed once by the independent reference (srnn/testing/reference_baselines.py), never by the fast path.
GOLDEN = {("vrnn", "bernoulli", "learned"): (-50.37496111926376, -55.0668551796974),
          ("vrnn", "gaussian", "learned"): (-84.43250570654396, -89.09791506320789),
          ("vrnn", "gaussian", "standard"): (-84.35718183293659, -86.21566059308734),
          ("rnn", "bernoulli", "learned"): (-41.13390890699698, -41.13390890699698),
          ("rnn", "gaussian", "learned"): (-72.92620219085958, -72.92620219085958)}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_elbo(case):
    net, x, noise = fixed(*case)
    u = shifted_input(x)
    noise = noise if case[0] == "vrnn" else None
    out = net(x, u, noise=noise)
    ref = reference(net, net.state_dict(), x, u, noise=noise)
    elbo, log_w = GOLDEN[case]
    for got in ((out.ll - out.kl).sum().item(), (ref["ll"] - ref["kl"]).sum().item()):
        assert got == pytest.approx(elbo, abs=1e-10)
    for got in (out.log_w.sum().item(), ref["log_w"].sum().item()):
        assert got == pytest.approx(log_w, abs=1e-10)


def toy(model, **overrides):
    cfg = preset("tiny", model=model, **{"window": 10, "batch_size": 4, "epochs": 2, **overrides})
    train_data = ChunkBatches(toy_chunks(n=8, T=20), batch_size=4, window=10, seed=cfg.seed)
    valid = list(sequence_batches(list(toy_chunks(n=4, T=12, seed=1)), batch_size=4))
    return cfg, train_data, valid


@pytest.mark.parametrize("model", ["vrnn", "rnn"])
def test_train_resume_and_evaluate(model, tmp_path):
    """Two epochs through srnn.training.train; killed in epoch 2 and resumed, the run is bitwise the
    uninterrupted one (the carried state included); the checkpoint builds the right class;
    the importance-weighted bound is above the ELBO (equal for the RNN)."""
    cfg, train_data, valid = toy(model, small_last_init=False)     # a KL large enough to leave a gap
    full = train(cfg, train_data, valid, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):      # after the first window of a chunk: its state is carried
        train(cfg, KilledAt(train_data, epoch=1, batch=3), valid, tmp_path / "resumed", checkpoint_every=1,
              progress=False)
    ck = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert ck["position"]["batch"] == 3 and [t.shape for t in ck["state"]] == \
        [t.shape for t in vars(build_model(cfg).initial_state(4)).values()]
    resumed = train(cfg, train_data, valid, tmp_path / "resumed", checkpoint_every=1, progress=False)
    assert numbers(resumed) == numbers(full) and len(full) == 2
    a, b = load_model(tmp_path / "full" / "last.pt"), load_model(tmp_path / "resumed" / "last.pt")
    assert type(a) is type(b) is {"vrnn": VRNN, "rnn": RNN}[model] and a.cfg == cfg
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    other = "rnn" if model == "vrnn" else "vrnn"
    with pytest.raises(CheckpointError, match=f'config.model: "{model}" there, "{other}" here'):
        train(cfg.replace(model=other, epochs=3), train_data, valid, tmp_path / "full", progress=False)
    torch.manual_seed(0)
    m = evaluate(a, valid, samples=50)
    if model == "vrnn":
        assert m["iwae_per_step"] > m["elbo_per_step"] + 0.1 and len(m["kl_per_dim"]) == cfg.z_dim
    else:
        assert m["iwae_per_step"] == pytest.approx(m["elbo_per_step"], abs=1e-6)


def test_configs_name_their_model_and_refuse_the_others_options():
    assert Config.from_dict({k: v for k, v in preset("music").to_dict().items() if k != "model"}).model == "srnn"
    assert Config.from_json(preset("vrnn_timit", vrnn_prior="standard").to_json()).variant == "VRNN-I"
    assert [preset(n).variant for n in ("vrnn_music", "rnn_music", "music")] == ["VRNN", "RNN", "smooth+Resq"]
    with pytest.raises(ConfigError, match=r"^config field 'model' must be one of \('srnn', 'vrnn', 'rnn'\), got "
                                          r"'lstm'$"):
        preset("music", model="lstm")
    with pytest.raises(ConfigError, match="'vrnn_prior' is an option of model 'vrnn', not of 'srnn'"):
        preset("music", vrnn_prior="standard")
    with pytest.raises(ConfigError, match="model 'vrnn' has no SRNN variants.*inference='filtering'"):
        preset("vrnn_music", inference="filtering")
    with pytest.raises(ConfigError, match="model 'rnn' has no SRNN variants.*drop_d=0.25"):
        preset("rnn_music", drop_d=0.25)
    with pytest.raises(ConfigError, match="model 'vrnn' has no SRNN variants.*drop_phi_u=0.25.*VRNN has drop_d"):
        preset("vrnn_music", drop_phi_u=0.25)
    assert preset("vrnn_music", drop_d=0.25, drop_z=0.25).drop_z == 0.25    # VRNN's dropout grid
    with pytest.raises(ConfigError, match="unknown preset 'vrnn_jsb'.*vrnn_music"):
        preset("vrnn_jsb")
    for cls, cfg in ((SRNN, preset("tiny", model="vrnn")), (VRNN, preset("tiny")), (RNN, preset("tiny", model="vrnn"))):
        with pytest.raises(ConfigError, match="cannot build"):
            cls(cfg)
    for name, cls in (("srnn", SRNN), ("vrnn", VRNN), ("rnn", RNN)):
        assert type(build_model(preset("tiny", model=name))) is cls


def test_bad_inputs_get_clear_errors():
    vrnn, rnn = small("vrnn"), small("rnn")
    x = torch.zeros(2, 3, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"state has d .*; expected a VRNNState with h \(2, 12\), z \(2, 4\)"):
        vrnn(x, x, state=build_model(preset("tiny")).double().initial_state(2))
    with pytest.raises(ValueError, match="state has h"):
        rnn(x, x, state=rnn.initial_state(3))
    with pytest.raises(ValueError, match="noise must be"):
        vrnn(x, x, noise=torch.zeros(3, 2, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="x_dim=8"):
        rnn(x[..., :5], x[..., :5])
    assert math.isfinite(rnn(x, x, noise=torch.zeros(3, 2, 0, dtype=torch.float64)).ll.sum().item())
