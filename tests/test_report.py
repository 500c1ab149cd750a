"""The page helpers that turn records into the book's tables and lines: the training page's
test bounds, the Results page's count of missing numbers and provenance, the epsilon-regime
runs of the first-protocol page, empty tables, and the model sizes."""
import numpy as np

from srnn.book.plots import markdown_table, piano_roll_rows
from srnn.config import preset
from srnn.records import report
from srnn.records.paper import PAPER_MUSIC, PAPER_SPEECH
from srnn.records.store import run_name
from srnn.records.tables import first_protocol


def music(run_id, elbo, legacy=False, history=(), **test):
    cfg = (first_protocol if legacy else preset)("music").to_dict()
    return {"id": run_id, "domain": "music", "dataset": "jsb", "data_form": "npz", "variant": "smooth+Resq",
            "profile": "paper", "seed": 123, "hardware": {"device": "cpu: x86_64"}, "config": cfg,
            "epochs": 60, "best_epoch": 50, "wall_time_s": 7200.0, "train_wall_time_s": 7000.0,
            "history": list(history),
            "code": {"commit": "a" * 40}, "command": f"python -m srnn.experiment music --name {run_id}",
            "test": {"elbo_per_step_seq": elbo, "elbo_per_step": elbo - 0.01, **test},
            **({"protocol": "first: before the original code's protocol became the default"} if legacy else {})}


def test_the_training_pages_bounds_stand_next_to_the_papers_number():
    main = music("jsb-npz-smooth-resq", -4.8, iwae_per_step_seq=-4.7, iwae_samples=100)
    old = music("jsb-npz-smooth-resq-legacy", -4.9, legacy=True)
    headers, rows = report.bounds_table([main, old], "music", "jsb")
    assert headers[-2:] == ["paper (Table 2)", "gap"]
    assert rows[0] == ("paper", "-4.800", "-4.810", "-4.700 (K=100)", f"{PAPER_MUSIC['jsb']:.2f}",
                       f"{-4.8 - PAPER_MUSIC['jsb']:+.3f}")
    assert rows[1][0] == "paper (first protocol)" and rows[1][3] == "-"
    assert report.bounds_table([main], "music", "jsb", "classic")[1][0][-2:] == ("-", "-")   # not Table 2's form
    assert report.reported_bound(main) == -4.8

    speech = {"id": "timit-smooth-resq", "domain": "speech", "profile": "smoke", "config": main["config"],
              "test": {"elbo_per_seq": 60000.4, "elbo_nats_per_sample": 1.23456, "elbo_bits_per_sample_raw": 9.8765,
                       "windows": {"elbo_per_seq": 59000.0}}}
    headers, rows = report.bounds_table([speech], "speech", "timit")
    paper = PAPER_SPEECH["smooth+Resq"]["timit"]
    assert rows == [("smoke", "60000", "59000", "1.2346", "9.877", "-", f"{paper}", f"{60000.4 - paper:+.0f}")]
    assert report.reported_bound(speech) == 60000.4
    assert report.bounds_table([], "speech", "sample")[1] == []


def test_missing_numbers_count_every_cell_without_a_record():
    everything = report.missing_numbers([])
    assert everything == 4 + sum(row.count(report.NO_RUN) for row in report.table_1([])[1])
    assert report.missing_numbers([music("jsb-npz-smooth-resq", -4.8)]) == everything - 1


def test_provenance_names_device_commit_resumes_and_command():
    r = {**music("jsb-npz-smooth-resq", -4.8), "starts": [{}, {}, {}]}
    r["code"]["dirty"] = True
    (line,) = report.run_provenance_lines([r])
    assert line == ("- `jsb-npz-smooth-resq`: 60 epochs on cpu: x86_64, 2.00 h, code `aaaaaaaaaa` (dirty), "
                    "resumed 2 time(s): `python -m srnn.experiment music --name jsb-npz-smooth-resq`")
    assert "resumed" not in report.run_provenance_lines([music("x", -4.8)])[0]


def test_the_epsilon_regime_keeps_runs_with_diagnostics_only():
    diag = [{"epoch": 1, "adam_eps_share": 0.4, "grad_norm": 3.0},
            {"epoch": 2, "adam_eps_share": 0.5, "grad_norm": 1.5}]
    runs = [music("jsb-npz-smooth-resq", -4.8, history=diag),
            music(run_name("music", "jsb", "npz", "smooth+Resq", "seed126-legacy"), -4.9, legacy=True, history=diag),
            music(run_name("music", "jsb", "npz", "smooth+Resq", "original-code-legacy"), -5.0, legacy=True,
                  history=[{"epoch": 1}])]                                    # no diagnostics recorded
    diagnosed = report.epsilon_regime(runs)
    assert list(diagnosed) == ["original protocol, paper settings", "first protocol, seed 126"]
    lines = report.epsilon_lines(diagnosed)
    assert lines[0] == ("- original protocol, paper settings (Adam epsilon 0.0001, torch style): 40% to 50% of "
                        "the weights below epsilon; mean gradient norm 1.50 to 3.0")
    assert report.epsilon_regime([]) == {}


def test_an_empty_table_says_so_in_one_row():
    table = markdown_table(["a", "b", "c"], [], caption="C", name="t", empty="nothing yet").data
    assert table.splitlines()[-2] == "| nothing yet | - | - |"
    assert "| 1 | 2 | 3 |" in markdown_table(["a", "b", "c"], [(1, 2, 3)], caption="C", name="t").data


def test_rolls_of_several_runs_make_one_figure_a_row_each():
    roll = np.zeros((8, 88))
    fig = piano_roll_rows([([roll] * 3, ["a1", "a2", "a3"]), ([roll], ["b1"])])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a1", "a2", "a3", "b1", "", ""]
    assert [ax.axison for ax in fig.axes] == [True] * 4 + [False] * 2


def test_model_sizes_count_the_weights_without_drawing_them():
    from srnn.models.model import SRNN
    from srnn.models.sizes import parameter_count, sizes_table

    tiny = preset("tiny")
    assert parameter_count(tiny) == sum(p.numel() for p in SRNN(tiny).parameters())
    headers, rows, counts = sizes_table()
    assert list(counts) == ["blizzard", "timit", "music"] and len(headers) == len(rows[0])
    assert counts["blizzard"] > counts["timit"] > counts["music"] > 1_000_000
    assert rows[2][-1] == f"{counts['music']:,}"


def benchmark(name, threads, music_ms, preload=None, error=3e-7, device="cpu: x86_64"):
    return {"name": name, "command": "python benchmarks/update_time.py", "started": "2026-11-30T16:00:00+00:00",
            "wall_time_s": 120.0, "against": None, "code": {"commit": "a" * 40, "dirty": False},
            "hardware": {"device": device, "cpu": "AMD EPYC", "torch_threads": threads, "torch": "2.13.0",
                         "products": {"blas": "mkl 2024.2", "fp32_matmul_precision": "highest", "preload": preload}},
            "updates": {"music": {"batch": 16, "steps": 100, "params": 3255588, "ms": music_ms}},
            "product": {"shape": [1600, 800, 900], "gflops": {"BLAS": 90.0, "oneDNN": 100.0},
                        "max_relative_error": {"BLAS": 3e-7, "oneDNN": error}}}


def test_the_performance_page_sets_each_path_against_the_package():
    from srnn.book import performance
    plain = benchmark("cpu-1thread", 1, {"package": 500.0, "reference": 1150.0, "oneDNN": 450.0, "compiled": 550.0})
    fast = benchmark("cpu-1thread-mkl", 1, {"package": 300.0, "oneDNN": 320.0}, preload="/x/libmkl_intel_path.so")
    headers, rows = performance.updates_table([plain, fast])
    row = dict(zip(headers, rows[0]))
    assert row["package"] == "500 ms" and row["reference"] == "2.30x" and "device" not in row
    assert row["oneDNN"] == "0.90x" and row["compiled"] == "1.10x" and row["MKL"] == "default"
    assert dict(zip(headers, rows[1]))["MKL"] == "Intel"
    assert performance.shapes_line([plain]) == "Shapes: *music*, batch 16, 100 steps, 3.3 M weights."
    _, pairs = performance.preload_table([plain, fast])
    assert [(r[3], r[4], r[5]) for r in pairs] == [("500 ms", "300 ms", "0.60x")]
    assert performance.goal_lines([plain, fast]) == []                  # no record timed DVAE
    # the goal: DVAE's update in the same process; the fastest fp32 path of the package against it
    timed = benchmark("cpu-2threads", 2, {"package": 500.0, "oneDNN": 450.0, "compiled": 480.0, "DVAE": 400.0})
    timed["updates"]["music"]["gflop"] = {"package": 34.7, "DVAE": 33.5}
    assert performance.goal_lines([timed]) == [
        "- music shape, 2 thread(s), mkl 2024.2 (`cpu-2threads`): an update of DVAE's SRNN took 400 ms, the package's "
        "500 ms (DVAE's does 33.5 GFLOP an update, the package's 34.7). The package's fastest path at fp32 accuracy "
        "was fp32 products on oneDNN, 450 ms, so the goal is not met: the package needs 12% more time than DVAE."]
    headers, rows = performance.updates_table([timed, benchmark("gpu", 1, {"package": 50.0}, device="cuda: H100")])
    assert dict(zip(headers, rows[0]))["DVAE"] == "0.80x" and [row[0] for row in rows] == ["CPU", "H100"]
    # oneDNN in bf16 (an error far above fp32 rounding) is not an fp32 engine
    bf16 = benchmark("amx", 1, {"package": 500.0, "oneDNN": 200.0, "compiled": 490.0, "DVAE": 495.0}, error=2e-3)
    assert performance.goal_lines([bf16]) == [
        "- music shape, 1 thread(s), mkl 2024.2 (`amx`): an update of DVAE's SRNN took 495 ms, the package's 500 ms. "
        "The package's fastest path at fp32 accuracy was compile=true, 490 ms, so the goal is met."]
    assert performance.product_table([bf16])[1][1][-2] == "2.0e-03"
    # a record of a commit whose model is not the package's says so; another does not
    assert "**That commit's model is not the package's:**" in performance.measured_lines([{**plain, "code": {
        "commit": "213e520427dcaed97131a39c0a513a9ba991db2c"}, "started": "2026-12-01T02:55:02+00:00"}])[0]
    assert "The model code of that commit is the package's." in performance.measured_lines([{**plain, "code": {
        "commit": "0" * 40}, "started": "2026-12-01T02:55:02+00:00"}])[0]
