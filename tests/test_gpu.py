"""The GPU path, on a GPU: ``pytest -m gpu`` on a machine with CUDA (skipped without one).

The model on the GPU computes what it computes on the CPU (values and gradients, every
model, masks and carried state); an update makes no host synchronization; batches arrive
from pinned memory unchanged; a GPU run resumes to the numbers of an uninterrupted one; the
reduced precisions train. test_train.py checks the compiled step on a GPU too.
"""
import pytest
import torch
from test_train import GPU, KilledAt, numbers, toy_run

from srnn.config import preset
from srnn.datasets.batching import shifted_input
from srnn.models.baselines import build_model
from srnn.models.objective import training_loss
from srnn.training.checkpoint import load_checkpoint
from srnn.training.precision import tf32
from srnn.training.train import train

pytestmark = GPU
PRESET_NAMES = ["music", "speech_small", "vrnn_music", "vrnn_speech_small", "rnn_music"]


def small(name, **overrides):
    return preset(name, **{"d_dim": 16, "z_dim": 4, "mlp_dim": 16, **overrides})


def inputs(cfg, B=3, T=7, device="cpu"):
    torch.manual_seed(1)
    x = torch.randn(B, T, cfg.x_dim)
    if cfg.output == "bernoulli":
        x = torch.bernoulli(torch.full((B, T, cfg.x_dim), 0.2))
    mask = torch.ones(B, T)
    mask[2, 5:] = 0
    noise = torch.randn(T, B, cfg.z_dim)
    return [t.to(device) for t in (x, shifted_input(x), mask, noise)]


def pass_and_gradients(model, x, u, mask, noise, state=None):
    out = model(x, u, mask, state=state, noise=noise if model.noise_dim else None)
    (out.ll.sum() - out.kl.sum()).backward()
    return out, {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_the_model_on_a_gpu_computes_what_it_computes_on_the_cpu(name):
    cfg = small(name)
    torch.manual_seed(0)
    cpu = build_model(cfg)
    gpu = build_model(cfg).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x, u, mask, noise = inputs(cfg)
    with tf32(False):
        first = cpu(x, u, mask, noise=noise if cpu.noise_dim else None).state
        state = type(first)(**{k: v.detach().cuda() for k, v in vars(first).items()})
        a, grads_a = pass_and_gradients(cpu, x, u, mask, noise, first.detach())
        b, grads_b = pass_and_gradients(gpu, *(t.cuda() for t in (x, u, mask, noise)), state)
    for field in ("ll", "kl", "log_w"):
        torch.testing.assert_close(getattr(b, field).cpu(), getattr(a, field), rtol=1e-5, atol=1e-4)
    assert grads_a.keys() == grads_b.keys()
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], rtol=1e-4, atol=1e-4, msg=n)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_an_update_makes_no_host_synchronization(name):
    cfg = small(name)
    model = build_model(cfg).cuda()
    opt = torch.optim.Adam(model.parameters())
    x, u, mask, _ = inputs(cfg, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss = training_loss(model(x, u, mask), mask, beta=0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        torch.nn.utils.clip_grad_value_(model.parameters(), cfg.clip_value)
        opt.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_batches_reach_the_gpu_from_pinned_memory_unchanged():
    cfg, train_data, _ = toy_run()
    batch = next(iter(train_data.batches(0)))
    moved = batch.to("cuda")
    torch.cuda.synchronize()
    for name in ("x", "u", "mask"):
        assert getattr(moved, name).is_cuda and torch.equal(getattr(moved, name).cpu(), getattr(batch, name))


def test_a_gpu_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    cfg, train_data, valid = toy_run(device="cuda")
    full = train(cfg, train_data, valid, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, KilledAt(train_data, epoch=1, batch=7), valid, tmp_path / "resumed", checkpoint_every=3,
              progress=False)
    resumed = train(cfg, train_data, valid, tmp_path / "resumed", checkpoint_every=3, progress=False)
    for a, b in zip(numbers(resumed), numbers(full), strict=True):       # a GPU's atomics may reorder sums
        assert a.keys() == b.keys()
        for key in a:
            assert a[key] == (pytest.approx(b[key], rel=1e-5, abs=1e-6) if isinstance(b[key], float) else b[key]), key


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_the_reduced_precisions_train_on_a_gpu_and_are_recorded(tmp_path, precision):
    cfg, train_data, valid = toy_run(epochs=1, device="cuda")
    full = train(cfg, train_data, valid, tmp_path / "fp32", progress=False)[0]
    reduced = train(cfg.replace(precision=precision), train_data, valid, tmp_path / precision, progress=False)[0]
    assert reduced["train_elbo_per_step"] == pytest.approx(full["train_elbo_per_step"], rel=0.05)
    assert load_checkpoint(tmp_path / precision / "last.pt")["config"]["precision"] == precision
