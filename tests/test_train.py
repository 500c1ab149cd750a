"""Training: schedules, checkpoints, kill-and-resume, NaN stop, learning, evaluation."""
import json
import shutil

import numpy as np
import pytest
import torch

from srnn.config import ConfigError, preset
from srnn.datasets.batching import Batch, ChunkBatches, sequence_batches, shifted_input
from srnn.models.baselines import build_model
from srnn.models.model import SRNN, Output
from srnn.training.checkpoint import CheckpointError, load_checkpoint, load_model
from srnn.training.devices import DeviceError
from srnn.training.evaluate import PerGroup, evaluate, recorded_elbo
from srnn.training.precision import tf32
from srnn.training.schedule import adam_eps_share, beta_at, keep_training, lr_at, set_adam_eps
from srnn.training.tally import NonFiniteLossError
from srnn.training.train import train


def toy_chunks(n=16, T=30, dim=8, seed=0):
    """Noisy sinusoids with a random phase per chunk: easy to learn, not trivial."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :, None] + rng.uniform(0, 6, (n, 1, 1))
    x = np.sin(0.5 * t + np.arange(dim)[None, None] * 0.7) + 0.05 * rng.standard_normal((n, T, dim))
    return x.astype(np.float32)


def toy_run(**overrides):
    cfg = preset("tiny", **{"window": 10, "batch_size": 4, "epochs": 3, **overrides})
    train_data = ChunkBatches(toy_chunks(), batch_size=4, window=10, seed=cfg.seed)
    valid = list(sequence_batches(list(toy_chunks(n=4, seed=1)), batch_size=4))
    return cfg, train_data, valid


class KilledAt:
    """A data source that dies (like a killed process) when it reaches one batch."""

    def __init__(self, source, epoch, batch, error=KeyboardInterrupt):
        self.source, self.epoch, self.batch, self.error = source, epoch, batch, error

    def __len__(self):
        return len(self.source)

    def batches(self, epoch, start=0):
        for i, b in enumerate(self.source.batches(epoch, start), start=start):
            if (epoch, i) == (self.epoch, self.batch):
                if self.error is None:              # a batch that makes the loss nan
                    b.x = b.x * float("nan")
                else:
                    raise self.error()
            yield b


def numbers(history):
    return [{k: v for k, v in r.items() if k not in ("wall_time_s", "updates_per_s")} for r in history]


def test_kl_schedule_endpoints_and_lr_decay():
    cfg = preset("timit")
    assert beta_at(cfg, 0, 100) == pytest.approx(0.2)
    assert beta_at(cfg, 1000, 100) == pytest.approx(0.2 + 0.3)
    assert beta_at(cfg, round(0.8 / 3e-4), 100) == pytest.approx(1.0)
    assert beta_at(cfg, 10**6, 100) == 1.0
    music = preset("music")
    assert beta_at(music, 0, 17) == pytest.approx(0.2)
    assert beta_at(music, 10 * 17, 17) == pytest.approx(0.6)
    assert beta_at(music, 20 * 17, 17) == 1.0
    assert beta_at(preset("tiny", kl_schedule="constant", kl_start=1.0), 5, 3) == 1.0
    assert lr_at(music, 20) == pytest.approx(1e-3) and lr_at(music, 21) == pytest.approx(1e-3 / 1.2)
    assert lr_at(music, 23) == pytest.approx(1e-3 / 1.2 ** 3)


def test_early_stopping_trains_epochs_then_goes_on_while_validation_improves(tmp_path):
    cfg = preset("tiny", epochs=3, patience=2, max_epochs=6)

    def history(*valid):
        return [{"epoch": i + 1, "valid_elbo_per_step": v} for i, v in enumerate(valid)]

    assert keep_training(cfg, history(1, 0))                    # fewer than `epochs`
    assert keep_training(cfg, history(0, 1, 2))                 # the best is the last epoch
    assert keep_training(cfg, history(0, 2, 1))                 # the best is one epoch old
    assert not keep_training(cfg, history(0, 2, 1, 1))          # ... two epochs old: stop
    assert not keep_training(cfg, history(0, 1, 2, 3, 4, 5))    # max_epochs
    assert not keep_training(cfg.replace(patience=0), history(0, 1, 2))
    cfg, train_data, valid = toy_run(epochs=1, patience=2, max_epochs=4)
    done = train(cfg, train_data, valid, tmp_path / "run", progress=False)
    assert 1 < len(done) <= 4 and all("valid_elbo_per_step" in r for r in done)
    assert len(done) == 4 or not keep_training(cfg, done)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    cfg, train_data, valid = toy_run()
    full = train(cfg, train_data, valid, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):      # killed in the middle of epoch 2
        train(cfg, KilledAt(train_data, epoch=1, batch=7), valid, tmp_path / "resumed",
              checkpoint_every=3, progress=False)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["position"]["batch"] == 6
    resumed = train(cfg, train_data, valid, tmp_path / "resumed", checkpoint_every=3, progress=False)
    assert numbers(resumed) == numbers(full)
    a, b = load_model(tmp_path / "full" / "last.pt"), load_model(tmp_path / "resumed" / "last.pt")
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(p, q)
    lines = (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_checkpoint_round_trip_and_bad_checkpoints(tmp_path):
    cfg, train_data, valid = toy_run(epochs=1)
    train(cfg, train_data, valid, tmp_path, progress=False)
    model, again = load_model(tmp_path / "best.pt"), load_model(tmp_path / "best.pt")
    assert model.cfg == cfg
    torch.manual_seed(0)
    m1 = evaluate(model, valid)["elbo_per_step"]
    torch.manual_seed(0)
    assert evaluate(again, valid)["elbo_per_step"] == m1
    (tmp_path / "broken.pt").write_bytes((tmp_path / "best.pt").read_bytes()[:500])
    with pytest.raises(CheckpointError, match="broken.pt cannot be read"):
        load_model(tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"belongs to another run \(config.lr: 0.001 there, 0.5 here\).*--name"):
        train(cfg.replace(lr=0.5), train_data, valid, tmp_path, progress=False)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    cfg, train_data, valid = toy_run()
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 2, update 2 .* start a new run .*--name"):
        train(cfg, KilledAt(train_data, epoch=1, batch=1, error=None), valid, tmp_path, progress=False)
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck["position"]["epoch"] == 1 and len(ck["history"]) == 1
    assert all(torch.isfinite(p).all() for p in ck["model"].values())


def test_lasagne_style_epsilon_gives_lasagnes_adam_steps():
    """Lasagne: step = lr sqrt(1 - b2^t) / (1 - b1^t) * m_t / (sqrt(v_t) + eps)."""
    cfg = preset("music", adam_eps_style="lasagne", adam_eps=1e-2)     # a large eps shows the difference
    grads = torch.randn(6, 5) * 0.05
    w = torch.zeros(5, requires_grad=True)
    opt = torch.optim.Adam([w], lr=cfg.lr, eps=cfg.adam_eps)
    m, v, expected = torch.zeros(5), torch.zeros(5), torch.zeros(5)
    for t, g in enumerate(grads, start=1):
        w.grad = g.clone()
        set_adam_eps(opt, cfg, t)
        opt.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g ** 2
        expected -= cfg.lr * (1 - 0.999 ** t) ** 0.5 / (1 - 0.9 ** t) * m / (v.sqrt() + cfg.adam_eps)
    assert torch.allclose(w.detach(), expected, atol=1e-7)
    torch_style = torch.optim.Adam([torch.zeros(5, requires_grad=True)], eps=cfg.adam_eps)
    set_adam_eps(torch_style, cfg.replace(adam_eps_style="torch"), 1)
    assert torch_style.param_groups[0]["eps"] == cfg.adam_eps


def test_adam_eps_share_counts_the_weights_whose_denominator_is_epsilon():
    small, large = torch.zeros(30, requires_grad=True), torch.zeros(10, requires_grad=True)
    opt = torch.optim.Adam([small, large], eps=1e-4)
    assert np.isnan(adam_eps_share(opt))                 # no step taken yet
    for _ in range(3):
        opt.zero_grad()
        (1e-6 * small.sum() + 1e-2 * large.sum()).backward()   # |g| = 1e-6 < eps < 1e-2
        opt.step()
    assert adam_eps_share(opt) == pytest.approx(30 / 40)


def test_history_records_the_gradient_norm_and_the_adam_regime(tmp_path):
    cfg, train_data, valid = toy_run(epochs=2)
    history = train(cfg, train_data, valid, tmp_path, progress=False)
    for record in history:
        assert record["grad_norm"] > 0 and 0 <= record["adam_eps_share"] <= 1


def test_a_run_saved_before_a_config_field_existed_resumes(tmp_path):
    cfg, train_data, valid = toy_run(epochs=1)
    train(cfg, train_data, valid, tmp_path, progress=False)
    ck = load_checkpoint(tmp_path / "last.pt")
    del ck["config"]["adam_eps_style"]                  # as written by an older version
    torch.save(ck, tmp_path / "last.pt")
    assert len(train(cfg.replace(epochs=2), train_data, valid, tmp_path, progress=False)) == 2
    with pytest.raises(CheckpointError, match="config.adam_eps_style: \"torch\" there, \"lasagne\" here"):
        train(cfg.replace(epochs=3, adam_eps_style="lasagne"), train_data, valid, tmp_path, progress=False)


def test_a_tiny_model_learns_a_tiny_data_set(tmp_path):
    cfg, train_data, valid = toy_run(epochs=40, lr=3e-3, kl_increment=0.02)
    history = train(cfg, train_data, valid, tmp_path, progress=False)
    first, last = history[0]["valid_elbo_per_step"], max(r["valid_elbo_per_step"] for r in history)
    assert last > first + 5.0, (first, last)


def test_evaluation_estimators_and_carried_windows():
    cfg, _, _ = toy_run()
    torch.manual_seed(0)
    model = SRNN(cfg).eval()
    seqs = [np.ones((5, 8), np.float32), np.zeros((3, 8), np.float32)]
    m = evaluate(model, list(sequence_batches(seqs, 2)), samples=8, sample_chunk=3)
    per = m["per_sequence"]
    assert m["sequences"] == 2 and m["steps"] == 8
    assert m["elbo_per_step"] == pytest.approx(sum(per["elbo"]) / 8)
    assert m["elbo_per_step_seq"] == pytest.approx((per["elbo"][0] / 5 + per["elbo"][1] / 3) / 2)
    assert m["iwae_per_step"] >= m["elbo_per_step"] - 1.0


class KnownPaths(torch.nn.Module):
    """A stand-in model whose sample path k of sequence b has ll = -(k + 1) * sum(x_t) + 0.1 k
    and kl = 0.5 at every real step: each path's bound is known without running a model."""

    noise_dim = 1

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, u, mask, state=None, samples=1):
        B, T = mask.shape
        k = torch.arange(samples, dtype=x.dtype).repeat_interleave(B)[:, None]      # row k*B + b: path k
        m = mask.repeat(samples, 1)
        ll = (-(k + 1) * x.sum(-1).repeat(samples, 1) + 0.1 * k) * m
        kl = 0.5 * m
        none = ll.new_zeros(samples * B, T, 1)
        return Output(ll=ll, kl=kl, log_w=ll - kl, kl_dim=none, z=none, state=None)


def test_the_test_elbo_is_the_mean_over_sample_paths_with_its_standard_error():
    seqs = [np.full((5, 8), 0.5, np.float32), np.full((3, 8), 0.25, np.float32), np.ones((2, 8), np.float32)]
    K = 6
    m = evaluate(KnownPaths(), list(sequence_batches(seqs, 2)), samples=K, sample_chunk=K)
    lengths = np.array([len(s) for s in seqs], float)
    per_path = np.array([[sum(-(k + 1) * s[t].sum() + 0.1 * k - 0.5 for t in range(len(s))) for s in seqs]
                         for k in range(K)])                                         # (paths, sequences)
    seq_means = (per_path / lengths).mean(1)                                          # each path's per-step bound
    step_means = per_path.sum(1) / lengths.sum()
    assert m["paths"] == K
    assert m["elbo_per_step_seq"] == pytest.approx(seq_means.mean(), rel=1e-6)
    assert m["elbo_per_step"] == pytest.approx(step_means.mean(), rel=1e-6)
    assert m["elbo_per_step_seq_se"] == pytest.approx(seq_means.std(ddof=1) / K ** 0.5, rel=1e-6)
    assert m["elbo_per_step_se"] == pytest.approx(step_means.std(ddof=1) / K ** 0.5, rel=1e-6)
    assert m["elbo_per_seq_se"] == pytest.approx(per_path.mean(1).std(ddof=1) / K ** 0.5, rel=1e-6)
    one = evaluate(KnownPaths(), list(sequence_batches(seqs, 2)))                     # one path: no spread to show
    assert "paths" not in one and not any(key.endswith("_se") for key in one)


def test_the_recorded_test_elbo_draws_its_paths_from_the_runs_seed_whatever_came_before():
    cfg, _, _ = toy_run()
    torch.manual_seed(0)
    model = SRNN(cfg).eval()
    batches = list(sequence_batches([np.ones((5, 8), np.float32), np.zeros((3, 8), np.float32)], 2))
    found = []
    for before in (1, 2):                      # the generator left in another state by earlier work
        torch.manual_seed(before)
        found.append(recorded_elbo(model, batches, seed=7, paths=3)["elbo_per_step_seq"])
    assert found[0] == found[1] != recorded_elbo(model, batches, seed=8, paths=3)["elbo_per_step_seq"]


def test_evaluation_reports_the_kl_of_each_latent_dimension():
    cfg, _, _ = toy_run()
    torch.manual_seed(0)
    model = SRNN(cfg).eval()
    seqs = [np.ones((5, 8), np.float32), np.zeros((3, 8), np.float32)]
    batches = list(sequence_batches(seqs, 2))
    torch.manual_seed(1)
    m = evaluate(model, batches)
    torch.manual_seed(1)
    with torch.no_grad():
        out = model(batches[0].x, batches[0].u, batches[0].mask)
    expected = out.kl_dim.sum((0, 1)) / 8                # padded steps carry no KL
    assert len(m["kl_per_dim"]) == cfg.z_dim
    assert m["kl_per_dim"] == pytest.approx(expected.tolist(), abs=1e-6)
    assert sum(m["kl_per_dim"]) == pytest.approx(m["kl_per_step"], abs=1e-5)


def test_long_batches_are_evaluated_in_fewer_samples_at_a_time_on_one_observed_path():
    cfg, _, _ = toy_run()
    model = SRNN(cfg).eval()
    calls, observed = [], []
    z_chain, observe = model.z_chain, model.observed
    model.z_chain = lambda paths, z0, samples, noise: calls.append((samples, *paths["x"].shape[:2])) or \
        z_chain(paths, z0, samples, noise)
    model.observed = lambda *args: observed.append(args[0].shape) or observe(*args)
    seqs = [np.ones((50, 8), np.float32), np.zeros((3, 8), np.float32)]
    m = evaluate(model, list(sequence_batches(seqs, 2)), samples=10, sample_chunk=4, max_row_steps=300)
    assert [k for k, _, _ in calls] == [3, 3, 3, 1]              # 3 x 2 sequences x 50 steps <= 300
    assert all(k * B * T <= 300 for k, B, T in calls) and np.isfinite(m["iwae_per_step"])
    assert len(observed) == 1                                     # phi and the GRUs once, not per group


def test_sharing_the_observed_path_between_sample_groups_changes_no_number():
    cfg, _, _ = toy_run()
    torch.manual_seed(0)
    model = SRNN(cfg)
    x = torch.as_tensor(toy_chunks(n=3, T=12))
    u = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
    mask = torch.ones(3, 6)
    windows = [Batch(x[:, :6], u[:, :6], mask, True), Batch(x[:, 6:], u[:, 6:], mask, False)]
    torch.manual_seed(5)
    shared = evaluate(model, windows, samples=10, sample_chunk=3)
    torch.manual_seed(5)
    assert evaluate(PerGroup(model), windows, samples=10, sample_chunk=3) == shared


def test_reduced_precision_is_an_option_of_the_config_and_refused_where_it_cannot_run(tmp_path):
    cfg, train_data, valid = toy_run(epochs=1)
    full = train(cfg, train_data, valid, tmp_path / "fp32", progress=False)[0]
    half = train(cfg.replace(precision="bf16"), train_data, valid, tmp_path / "bf16", progress=False)[0]
    assert half["train_elbo_per_step"] != full["train_elbo_per_step"]              # bf16 products move numbers
    assert half["train_elbo_per_step"] == pytest.approx(full["train_elbo_per_step"], rel=0.05)
    ck = load_checkpoint(tmp_path / "bf16" / "last.pt")
    assert ck["config"]["precision"] == "bf16" and all(p.dtype == torch.float32 for p in ck["model"].values())
    with pytest.raises(CheckpointError, match=r'config.precision: "fp32" there, "bf16" here'):
        train(cfg.replace(precision="bf16", epochs=2), train_data, valid, tmp_path / "fp32", progress=False)
    with pytest.raises(DeviceError, match="precision=tf32 is a GPU's setting"):
        train(cfg.replace(precision="tf32", device="cpu"), train_data, valid, tmp_path / "tf32", progress=False)


def test_fp32_runs_turn_off_the_tf32_that_cudnn_allows_by_default(tmp_path, monkeypatch):
    """PyTorch lets cuDNN's GRUs compute in TF32 on a GPU unless told not to: fp32 training and
    every evaluation run with TF32 off, and the flags are restored after."""
    seen = []
    observed = SRNN.observed

    def spy(self, *args):
        seen.append((self.training, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return observed(self, *args)

    monkeypatch.setattr(SRNN, "observed", spy)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)       # PyTorch's default
    cfg, train_data, valid = toy_run(epochs=1)
    train(cfg, train_data, valid, tmp_path, progress=False)
    assert {training for training, *_ in seen} == {True, False}         # training and validation
    assert {(cudnn, matmul) for _, cudnn, matmul in seen} == {(False, False)}
    assert torch.backends.cudnn.allow_tf32
    with tf32(True):
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32


@pytest.fixture(scope="module")
def compiler():
    """torch.compile's CPU kernels need a C++ compiler and Python's headers: skip where a
    trivial function cannot be compiled."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(3))
    except Exception as err:          # whatever inductor raises when it cannot build
        pytest.skip(f"torch.compile cannot build CPU kernels here: {type(err).__name__}")


GPU = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=GPU)])
@pytest.mark.parametrize("name", ["music", "speech_small", "vrnn_music", "vrnn_speech_small"])
def test_the_compiled_step_equals_the_eager_one(name, device, compiler):
    """compile=true: the same values and gradients as eager, training (with noise and a mask)
    and evaluating (several samples: another shape), up to float rounding; on a GPU too."""
    cfg = preset(name, d_dim=16, z_dim=4, mlp_dim=16)
    torch.manual_seed(0)
    eager = build_model(cfg).to(device)
    fast = build_model(cfg.replace(compile=True)).to(device)
    fast.load_state_dict(eager.state_dict())
    assert eager.step == eager.chain_step and fast.step != fast.chain_step     # the option does compile
    torch.manual_seed(1)
    x = torch.randn(3, 7, cfg.x_dim)
    if cfg.output == "bernoulli":
        x = torch.bernoulli(torch.full((3, 7, cfg.x_dim), 0.2))
    mask = torch.ones(3, 7)
    mask[2, 5:] = 0
    noise = torch.randn(7, 3, cfg.z_dim)
    x, mask, noise = x.to(device), mask.to(device), noise.to(device)
    with tf32(False):                                  # a GPU's GRUs in fp32 (no-op on a CPU)
        outs = [m(x, shifted_input(x), mask, noise=noise) for m in (eager, fast)]
        for out in outs:
            (out.ll.sum() - out.kl.sum()).backward()
    for field in ("ll", "kl", "log_w"):
        torch.testing.assert_close(getattr(outs[1], field), getattr(outs[0], field), rtol=1e-5, atol=1e-4)
    for (p_name, p), q in zip(eager.named_parameters(), fast.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-4, msg=p_name)
    with torch.no_grad(), tf32(False):
        noise = torch.randn(7, 12, cfg.z_dim, device=device)
        evals = [m(x, shifted_input(x), mask, samples=4, noise=noise).log_w for m in (eager, fast)]
    torch.testing.assert_close(evals[1], evals[0], rtol=1e-5, atol=1e-4)


def test_compiling_is_refused_where_it_cannot_build_and_for_the_rnn(tmp_path, monkeypatch):
    cfg, train_data, valid = toy_run(epochs=1, compile=True)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(DeviceError, match="compile=true needs a C.. compiler .* set compile=false"):
        train(cfg, train_data, valid, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="model 'rnn' has none"):
        preset("rnn_music", compile=True)
