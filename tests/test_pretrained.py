"""The shipped pretrained model: verified, bound to its committed run, and as good as it."""
import json
from pathlib import Path

import pytest
import torch

from srnn.config import Config
from srnn.datasets.music import dataset
from srnn.datasets.registry import DataError
from srnn.pretrained import PRETRAINED, PretrainedError, load_pretrained
from srnn.training.evaluate import evaluate

ROOT = Path(__file__).resolve().parents[1]


def test_the_jsb_model_is_its_runs_model_and_scores_what_the_record_says():
    model = load_pretrained("jsb")
    record = json.loads((ROOT / "results/music" / PRETRAINED["jsb"].run / "run.json").read_text())
    assert model.cfg == Config.from_dict(record["config"])
    assert model.data == record["data"]
    torch.manual_seed(record["seed"])
    test = evaluate(model, dataset("jsb", "npz").test, progress=False)
    assert test["elbo_per_step_seq"] == pytest.approx(-5.0076, abs=1e-4)       # data/pretrained/README.md says so
    assert abs(test["elbo_per_step_seq"] - record["test"]["elbo_per_step_seq"]) < 0.005   # what 8 bits cost


def test_it_generates_piano_rolls_and_continues_a_piece():
    model = load_pretrained("jsb")
    torch.manual_seed(0)
    rolls = model.generate(16, batch_size=2)
    assert rolls.shape == (2, 16, 88) and set(rolls.unique().tolist()) <= {0.0, 1.0}
    prefix = torch.as_tensor(dataset("jsb", "npz").test[0].x[:1, :8])
    assert model.generate(4, batch_size=1, prefix_x=prefix).shape == (1, 4, 88)


def test_unknown_and_unpublished_models_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(PretrainedError, match="no pretrained model 'bach'"):
        load_pretrained("bach")
    monkeypatch.setenv("SRNN_CACHE", str(tmp_path))
    with pytest.raises(DataError, match="copy it to"):
        load_pretrained("nottingham")
