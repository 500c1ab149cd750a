"""The model's behaviour: shapes, KL, masking, variants, carried state, gradients, errors.

Its agreement with an independent implementation and with the original code is in
test_fidelity.py."""
import pytest
import torch

from srnn.config import PRESETS, Config, preset
from srnn.datasets.batching import shifted_input
from srnn.models.model import SRNN, floored_log_prob, gaussian_kl
from srnn.models.objective import elbo_terms, importance_weighted, training_loss


def make(name="tiny", dtype=torch.float64, seed=0, **overrides):
    torch.manual_seed(seed)
    model = SRNN(preset(name, **overrides)).to(dtype)
    if name == "tiny":   # make the tiny model's last layers large enough to matter
        for layer in (model.prior.mu, model.prior.logvar, model.posterior.mu,
                      model.posterior.logvar, model.emission.out):
            torch.nn.init.normal_(layer.weight, std=0.3)
    return model


def data(cfg, B=3, T=7, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    if cfg.output == "bernoulli":
        x = torch.bernoulli(torch.full((B, T, cfg.x_dim), 0.2), generator=g).to(dtype)
    else:
        x = torch.randn(B, T, cfg.x_dim, generator=g, dtype=dtype)
    return x, shifted_input(x)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_shapes_for_every_preset(name):
    model = make(name, dtype=torch.float32)
    cfg = model.cfg
    x, u = data(cfg, B=2, T=3, dtype=torch.float32)
    out = model(x, u, samples=2)
    assert out.ll.shape == out.kl.shape == out.log_w.shape == (4, 3)
    assert out.kl_dim.shape == out.z.shape == (4, 3, cfg.z_dim)
    assert out.state.d.shape == (2, cfg.d_dim) and out.state.z.shape == (4, cfg.z_dim)
    assert torch.isfinite(out.ll).all() and (out.kl >= 0).all()
    assert model.generate(4, batch_size=2).shape == (2, 4, cfg.x_dim)


def test_analytic_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    lv_q, lv_p = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    z = mu_q + torch.sqrt(torch.exp(lv_q) + 1e-6) * torch.randn(400_000, 5, generator=g, dtype=torch.float64)
    mc = floored_log_prob(z, mu_q, lv_q) - floored_log_prob(z, mu_p, lv_p)
    analytic = gaussian_kl(mu_q, lv_q, mu_p, lv_p).sum()
    assert abs(mc.mean() - analytic) < 4 * mc.std() / len(mc) ** 0.5
    assert analytic > 0.1                                      # the test compares something non-trivial
    assert gaussian_kl(mu_q, lv_q, mu_q, lv_q).abs().max() < 1e-12


def test_padding_changes_nothing_under_the_mask():
    model = make()
    x, u = data(model.cfg, B=2, T=5)
    noise = torch.randn(9, 2, model.cfg.z_dim, dtype=torch.float64)
    plain = model(x, u, noise=noise[:5])
    pad = torch.randn(2, 4, model.cfg.x_dim, dtype=torch.float64) * 100   # garbage in the padding
    mask = torch.cat([torch.ones(2, 5), torch.zeros(2, 4)], 1).to(torch.float64)
    padded = model(torch.cat([x, pad], 1), torch.cat([u, pad], 1), mask, noise=noise)
    for name in ("ll", "kl", "log_w"):
        torch.testing.assert_close(getattr(padded, name)[:, :5], getattr(plain, name), rtol=1e-12, atol=1e-12)
        assert (getattr(padded, name)[:, 5:] == 0).all()


def test_filtering_ignores_the_future_and_smoothing_does_not():
    for inference, should_change in (("filtering", False), ("smoothing", True)):
        model = make(inference=inference)
        x, u = data(model.cfg, B=2, T=6)
        noise = torch.randn(6, 2, model.cfg.z_dim, dtype=torch.float64)
        x2 = x.clone()
        x2[:, 4:] += 1.0                                    # change only x_5, x_6
        z1, z2 = model(x, u, noise=noise).z, model(x2, u, noise=noise).z
        changed = not torch.allclose(z1[:, :4], z2[:, :4])
        assert changed == should_change, inference


def test_resq_makes_the_posterior_mean_a_correction_of_the_prior_mean():
    for resq in (True, False):
        model = make(resq=resq)
        torch.nn.init.zeros_(model.posterior.mu.weight)    # delta = 0
        x, u = data(model.cfg, B=2, T=3)
        out = model(x, u, noise=torch.zeros(3, 2, model.cfg.z_dim, dtype=torch.float64))
        d1 = model.gru_d(model.phi(u[:, :1]), torch.zeros(1, 2, model.cfg.d_dim, dtype=torch.float64))[0][:, 0]
        mu_p1 = model.prior(d1, torch.zeros(2, model.cfg.z_dim, dtype=torch.float64))[0]
        expected = mu_p1 if resq else torch.zeros_like(mu_p1)
        torch.testing.assert_close(out.z[:, 0], expected)


def test_carried_state_continues_the_sequence():
    """With filtering (no backward pass inside a window), two windows with the state
    carried compute exactly what one long window computes."""
    model = make(inference="filtering")
    x, u = data(model.cfg, B=2, T=8)
    noise = torch.randn(8, 2, model.cfg.z_dim, dtype=torch.float64)
    whole = model(x, u, noise=noise)
    first = model(x[:, :5], u[:, :5], noise=noise[:5])
    second = model(x[:, 5:], u[:, 5:], state=first.state, noise=noise[5:])
    torch.testing.assert_close(torch.cat([first.ll, second.ll], 1), whole.ll)
    torch.testing.assert_close(second.state.d, whole.state.d)


def test_importance_weighted_bound():
    model = make()
    x, u = data(model.cfg, B=2, T=5)
    torch.manual_seed(3)
    K = 2000
    out = model(x, u, samples=K)
    log_w = out.log_w.sum(1).view(K, 2)
    elbo = elbo_terms(out)["elbo"].view(K, 2)
    # K = 1: the bound is the sample's own log weight, whose mean is the ELBO.
    torch.testing.assert_close(importance_weighted(log_w[:1]), log_w[0])
    se = log_w.std(0) / K ** 0.5
    assert ((log_w.mean(0) - elbo.mean(0)).abs() < 4 * se + 1e-9).all()
    iw = importance_weighted(log_w.view(100, 20, 2).transpose(0, 1).reshape(20, 200)).view(100, 2)  # K=20
    assert (iw.mean(0) > elbo.mean(0)).all()


def test_gradient_check():
    model = make()
    x, u = data(model.cfg, B=2, T=3)
    noise = torch.randn(3, 2, model.cfg.z_dim, dtype=torch.float64)
    weight = model.prior.hidden.weight.detach().clone().requires_grad_()
    names = dict(model.named_parameters())

    def loss(x, w):
        params = {**names, "prior.hidden.weight": w}
        out = torch.func.functional_call(model, params, (x, u), {"noise": noise})
        return training_loss(out, torch.ones(2, 3, dtype=torch.float64), beta=0.5)

    assert torch.autograd.gradcheck(loss, (x.clone().requires_grad_(), weight), eps=1e-6, atol=1e-5)


def test_without_a_hidden_bias_the_grus_are_lasagnes():
    """gru_hidden_bias=False: the GRUs' hidden-side bias stays zero through training, the
    rest learns; the function is then r * (W_hn h) inside tanh, as Lasagne's GRU."""
    model = make(gru_hidden_bias=False)
    x, u = data(model.cfg)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        training_loss(model(x, u), torch.ones(x.shape[:2], dtype=x.dtype), beta=1.0).backward()
        opt.step()
    for gru in (model.gru_d, model.gru_a):
        assert not gru.bias_hh_l0.requires_grad and not gru.bias_hh_l0.any()
        assert gru.bias_ih_l0.any()                                  # the input-side bias learns
    assert make().gru_d.bias_hh_l0.requires_grad                    # the default keeps torch's GRU


def test_generation_continues_a_prefix_and_music_samples_are_binary():
    model = make(output="bernoulli", x_dim=6)
    x, _ = data(model.cfg, B=2, T=4)
    sample = model.generate(5, prefix_x=x)
    assert sample.shape == (2, 5, 6) and set(sample.unique().tolist()) <= {0.0, 1.0}


def test_bad_inputs_get_clear_errors():
    model = make(dtype=torch.float32)
    x = torch.zeros(2, 3, model.cfg.x_dim)
    with pytest.raises(ValueError, match="x_dim=8"):
        model(torch.zeros(2, 3, 5), torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="one shape"):
        model(x, x[:, :2])
    with pytest.raises(TypeError, match="convert"):
        model(x.double(), x.double())
    with pytest.raises(ValueError, match="ones for real steps followed by zeros"):
        model(x, x, mask=torch.tensor([[1.0, 0.0, 1.0]] * 2))
    with pytest.raises(ValueError, match="mask must be"):
        model(x, x, mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="state has"):
        model(x, x, state=model.initial_state(3))


def test_config_round_trip_and_bad_configs():
    cfg = preset("music", resq=False, lr=5e-4)
    assert Config.from_json(cfg.to_json()) == cfg
    assert cfg.variant == "smooth" and preset("timit").variant == "smooth+Resq"
    with pytest.raises(ValueError, match="unknown preset 'mnist'"):
        preset("mnist")
    with pytest.raises(ValueError, match="unknown config field"):
        preset("tiny", hidden=3)
    with pytest.raises(ValueError, match="z_dim"):
        preset("tiny", z_dim=0)
    with pytest.raises(TypeError, match="d_dim"):
        preset("tiny", d_dim=2.5)
    with pytest.raises(ValueError, match="inference"):
        preset("tiny", inference="smooth")
