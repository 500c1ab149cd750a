"""The released models: each is its set and model's choice under the search protocol, bound to
its committed run, described by a current card, and scores what the card says: the shipped
8-bit copy its measured number, the exact float32 copy (where it is in the cache) its
record's, to the last digit."""
import json
from pathlib import Path

import pytest

from srnn.config import Config
from srnn.datasets.music import dataset, pieces
from srnn.pretrained import PretrainedError, exact_available, load_pretrained, release_name, released
from srnn.records import grid
from srnn.records.store import load_runs
from srnn.release import card, chosen_run
from srnn.training.evaluate import recorded_elbo

ROOT = Path(__file__).resolve().parents[1]
MODELS = released()


def record_of(name):
    return json.loads((ROOT / "results" / "music" / MODELS[name].run / "run.json").read_text())


def score(model, name):
    data = dataset(MODELS[name].dataset, "npz", batch_size=model.cfg.batch_size, window=model.cfg.window)
    return recorded_elbo(model, data.test, MODELS[name].seed, MODELS[name].paths)["elbo_per_step_seq"]


def test_every_choice_the_search_has_made_is_released():
    runs = load_runs(ROOT / "results")
    done = [release_name(d, v) for d in grid.SETS for v in grid.MODELS if grid.search(runs, d, v)["complete"]]
    assert "jsb" in done and set(done) <= set(MODELS), "export the chosen runs: python -m srnn.release export"


def test_every_released_model_is_the_protocols_choice_with_a_current_card():
    runs = load_runs(ROOT / "results")
    for name, model in MODELS.items():
        record = record_of(name)
        assert chosen_run(record, runs) == name
        assert model.record_test == record["test"]["elbo_per_step_seq"]
        assert (ROOT / "data" / "pretrained" / f"{name}.md").read_text() == card(model, record), \
            f"the card of {name} is not what its record says: export it again"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_shipped_copy_is_its_runs_model_and_scores_its_card(name):
    model = load_pretrained(name, exact=False)
    record = record_of(name)
    assert model.copy == "8-bit" and model.cfg == Config.from_dict(record["config"]) and model.data == record["data"]
    found = score(model, name)
    assert found == pytest.approx(MODELS[name].shipped_test, abs=1e-6)
    assert abs(found - record["test"]["elbo_per_step_seq"]) < 0.02          # what 8 bits cost


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_exact_copy_gives_the_record_to_the_last_digit(name):
    if not exact_available(MODELS[name]):
        pytest.skip(f"the exact copy of {name} is not in the cache (it is in the release archive)")
    model = load_pretrained(name)
    assert model.copy == "float32" and score(model, name) == record_of(name)["test"]["elbo_per_step_seq"]


def test_it_generates_piano_rolls_and_continues_a_piece():
    import torch
    model = load_pretrained("jsb")
    torch.manual_seed(0)
    rolls = model.generate(16, batch_size=2)
    assert rolls.shape == (2, 16, 88) and set(rolls.unique().tolist()) <= {0.0, 1.0}
    prefix = torch.as_tensor(pieces("jsb", "npz", "test")[0][:8], dtype=torch.float32)[None]
    assert model.generate(4, batch_size=1, prefix_x=prefix).shape == (1, 4, 88)


def test_unknown_models_and_a_missing_exact_copy_are_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(PretrainedError, match="no pretrained model 'bach'"):
        load_pretrained("bach")
    monkeypatch.setenv("SRNN_CACHE", str(tmp_path))
    with pytest.raises(PretrainedError, match="exact float32 copy of 'jsb' is not here: it is in the release"):
        load_pretrained("jsb", exact=True)
    assert load_pretrained("jsb").copy == "8-bit"
