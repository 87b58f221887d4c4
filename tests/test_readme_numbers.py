"""experiments/readme_numbers.py: README locators, numbers computed from a run's files, the --check verdicts."""

import importlib.util
import json
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, "experiments", "readme_numbers.py")
_spec = importlib.util.spec_from_file_location("readme_numbers", _PATH)
rn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rn)

README = """# x

## Results

`make demo` synthesises 1,673 notes and writes `results/demo/report.md`: 9 min 43 s on 2 cores (measured:
synthesis 108 s, extraction 298 s, training 65 s, and 108 s for the rest — 23 % of the time of the stages
before them).

Is the explanation right?  The `quality` stage (40 test notes):

| | LRP-ε | LRP-[ε,z+] |
|---|---:|---:|
| AOPC above random orders (logit; ± s.e.) | 7.7 ± 0.5 | 6.1 ± 0.5 |
| localisation on these notes (chance 25.5 %) / share | 80 % / 37 % | 72 % / 34 % |

### Seeds

Table 1, per-class accuracy, from `python experiments/seed_ranges.py --run results/demo`.
"""


def _quality_entry(aopc, se, loc, share):
    return {"aopc_above_random": aopc, "aopc_above_random_se": se, "localisation": loc, "rate_band_share": share,
            "rate_band_chance": 0.2551}


@pytest.fixture
def run(tmp_path):
    os.makedirs(tmp_path / "quality")
    (tmp_path / "timings.json").write_text(json.dumps({
        "stages": {"data": 108.2, "extract": 297.6, "train_s1": 20.0, "train_s1s2": 45.1, "explain": 60.0,
                   "quality": 48.0},
        "total": 583.4, "core_stages": ["data", "extract", "train_s1", "train_s1s2"],
        "after_training_over_core": 22.9}))
    (tmp_path / "quality" / "quality.json").write_text(json.dumps({
        "epsilon": _quality_entry(7.71, 0.52, 0.8, 0.37), "epsilon_plus": _quality_entry(6.2, 0.46, 0.72, 0.34)}))
    return rn.Run(str(tmp_path))


def test_locators_find_table_cells_and_prose():
    assert rn.Cell("The `quality` stage", "AOPC above random", "LRP-ε").find(README) == "7.7 ± 0.5"
    assert rn.Cell("The `quality` stage", "AOPC above random", "LRP-[ε,z+]").find(README) == "6.1 ± 0.5"
    assert rn.Cell("The `quality` stage", "localisation on these notes", "LRP-[ε,z+]", part=1).find(README) == "34 %"
    assert rn.Cell("The `quality` stage", "no such row", "LRP-ε").find(README) is None
    assert rn.Cell("no such anchor", "AOPC", "LRP-ε").find(README) is None
    # prose spanning a line break
    assert rn.Prose(r"\(measured: synthesis (\d+) s").find(README) == "108"
    assert rn.Prose(r"training \d+ s, and (\d+) s for").find(README) == "108"


def test_check_lists_what_differs_and_what_the_readme_does_not_quote(run):
    numbers = [n for n in rn.NUMBERS if n.label.startswith(("quality table: AOPC", "quality table: localisation",
                                                             "synthesis", "extraction", "training seconds",
                                                             "demo wall time", "quality table: chance",
                                                             "ground truth: localisation, LRP-ε"))]
    values = rn.compute(run, numbers)
    by_label = {v["label"]: v["value"] for v in values}
    assert by_label["demo wall time"] == "9 min 43 s" and by_label["training seconds"] == "65"
    assert by_label["quality table: AOPC above random orders, LRP-[ε,z+]"] == "6.2 ± 0.5"
    assert by_label["ground truth: localisation, LRP-ε"] is None          # the run has no ground_truth block
    res = rn.check(README, values, numbers, other_runs=rn.OTHER_RUNS[:1])
    assert res["differs"] == [("quality table: AOPC above random orders, LRP-[ε,z+]", "6.1 ± 0.5", "6.2 ± 0.5")]
    assert "quality table: localisation on these notes [1], LRP-ε" in res["ok"]
    assert "quality table: chance level of localisation" in res["ok"]      # 25.5 %
    assert res["not_in_readme"] == ["ground truth: localisation, LRP-ε"]
    assert res["commands_missing"] == []
    # an other-run number whose section does not name its command
    res = rn.check(README.replace("experiments/seed_ranges.py", "a script"), values, numbers,
                   other_runs=rn.OTHER_RUNS[:1])
    assert len(res["commands_missing"]) == 1


def test_main_exit_status(run, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert rn.main(["--run", run.path]) == 0
    assert "demo wall time: 9 min 43 s" in capsys.readouterr().out
    assert rn.main(["--run", run.path, "--check", str(readme)]) == 1          # 6.2 vs 6.1, other-run anchors gone
    out = capsys.readouterr().out
    assert "DIFFERS  quality table: AOPC above random orders, LRP-[ε,z+]: README '6.1 ± 0.5', run '6.2 ± 0.5'" in out
    assert rn.main(["--run", str(tmp_path / "nope")]) == 2
