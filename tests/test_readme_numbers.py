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

`make demo` synthesises 1,673 notes and writes `results/demo/report.md`: 9 min 43 s on 2 cores.  Another
machine (not this run; must not be read as its times): synthesis 92 s, extraction 267 s, training 77 s, and
150 s for the rest.  The quoted run: synthesis 108 s, extraction 298 s, training 65 s, and 108 s for the rest
— 23 % of the time of the stages before them.

Deletion (40 test notes; AOPC above random orders), under each named baseline:

{header}
|---|---:|---:|---:|---:|---|
| LRP-ε | 9.15 ± 0.59 | 6.85 [5.74, 7.91] | 8.09 ± 1.27 | −0.58 [−2.41, 1.18] | training mean / training mean, zero |
| LRP-[ε,z+] | 6.71 ± 0.47 | 4.42 [3.08, 5.75] | 7.30 ± 0.90 | −1.37 [−2.72, −0.12] | training mean / none |

### Seeds

Table 1, per-class accuracy, from `python experiments/seed_ranges.py
--run results/demo`.
""".format(header="| method | training mean: AOPC − random | training mean: margin [95 % CI] | zero: AOPC − random "
                  "| zero: margin [95 % CI] | passes deletion / insertion under |")


def _baseline(aopc, se, margin, ci):
    return {"aopc_above_random": aopc, "aopc_above_random_se": se,
            "deletion_vs_control": {"control": "class_prior", "margin": {"mean": margin, "ci_low": ci[0],
                                                                          "ci_high": ci[1], "n": 40}}}


def _entry(tm, zero, insertion_zero):
    return {"baselines": {"training_mean": _baseline(*tm), "zero": _baseline(*zero)},
            "checks": {"deletion": {"training_mean": True, "zero": False},
                       "insertion": {"training_mean": insertion_zero, "zero": insertion_zero}}}


@pytest.fixture
def run(tmp_path):
    os.makedirs(tmp_path / "quality")
    (tmp_path / "timings.json").write_text(json.dumps({
        "stages": {"data": 108.2, "extract": 297.6, "train_s1": 20.0, "evaluate_s1": 1.0, "train_s1s2": 45.1,
                   "explain": 60.0, "quality": 48.0},
        "total": 583.4, "core_stages": ["data", "extract", "train_s1", "train_s1s2"],
        "after_training_over_core": 0.229}))
    (tmp_path / "quality" / "quality.json").write_text(json.dumps({
        "epsilon": _entry((9.151, 0.59, 6.852, (5.74, 7.911)), (8.09, 1.27, -0.58, (-2.41, 1.18)), True),
        "epsilon_plus": _entry((6.71, 0.47, 4.42, (3.08, 5.75)), (7.3, 0.9, -1.37, (-2.72, -0.12)), False)}))
    (tmp_path / "quality" / "quality_settings.json").write_text(json.dumps({"n_examples": 40}))
    return rn.Run(str(tmp_path))


def _numbers(*prefixes):
    """The README numbers with these label prefixes, in the fixture's rows (LRP-ε, LRP-[ε,z+]) and
    baselines (training mean, zero)."""
    return [n for n in rn.NUMBERS if n.label.startswith(prefixes) and "shuffle" not in n.label
            and (not n.label.startswith("deletion table") or n.label.endswith(("LRP-ε", "LRP-[ε,z+]")))]


def test_locators_find_table_cells_and_prose():
    assert rn.Cell("Deletion (40", "LRP-ε", "training mean: AOPC").find(README) == "9.15 ± 0.59"
    assert rn.Cell("Deletion (40", "LRP-[ε,z+]", "zero: margin").find(README) == "−1.37 [−2.72, −0.12]"
    assert rn.Cell("Deletion (40", "LRP-[ε,z+]", "passes", part=1).find(README) == "none"
    assert rn.Cell("Deletion (40", "no such row", "zero: margin").find(README) is None
    assert rn.Cell("no such anchor", "LRP-ε", "zero: margin").find(README) is None
    # prose spanning a line break; the first match wins, so the intro's times are anchored on the quoted run
    assert rn.Prose(r"training \d+ s, and (\d+) s for").find(README) == "150"
    assert rn.Prose(rn.QUOTED_RUN + r"synthesis (\d+) s").find(README) == "108"
    assert rn.Prose(rn.QUOTED_RUN + r"synthesis \d+ s, extraction \d+ s, training \d+ s, and (\d+) s").find(
        README) == "108"


def test_formats():
    assert rn.fmt(-0.001) == "0.00" and rn.fmt(-0.25) == "−0.25"
    assert rn.pts(-0.168) == "−16.8" and rn.pct(0.997) == "99.7 %"


def test_check_lists_what_differs_and_what_the_readme_does_not_quote(run):
    numbers = _numbers("deletion table", "deletion:", "synthesis", "extraction", "training seconds",
                       "demo wall time", "after training", "seconds after", "ground truth: localisation, LRP-ε")
    values = rn.compute(run, numbers)
    by_label = {v["label"]: v["value"] for v in values}
    assert by_label["demo wall time"] == "9 min 43 s" and by_label["training seconds"] == "65"
    assert by_label["after training / before (%)"] == "23"
    assert by_label["seconds after training"] == "108"                      # evaluate_* stages not counted
    assert by_label["deletion table: training mean margin over the strongest control, LRP-ε"] == "6.85 [5.74, 7.91]"
    assert by_label["deletion table: baselines it passes under, LRP-[ε,z+]"] == "training mean / none"
    assert by_label["ground truth: localisation, LRP-ε"] is None          # the run has no ground_truth block
    res = rn.check(README, values, numbers, other_runs=rn.OTHER_RUNS[:1])
    assert res["differs"] == [] and res["timing_differs"] == []
    assert "deletion table: training mean AOPC above random, LRP-ε" in res["ok"]
    assert "deletion: notes scored" in res["ok"]
    assert res["not_in_readme"] == ["ground truth: localisation, LRP-ε"]
    assert res["commands_missing"] == []                                  # the command spans a line break
    # a number that differs; a timing that differs is reported apart and is no error
    res = rn.check(README.replace("9.15 ± 0.59", "9.2 ± 0.6").replace("9 min 43 s", "9 min 50 s"), values, numbers)
    assert res["differs"] == [("deletion table: training mean AOPC above random, LRP-ε", "9.2 ± 0.6", "9.15 ± 0.59")]
    assert res["timing_differs"] == [("demo wall time", "9 min 50 s", "9 min 43 s")]
    # an other-run number whose section does not name its command
    res = rn.check(README.replace("experiments/seed_ranges.py", "a script"), values, numbers,
                   other_runs=rn.OTHER_RUNS[:1])
    assert len(res["commands_missing"]) == 1


def test_main_exit_status(run, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(README.replace("9 min 43 s", "9 min 50 s"))
    assert rn.main(["--run", run.path]) == 0
    assert "demo wall time: 9 min 43 s" in capsys.readouterr().out
    # only a timing differs, which is no error; the status is 1 because the toy README lacks the other
    # runs' anchors (all but Table 1's)
    assert rn.main(["--run", run.path, "--check", str(readme)]) == 1
    out = capsys.readouterr().out
    assert "timing differs (machine and load; not an error)  demo wall time" in out
    assert "DIFFERS" not in out and "COMMAND MISSING" in out
    assert "the run's CPU: not recorded" in out             # the toy run's model config has no "cpu"
    readme.write_text(README.replace("9.15 ± 0.59", "9.2 ± 0.6"))
    assert rn.main(["--run", run.path, "--check", str(readme)]) == 1
    assert ("DIFFERS  deletion table: training mean AOPC above random, LRP-ε: README '9.2 ± 0.6', run '9.15 ± 0.59'"
            in capsys.readouterr().out)
    assert rn.main(["--run", str(tmp_path / "nope")]) == 2


def test_run_cpu_names_the_processor_the_model_was_trained_on(run):
    os.makedirs(os.path.join(run.path, "models", "s1s2"))
    with open(os.path.join(run.path, "models", "s1s2", "config.json"), "w") as fh:
        json.dump({"cpu": {"model": "Xeon", "machine": "x86_64", "isa": "avx2 fma", "torch_capability": "AVX2"}}, fh)
    assert rn.run_cpu(rn.Run(run.path)) == "Xeon, x86_64, torch AVX2 kernels, ISA avx2 fma"


def test_update_writes_the_run_numbers_in_place(run):
    numbers = _numbers("deletion table", "synthesis", "extraction", "demo wall time", "seconds after")
    values = rn.compute(run, numbers)
    stale = (README.replace("9.15 ± 0.59", "9.2 ± 0.6").replace("−1.37 [−2.72, −0.12]", "−1.4 [−2.7, −0.1]")
             .replace("9 min 43 s", "9 min 50 s"))
    # a prose number whose pattern spans a line break, and table cells in two rows
    stale = stale.replace("synthesis 108 s", "synthesis 99 s")
    text, n = rn.update(stale, values, numbers)
    assert n == 4 and text == README
    assert rn.check(text, values, numbers)["differs"] == []
    assert rn.update(README, values, numbers) == (README, 0)
