#!/usr/bin/env python
"""Transfer to real recordings: a trained model on a folder of recordings listed in a manifest (issue #21).

What it measures
----------------
Each condition below classifies and explains every recording through the package's own audio path
(:func:`scatterxai.explain.explain_files`, what ``scatterxai explain AUDIO …`` runs: read, prepare with
:func:`scatterxai.audio.prepare`, scatter with the model's configuration, attribute with every method):

* **accuracy** per technique and overall (x / n), against the manifest's ``technique``;
* **localisation** per attribution method: is the top second-order (S2) relevance of the file's local map
  within ±1 octave of the manifest's ``approx_modulation_hz`` (:func:`scatterxai.maps.localisation`), and
  the share of positive S2 relevance inside that band (``rate_band_share`` of the quality checks);
* **controls** scored the same way (:mod:`scatterxai.maps.controls`, as in the quality checks): a *constant
  map* (the single λ2 column that localises the most training notes of the model's features file), the
  *class-prior map* (the λ2 column nearest the predicted class's median training rate; the constant map's
  column for a class without one), *the input itself* (the time-averaged
  model input) and *chance* (a map spread evenly over the S2 paths).  An explanation that does no better
  than the class-prior map says nothing the predicted class does not.

Conditions
----------
``whole``
    The whole file: a file longer than the transform's window (N / sr = 5.94 s) is cut into consecutive
    windows (``--segments``; the last one ends at the end of the file) and the file's class is the argmax
    of the mean of its windows' class probabilities, its map the mean of its windows' local maps.  A file
    no longer than the window is one window.
``first``
    The first window only, as ``scatterxai explain FILE`` does without ``--segments`` (later samples are
    dropped with a warning).  The numbers issue 21 quotes for "the 24 whole files" were presumably measured
    this way (21/24, localisation 23/24 with LRP-[ε,z+]): one ``explain`` call per file, no segments.
``excerpt <offset>+<length>``
    ``length`` seconds from ``offset`` seconds (``--offsets``, ``--lengths``: every combination), written
    as 32-bit float WAVs at the file's own sample rate into a temporary folder outside the repository and
    outside ``--out`` (deleted on exit), then explained as a user's excerpt files would be.  A file too
    short for an excerpt is left out of that condition (the counts x / n are over the files scored).

Outputs (``--out``): ``transfer.md`` (the tables), ``transfer.json`` (every number, per file too) and, per
condition, the ``relevance.h5`` and ``predictions.json`` that ``explain_files`` wrote (scattering
coefficients and maps, never audio).  The recordings themselves are never copied.

Usage::

    python experiments/real_transfer.py --model results/demo/models/s1s2 \\
        [--audio ../shared/real-audio] [--out results/real_transfer] [--features FEATURES.h5] \\
        [--methods all] [--offsets 1.0] [--lengths 1.5] [--conditions whole,first,excerpt] \\
        [--preparation continue|zeros]

``--preparation zeros`` zero-pads files shorter than the window, as the package did before issue 21 (and
the paper does), instead of continuing them (:func:`scatterxai.audio.continue_signal`): the excerpts, and
the whole files shorter than 5.94 s, then show what the preparation changes for a given model.

``--audio`` must hold ``manifest.csv`` (columns ``file_name``, ``technique``, ``approx_modulation_hz``;
optional ``approx_f0_hz``, ``instrument``) and the files it lists.  When the folder (or its manifest) is
absent, the script says so and exits with status 0.  ``--features`` defaults to the features file recorded
in the model's ``config.json``; without one, the constant and class-prior controls are left out.
"""

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time

import numpy as np

from scatterxai.errors import ParameterError
from scatterxai.explain.base import method_title

REQUIRED_COLUMNS = ("file_name", "technique", "approx_modulation_hz")
#: where the real recordings are unless ``--audio`` says: ``$SCATTERXAI_REAL_AUDIO``, else ``../shared/real-audio``
#: beside the repository (found from this file, so the scripts find it from any working directory)
DEFAULT_AUDIO = os.environ.get("SCATTERXAI_REAL_AUDIO") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "real-audio"))


def read_manifest(audio_dir):
    """Rows of ``audio_dir/manifest.csv`` as dicts (file_name, technique, rate, f0, instrument)."""
    path = os.path.join(audio_dir, "manifest.csv")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"error: {path} lacks the columns {missing} (needs {list(REQUIRED_COLUMNS)})")
        rows = []
        for r in reader:
            rows.append({"file_name": r["file_name"], "technique": r["technique"].strip(),
                         "instrument": r.get("instrument", ""), "rate_hz": _float(r["approx_modulation_hz"]),
                         "f0_hz": _float(r.get("approx_f0_hz", "")),
                         "path": os.path.join(audio_dir, r["file_name"])})
    absent = [r["file_name"] for r in rows if not os.path.isfile(r["path"])]
    if absent:
        raise SystemExit(f"error: {len(absent)} file(s) of {path} are not in {audio_dir}: {absent[:3]}")
    return rows


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def write_excerpts(rows, offset_s, length_s, folder):
    """Write ``length_s`` seconds from ``offset_s`` of every file (float WAV, its own rate) into ``folder``;
    returns the excerpt path per row (None where the file is too short)."""
    import soundfile as sf

    from scatterxai.audio import audio_info, read_audio
    paths = []
    for r in rows:
        duration_s, sr = audio_info(r["path"])
        if offset_s + length_s > duration_s + 1e-6:
            paths.append(None)
            continue
        y, sr = read_audio(r["path"], start=int(round(offset_s * sr)), frames=int(round(length_s * sr)))
        out = os.path.join(folder, os.path.basename(r["file_name"]))
        sf.write(out, y, sr, subtype="FLOAT")
        paths.append(out)
    return paths


def training_reference(features_path, model):
    """(modulation_hz, labels) of the training notes of the model's features file, or None."""
    if not features_path or not os.path.isfile(features_path):
        return None
    from scatterxai.features import FeatureFile
    with FeatureFile(features_path) as ff:
        if "modulation_hz" not in ff.examples or "label" not in ff.examples:
            return None
        rows = ff.indices("training") if "subset" in ff.examples else ff.indices(None)
        if tuple(ff.classes) != tuple(model.classes):
            print(f"warning: {features_path} has classes {ff.classes}, the model {model.classes}: no "
                  f"training-based controls", file=sys.stderr)
            return None
        return np.asarray(ff.examples["modulation_hz"], dtype=float)[rows], ff.labels[rows]


def run_condition(name, inputs, args, out_dir):
    """Explain ``inputs`` (paths) → (files dict of relevance.h5, mean input map per file, summary)."""
    from scatterxai.explain import explain_files
    from scatterxai.io.relevance import RelevanceFile
    from scatterxai.maps import local_map
    res = explain_files(inputs, model_dir=args.model, out_dir=out_dir, segments=(name == "whole"),
                        methods=args.methods, device=args.device, progress=False)
    with RelevanceFile(res.relevance) as rf:
        files = rf.files()
        x_local = local_map(rf.features())
        file_index = np.asarray(rf.examples["file_index"], dtype=np.int64)
    x_files = np.stack([x_local[file_index == i].mean(axis=0) for i in range(len(inputs))])
    return files, x_files, res.summary


def score_condition(rows, keep, files, x_files, model, controls, methods):
    """Per-file results and per-method localisation of one condition (``keep``: the manifest rows scored)."""
    from scatterxai.analysis.quality.metrics import rate_band_chance
    from scatterxai.maps.controls import class_prior_map, constant_map
    classes = list(model.classes)
    sub = [rows[i] for i in keep]
    rate = np.array([r["rate_hz"] for r in sub], dtype=float)
    pred = np.asarray(files["pred"], dtype=np.int64)
    per_file = [{"file_name": r["file_name"], "technique": r["technique"], "rate_hz": r["rate_hz"],
                 "predicted": classes[p], "correct": r["technique"] == classes[p],
                 "n_windows": int(n), "probabilities": dict(zip(classes, np.round(prob, 4).tolist()))}
                for r, p, n, prob in zip(sub, pred, files["n_segments"], files["probability"])]
    out = {"files": per_file, "localisation": {}}
    paths = model.paths
    if not (np.asarray(paths["order"]) == 2).any():
        return out   # an S1 model: no modulation rate to locate
    maps_ = {m: np.asarray(files[f"local/{m}"], dtype=float) for m in methods}
    maps_["control: the input itself"] = x_files
    prior = controls.get("prior")
    if prior is not None:
        maps_["control: constant map"] = constant_map(len(sub), paths, prior.constant_hz)
        maps_["control: class-prior map"] = class_prior_map(pred, prior, paths)
    for key, local in maps_.items():
        out["localisation"][key] = _score_map(local, paths, rate)
    chance = rate_band_chance(paths, rate)
    out["localisation"]["control: chance"] = {"hits": chance, "band_share": chance,
                                              "peak_lambda2_hz": np.full(len(sub), np.nan)}
    return out


def _score_map(local, paths, rate):
    """Localisation (1/0), rate-band share and λ2 of the top S2 path of each map; NaN for rows without a
    map (a slow method that skipped the file)."""
    from scatterxai.analysis.quality.metrics import rate_band_share
    from scatterxai.maps import localisation, peak_modulation_hz
    ok = np.isfinite(local).all(axis=1)
    hit, share, peak = (np.full(len(rate), np.nan) for _ in range(3))
    if ok.any():
        hit[ok] = localisation(local[ok], paths, rate[ok])
        share[ok] = rate_band_share(local[ok], paths, rate[ok])
        peak[ok] = peak_modulation_hz(local[ok], paths)
    return {"hits": hit, "band_share": share, "peak_lambda2_hz": peak}


# ------------------------------------------------------------------------------------------------ tables

def _count(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"{int(v.sum())}/{v.size}" if v.size else "–"


def _pct(values):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"{100 * v.mean():.0f} %" if v.size else "–"


def accuracy_table(results, titles, techniques):
    from scatterxai._util.markdown import md_table
    body = []
    for cond, res in results.items():
        correct = np.array([f["correct"] for f in res["files"]], dtype=float)
        tech = np.array([f["technique"] for f in res["files"]], dtype=object)
        body.append([titles[cond]] + [_count(correct[tech == t]) for t in techniques] + [_count(correct)])
    return md_table(["input"] + list(techniques) + ["all"], body)


def localisation_table(results, titles):
    from scatterxai._util.markdown import md_table
    keys = [k for k in next(iter(results.values()))["localisation"]]
    body = []
    for key in keys:
        name = method_title(key)
        cells = []
        for res in results.values():
            loc = res["localisation"].get(key)
            if loc is None:
                cells.append("–")
            elif key == "control: chance":
                cells.append(f"{_pct(loc['hits'])} (expected)")
            else:
                cells.append(f"{_count(loc['hits'])} · {_pct(loc['band_share'])}")
        body.append([name] + cells)
    return md_table(["method"] + [titles[c] for c in results], body)


def per_file_table(results, titles, method):
    from scatterxai._util.markdown import md_table
    conds = list(results)
    first = results[conds[0]]["files"]
    body = []
    for f in first:
        cells = []
        for c in conds:
            match = [(i, g) for i, g in enumerate(results[c]["files"]) if g["file_name"] == f["file_name"]]
            if not match:
                cells.append("–")
                continue
            i, g = match[0]
            peak = results[c]["localisation"].get(method, {}).get("peak_lambda2_hz")
            where = "" if peak is None or not np.isfinite(peak[i]) else f", {peak[i]:.1f} Hz"
            cells.append(f"{g['predicted']}{'' if g['correct'] else ' ✗'}{where}")
        body.append([f["file_name"][:48], f["technique"], f"{f['rate_hz']:.1f}"] + cells)
    return md_table(["file", "technique", "rate (Hz)"] + [titles[c] for c in conds], body,
                    align="llr" + "l" * len(conds))


def write_outputs(out, results, titles, header, model, methods):
    from scatterxai._util.fs import atomic_path
    from scatterxai._util.jsonio import write_json
    techniques = [c for c in model.classes if any(f["technique"] == c for r in results.values()
                                                  for f in r["files"])]
    best = methods[0] if "epsilon_plus" not in methods else "epsilon_plus"
    text = "\n\n".join([
        "# Transfer to real recordings", header,
        "## Accuracy (correct / files)", accuracy_table(results, titles, techniques),
        "## Localisation: top S2 relevance within ±1 octave of the manifest's rate · mean share of positive S2 "
        "relevance in that band", localisation_table(results, titles) if any(
            r["localisation"] for r in results.values()) else "(the model reads no S2 path)",
        f"## Per file: predicted class (✗ wrong) and λ2 of the top S2 relevance ({method_title(best)})",
        per_file_table(results, titles, best)]) + "\n"
    with atomic_path(os.path.join(out, "transfer.md")) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    write_json(os.path.join(out, "transfer.json"), {"header": header, "conditions": titles, "results": results})
    return text


# -------------------------------------------------------------------------------------------------- main

PRIOR = "control: class-prior map"
#: the kinds of condition :func:`summary` counts, in table order
CONDITIONS = ("whole", "first", "excerpt")
#: the default excerpt: its offset and length (s)
DEFAULT_OFFSET, DEFAULT_LENGTH = 1.0, 1.5
#: short column titles of the kinds (the excerpt kind: the default excerpt), for tables over several runs
CONDITION_LABELS = {"whole": "whole file", "first": "first window",
                    "excerpt": f"{DEFAULT_LENGTH:g}-s excerpt from {DEFAULT_OFFSET:g} s"}


def _condition(result, kind):
    """The transfer condition of ``kind`` (the first excerpt condition for "excerpt"), or None."""
    return next((c for c in result["results"] if c == kind or (kind == "excerpt" and c.startswith("excerpt"))),
                None)


def summary(result, method):
    """Counts of a ``transfer.json`` (as loaded): per kind of condition (whole, first, excerpt — the first
    excerpt condition), (correct, n) files, and (hits, n scored) of ``method``'s top S2
    relevance and of the class-prior control."""
    acc, loc, prior = {}, {}, {}
    for kind in CONDITIONS:
        cond = _condition(result, kind)
        if cond is None:
            continue
        r = result["results"][cond]
        acc[kind] = (sum(bool(f["correct"]) for f in r["files"]), len(r["files"]))
        for key, into in ((method, loc), (PRIOR, prior)):
            if key in r.get("localisation", {}):
                hits = np.asarray(r["localisation"][key]["hits"], dtype=float)
                into[kind] = (int(np.nansum(hits)), int(np.isfinite(hits).sum()))
    return acc, loc, prior


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="trained model directory (scatterxai train)")
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="folder with manifest.csv and the recordings (default "
                   "$SCATTERXAI_REAL_AUDIO, else ../shared/real-audio beside the repository)")
    p.add_argument("--out", default=os.path.join("results", "real_transfer"), help="output folder")
    p.add_argument("--features", default=None, help="features file of the model's training notes (for the "
                   "constant and class-prior controls; default: the one recorded in the model's config.json)")
    p.add_argument("--methods", default="all", help="attribution methods, comma-separated, or 'all'")
    p.add_argument("--offsets", type=float, nargs="+", default=[DEFAULT_OFFSET], help="excerpt offsets (s)")
    p.add_argument("--lengths", type=float, nargs="+", default=[DEFAULT_LENGTH], help="excerpt lengths (s)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help=f"any of {', '.join(CONDITIONS)}")
    p.add_argument("--preparation", choices=("continue", "zeros"), default="continue",
                   help="how a file shorter than the window is lengthened: continued with its own sound (what "
                        "scatterxai.audio.prepare does) or zero-padded (the package before issue 21, and the "
                        "paper), to measure what the preparation changes")
    p.add_argument("--device", default="auto")
    return p.parse_args(argv)


@contextlib.contextmanager
def preparation(name):
    """Within the block, :func:`scatterxai.audio.prepare` zero-pads short signals if ``name`` is "zeros"."""
    import scatterxai.audio as audio
    original = audio.continue_signal
    if name == "zeros":
        audio.continue_signal = lambda y, n, **_: audio.fix_length(y, n)
    try:
        yield
    finally:
        audio.continue_signal = original


def conditions(args):
    wanted = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = sorted(set(wanted) - set(CONDITIONS))
    if bad:
        raise SystemExit(f"error: unknown conditions {bad}; choose among {', '.join(CONDITIONS)}")
    titles = {}
    if "whole" in wanted:
        titles["whole"] = "whole file (windows, mean)"
    if "first" in wanted:
        titles["first"] = "first window"
    if "excerpt" in wanted:
        for o in args.offsets:
            for n in args.lengths:
                if o < 0 or n <= 0:
                    raise SystemExit(f"error: excerpt offset {o} s must be ≥ 0 and length {n} s positive")
                titles[f"excerpt {o:g}+{n:g}"] = f"{n:g}-s excerpt from {o:g} s"
    return titles


def controls_for(model, features):
    """The constant and class-prior controls chosen on the model's training notes
    (:func:`scatterxai.maps.controls.fit_prior`): ({"prior": ControlPrior} or {}, a sentence saying so)."""
    from scatterxai.maps.controls import fit_prior
    ref = training_reference(features, model)
    if ref is None or not (np.asarray(model.paths["order"]) == 2).any():
        return {}, "no training notes with modulation_hz: constant and class-prior controls left out"
    rates, labels = ref
    try:
        prior = fit_prior(rates, labels, len(model.classes), model.paths)
    except ParameterError as e:   # e.g. no training note with a rate
        return {}, f"constant and class-prior controls left out: {e}"
    text = (f"constant map: λ2 = {prior.constant_hz:.1f} Hz (localises "
            f"{100 * prior.constant_training_localisation:.1f} % of {prior.n_training} training notes); "
            f"class-prior map: median training rate per class " +
            ", ".join(f"{c} {r:.1f} Hz" for c, r in zip(model.classes, prior.class_rate_hz)))
    return {"prior": prior}, text


def main(argv=None):
    args = parse_args(argv)
    if not os.path.isfile(os.path.join(args.audio, "manifest.csv")):
        print(f"real-audio folder {os.path.abspath(args.audio)} (with manifest.csv) is absent: nothing to "
              f"measure; give --audio DIR")
        return 0
    from scatterxai._util.fs import prepare_output
    from scatterxai.explain import available_methods
    from scatterxai.model import load_model
    rows = read_manifest(args.audio)
    titles = conditions(args)
    model = load_model(args.model, device="cpu")
    methods = available_methods() if args.methods.strip() == "all" else \
        [m.strip() for m in args.methods.split(",") if m.strip()]
    args.methods = methods
    features = args.features or model.config.get("features_file")
    controls, control_text = controls_for(model, features)
    out = prepare_output(args.out, is_dir=True)
    results, seconds = {}, {}
    with tempfile.TemporaryDirectory(prefix="scatterxai-excerpts-") as tmp, preparation(args.preparation):
        for cond in titles:
            t0 = time.perf_counter()
            if cond.startswith("excerpt"):
                offset, length = (float(v) for v in cond.split()[1].split("+"))
                folder = os.path.join(tmp, cond.split()[1])
                os.mkdir(folder)
                paths = write_excerpts(rows, offset, length, folder)
            else:
                paths = [r["path"] for r in rows]
            keep = [i for i, p in enumerate(paths) if p is not None]
            files, x_files, _ = run_condition(cond, [paths[i] for i in keep], args,
                                              os.path.join(out, cond.replace(" ", "_").replace("+", "_")))
            results[cond] = score_condition(rows, keep, files, x_files, model, controls, methods)
            seconds[cond] = round(time.perf_counter() - t0, 1)
            print(f"[{cond}] {seconds[cond]} s", file=sys.stderr)
    header = (f"model: `{os.path.abspath(args.model)}` (input {model.config.get('input')}, sha256 "
              f"{model.checksum[:12]}), audio: `{os.path.abspath(args.audio)}` ({len(rows)} files), files "
              f"shorter than the window: {'continued' if args.preparation == 'continue' else 'zero-padded'}, "
              f"methods: "
              f"{', '.join(methods)}; {control_text}; seconds per condition: {seconds}.  Command: "
              f"`python experiments/real_transfer.py {' '.join(sys.argv[1:] if argv is None else argv)}`")
    print(write_outputs(out, results, titles, header, model, methods))
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
