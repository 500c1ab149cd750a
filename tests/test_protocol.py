"""The original code's training protocol, pinned where the model tests do not reach it.

Every expected number below is written out from FACTS.md (the original code's run()
defaults and the supplementary), not read from the package: the presets' optimizer,
clipping, learning-rate decay, KL schedule and stopping rule; and, by watching a real
training loop, the order of the two clips, Adam's betas and epsilon, the state carried
within an epoch and reset at each epoch, and validation rows that start from zero inside
the loop. ``scripts/mutations.py`` breaks each of these and checks that a test here fails.
"""
import pytest
import torch

import srnn.training.train as training
from srnn.config import preset
from srnn.datasets.batching import Batch
from srnn.datasets.music import dataset
from srnn.models.baselines import build_model
from srnn.training.checkpoint import load_checkpoint
from srnn.training.schedule import lr_at
from srnn.training.train import train

# preset: the settings the original code ran with (FACTS.md section 2; Blizzard has no code:
# the supplementary's lr, batch and KL increment, TIMIT's clipping and decay)
PROTOCOL = {
    "music": dict(lr=1e-3, batch_size=16, adam_eps=1e-4, clip_norm=1.0, clip_value=10.0, lr_decay_start=21,
                  lr_decay=1.2, kl_start=0.2, kl_schedule="linear_epochs", kl_epochs=20, epochs=50, patience=10,
                  max_epochs=200, valid_state="zero", seed=123),
    "timit": dict(lr=1e-3, batch_size=64, adam_eps=1e-4, clip_norm=3000.0, clip_value=1000.0, lr_decay_start=16,
                  lr_decay=1.1, kl_start=0.2, kl_schedule="linear_update", kl_increment=3e-4, epochs=50, patience=0,
                  valid_state="zero", seed=1234),
    "blizzard": dict(lr=3e-4, batch_size=128, adam_eps=1e-4, clip_norm=3000.0, clip_value=1000.0,
                     lr_decay_start=16, lr_decay=1.1, kl_start=0.2, kl_schedule="linear_update", kl_increment=1e-4,
                     epochs=50, patience=0, valid_state="zero", seed=1234),
}
BASELINES = {"music": ("vrnn_music", "rnn_music"), "timit": ("vrnn_timit", "rnn_timit"),
             "blizzard": ("vrnn_blizzard", "rnn_blizzard")}


@pytest.mark.parametrize("name", PROTOCOL)
def test_every_preset_trains_with_the_original_settings(name):
    """The paper's presets, and the baselines that share their protocol."""
    for each in (name, *BASELINES[name]):
        cfg = preset(each)
        assert {k: getattr(cfg, k) for k in PROTOCOL[name]} == PROTOCOL[name], each


@pytest.mark.parametrize("name", PROTOCOL)
def test_the_learning_rate_decays_from_the_original_epoch_by_the_original_factor(name):
    """The rate after epoch e is lr * schedule[e] in the original: full for lr_decay_start
    epochs (music 21, speech 16), then divided by the factor once more each epoch."""
    p = PROTOCOL[name]
    cfg = preset(name)
    full = p["lr_decay_start"]
    assert [lr_at(cfg, e) for e in range(full)] == [p["lr"]] * full
    for k in range(1, 6):
        assert lr_at(cfg, full - 1 + k) == pytest.approx(p["lr"] / p["lr_decay"] ** k, rel=1e-12)


def tiny(**overrides):
    return preset("tiny", **{"window": 5, "batch_size": 2, "epochs": 2, "patience": 0, **overrides})


class Rows:
    """Three updates an epoch of rows that all say they continue the batch before them, so
    that only the training loop decides where the carried state starts from zero."""

    def __init__(self, cfg, updates=3):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(updates, cfg.batch_size, cfg.window, cfg.x_dim, generator=g)

    def __len__(self):
        return len(self.x)

    def batches(self, epoch, start=0):
        for x in self.x[start:]:
            yield Batch(x, torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1), torch.ones(x.shape[:2]), reset=False)


def one_valid(cfg):
    x = Rows(cfg, 1).x[0]
    return [Batch(x, x, torch.ones(x.shape[:2]))]


def watched(monkeypatch):
    """Every forward pass of the model that train() builds: (training, state or None, output)."""
    seen = []

    def build(cfg):
        model = build_model(cfg)
        forward = model.forward

        def watch(x, u, mask=None, state=None, **kwargs):
            out = forward(x, u, mask, state, **kwargs)
            seen.append((model.training, state, out))
            return out
        model.forward = watch
        if hasattr(model, "sample_groups"):                 # evaluation's way in: every group's state
            groups = model.sample_groups

            def watch_groups(x, u, mask, states, sizes):
                outs = groups(x, u, mask, states, sizes)
                seen.append((model.training, states[0], outs[0]))
                return outs
            model.sample_groups = watch_groups
        return model
    monkeypatch.setattr(training, "build_model", build)
    return seen


def test_the_state_is_carried_within_an_epoch_and_reset_at_each_epoch(monkeypatch, tmp_path):
    cfg = tiny()
    seen = watched(monkeypatch)
    train(cfg, Rows(cfg), one_valid(cfg), tmp_path, progress=False)
    updates = [(state, out) for is_training, state, out in seen if is_training]
    assert len(updates) == 6
    for i, (state, _) in enumerate(updates):
        if i % 3 == 0:
            assert state is None, f"update {i + 1} starts an epoch: its state must be zero"
        else:
            previous = updates[i - 1][1].state
            assert state is not None, f"update {i + 1} must continue the state of update {i}"
            torch.testing.assert_close(state.d, previous.d.detach(), rtol=0, atol=0)
            assert not state.d.requires_grad                   # truncated: no gradient into the last window


def test_clipping_is_by_total_norm_then_element_wise_with_the_configs_constants(monkeypatch, tmp_path):
    calls = []
    norm, value = torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, c, *a, **k: calls.append(("norm", c))
                        or norm(p, c, *a, **k))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", lambda p, c, *a, **k: calls.append(("value", c))
                        or value(p, c, *a, **k))
    cfg = tiny(epochs=1, clip_norm=0.5, clip_value=0.01)
    train(cfg, Rows(cfg), one_valid(cfg), tmp_path, progress=False)
    assert calls == [("norm", 0.5), ("value", 0.01)] * 3


def test_adam_runs_with_the_original_betas_and_epsilon(tmp_path):
    cfg = tiny(epochs=1)
    train(cfg, Rows(cfg), one_valid(cfg), tmp_path, progress=False)
    group = load_checkpoint(tmp_path / "last.pt")["optimizer"]["param_groups"][0]
    assert tuple(group["betas"]) == (0.9, 0.999)
    assert group["eps"] == 1e-4 and group["lr"] == 1e-3 and group["weight_decay"] == 0
    assert not group["amsgrad"]


@pytest.mark.parametrize("valid_state,zero", [("zero", True), ("carry", False)])
def test_validation_inside_the_training_loop_starts_every_row_from_zero(monkeypatch, tmp_path, valid_state, zero):
    """The original validates each 100-step row from a zero state: what train() evaluates
    with the data set's validation batches (and with "carry", rows that continue)."""
    data = dataset("jsb", "npz", valid_state=valid_state)
    cfg = preset("tiny", x_dim=88, output="bernoulli", batch_size=16, window=100, epochs=1, patience=0)
    seen = watched(monkeypatch)
    train(cfg, Rows(cfg, 1), data.valid, tmp_path, progress=False)
    states = [state for is_training, state, _ in seen if not is_training]
    assert len(states) == len(data.valid)
    assert all(state is None for state in states) == zero
