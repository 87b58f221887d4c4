"""The probe study's files: ``probe.h5``, ``probe.json``, ``probe.md`` and heat-map figures.

``DIR/probe.h5`` (N networks: the trained one, then the untrained ones, in root attribute ``networks``;
n probed notes)::

    /targets/<descriptor>                    (n,)  probed values (attrs unit, description, source)
    /probe/<layer>/<descriptor>/{r2, rmse, rmse_mean}   (N,)  grouped-CV ridge probe (attrs unit, description)
    /probe/<layer>/<descriptor>/alpha        (N, folds)  chosen ridge penalty per outer fold
    /probe/<layer>/<descriptor>/y_pred       (n,)  out-of-fold predictions of the trained network (NaN: dropped)
    /technique/<layer>/balanced_accuracy     (N,)  grouped-CV logistic probe of the label (attr chance)
    /technique/<layer>/y_pred                (n,)  out-of-fold predicted labels of the trained network
    /cka/<layer>/<descriptor or layer>/{linear, debiased}   (N,)  CKA (attr p: permutation p-value of the
                                             trained network's debiased CKA, n_permutations)
    /cka_training/<layer>/{linear, debiased} (N − 1,)  CKA of the trained layer with each untrained one
    /units/<layer>/<descriptor>/{pearson, spearman}   (units,)  per-unit r, trained network, time-averaged
                                             channels (attrs best_unit, best_r, p: max-statistic permutation)
    /examples/<column>                       (n,)  the probed notes (meta columns, csv_row, cv_group)

``layer`` "input" holds the probes of the model input (time-averaged) as a reference (N = 1).  Root
attributes: layers, networks, descriptors, cka_descriptors, config (JSON), model checksum and input, the
files used and their settings hashes, versions.

``DIR/probe.json`` — the summary, with exactly the layout::

    {"layers": [...], "descriptors": [...],
     "cka": {layer: {descriptor: {"trained", "untrained_mean", "untrained_std", "debiased", "p"}}},
     "probe": {layer: {descriptor: {"trained_r2", "trained_rmse", "untrained_r2_mean", "untrained_r2_std",
                                    "unit"}}},
     "technique_probe": {layer: {"trained", "untrained_mean"}}}

where CKA "trained" / "untrained_*" are linear CKA, "debiased" the trained network's debiased CKA and "p" its
permutation p-value; the technique probe is a balanced accuracy; a descriptor of "cka" is a multi-dimensional
descriptor or another layer.  NaN is written as null.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List

import h5py
import numpy as np

from ... import __version__
from ..._util.fs import atomic_path
from ..._util.jsonio import write_json
from ..._util.markdown import md_table
from ..._util.outputs import claims_output
from ..._util.types import PathLike
from ...io.hdf5 import atomic_h5, write_column
from .study import CKA_DESCRIPTORS, FROM_MODEL_INPUT

__all__ = ["write_probe_outputs", "summary_json", "probe_markdown", "report_section", "FILES"]

#: files written into the output directory
FILES = {"h5": "probe.h5", "json": "probe.json", "md": "probe.md", "r2": "probe_r2.png", "cka": "probe_cka.png"}


def _stats(values) -> tuple:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(np.mean(v)), float(np.std(v))


def _net_values(result: dict, *path) -> np.ndarray:
    """``result["results"][network][path[0]][path[1]]…`` for every network: (N,) float64."""
    out = []
    for net in result["networks"]:
        v = result["results"][net]
        for key in path:
            v = v[key]
        out.append(v)
    return np.array(out, dtype=np.float64)


def _cka_names(result: dict, layer: str) -> List[str]:
    return list(CKA_DESCRIPTORS) + [other for other in result["layers"] if other != layer]


def summary_json(result: dict) -> dict:
    """The probe.json summary (module docstring) of a :func:`~.study.probe_study` result."""
    layers, targets = result["layers"], list(result["targets"])
    cka, probe, tech = {}, {}, {}
    for layer in layers:
        cka[layer] = {}
        for name in _cka_names(result, layer):
            lin = _net_values(result, "cka", layer, name, "linear")
            trained = result["results"]["trained"]["cka"][layer][name]
            mean, std = _stats(lin[1:])
            cka[layer][name] = {"trained": lin[0], "untrained_mean": mean, "untrained_std": std,
                                "debiased": trained["debiased"], "p": trained.get("p")}
        probe[layer] = {}
        for j, name in enumerate(targets):
            r2 = _net_values(result, "probe", layer, j, "r2")
            mean, std = _stats(r2[1:])
            probe[layer][name] = {"trained_r2": r2[0],
                                  "trained_rmse": result["results"]["trained"]["probe"][layer][j]["rmse"],
                                  "untrained_r2_mean": mean, "untrained_r2_std": std,
                                  "unit": result["targets"][name]["unit"]}
        bacc = _net_values(result, "technique", layer, "balanced_accuracy")
        tech[layer] = {"trained": bacc[0], "untrained_mean": _stats(bacc[1:])[0]}
    return {"layers": layers, "descriptors": list(CKA_DESCRIPTORS) + targets, "cka": cka, "probe": probe,
            "technique_probe": tech}


def _write_h5(path: str, result: dict) -> None:
    layers, networks, targets = result["layers"], result["networks"], list(result["targets"])
    n = len(result["groups"])
    with atomic_h5(path) as f:
        f.attrs.update({"layers": layers, "networks": networks, "descriptors": targets,
                        "cka_descriptors": list(CKA_DESCRIPTORS), "config": json.dumps(result["config"]),
                        "model_checksum": result["model"]["checksum"], "model_input": result["model"]["input"],
                        "model_dir": result["model"]["dir"], "n_notes": n, "scatterxai_version": __version__,
                        **{k: str(v) for k, v in result["files"].items()}})
        for name, t in result["targets"].items():
            ds = f.create_dataset(f"targets/{name}", data=t["values"])
            ds.attrs.update({k: t[k] for k in ("unit", "description", "source")})
        sources = {"input": ({"input": result["reference"]}, ["input"])}
        for layer in ["input"] + layers:
            res, nets = sources.get(layer, (result["results"], networks))
            key = "input" if layer == "input" else layer
            for j, name in enumerate(targets):
                g = f.create_group(f"probe/{layer}/{name}")
                runs = [res[net]["probe"][j] if layer == "input" else res[net]["probe"][key][j] for net in nets]
                for k in ("r2", "rmse", "rmse_mean"):
                    g.create_dataset(k, data=np.array([r[k] for r in runs]))
                g.create_dataset("alpha", data=np.array([r["alpha"] for r in runs]))
                y_pred = np.full(n, np.nan)
                y_pred[runs[0]["kept"]] = runs[0]["y_pred"]
                g.create_dataset("y_pred", data=y_pred)
                g.attrs.update({"unit": result["targets"][name]["unit"],
                                "description": result["targets"][name]["description"], "networks": nets,
                                "n": runs[0]["n"], "n_dropped": runs[0]["n_dropped"]})
            tech = [res[net]["technique"] if layer == "input" else res[net]["technique"][key] for net in nets]
            g = f.create_group(f"technique/{layer}")
            g.create_dataset("balanced_accuracy", data=np.array([t["balanced_accuracy"] for t in tech]))
            g.create_dataset("y_pred", data=np.asarray(tech[0]["y_pred"]).astype(np.int64))
            g.attrs.update({"chance": tech[0]["chance"], "networks": nets})
        for layer in layers:
            for name in _cka_names(result, layer):
                g = f.create_group(f"cka/{layer}/{name}")
                for k in ("linear", "debiased"):
                    g.create_dataset(k, data=_net_values(result, "cka", layer, name, k))
                g.attrs.update({"p": result["results"]["trained"]["cka"][layer][name].get("p", np.nan),
                                "n_permutations": result["config"]["n_permutations"], "networks": networks})
            g = f.create_group(f"cka_training/{layer}")
            for k in ("linear", "debiased"):
                g.create_dataset(k, data=np.array([e[k] for e in result["training_cka"][layer]], np.float64))
            g.attrs["networks"] = networks[1:]
            for name, u in result["units"].get(layer, {}).items():
                g = f.create_group(f"units/{layer}/{name}")
                g.create_dataset("pearson", data=u["pearson"])
                g.create_dataset("spearman", data=u["spearman"])
                g.attrs.update({"best_unit": u["unit"], "best_r": u["r"], "p": u["p"], "n": u["n"],
                                "n_permutations": result["config"]["n_permutations"]})
        g = f.create_group("examples")
        for k, v in result["examples"].items():
            if np.asarray(v).ndim == 1:
                write_column(g, k, v)
        write_column(g, "cv_group", result["groups"])


def _fmt(v, digits=2) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _p(p, n_permutations) -> str:
    """A permutation p-value, or "≤ 1/(n+1)" at the floor that n permutations can show."""
    if p is None or not np.isfinite(p):
        return "–"
    floor = 1 / (1 + int(n_permutations))
    return f"≤ {floor:.3f} (floor)" if p <= floor * (1 + 1e-9) else f"{p:.3f}"


def _source(name: str) -> str:
    return "model input" if name in FROM_MODEL_INPUT else "audio" if name in CKA_DESCRIPTORS else "layer"


def _pm(mean, std) -> str:
    return "–" if not np.isfinite(mean) else f"{mean:.2f} ± {std:.2f}"


def probe_markdown(result: dict, summary: dict) -> str:
    """probe.md: settings, probe R² and RMSE, technique probe, CKA, change by training, best units."""
    cfg, layers, targets = result["config"], result["layers"], list(result["targets"])
    n_untrained = len(result["networks"]) - 1
    ref = result["reference"]
    pooling = "averaged over time" if cfg["pooling"] == "mean" else "flattened"
    lines = ["# Probe study", "",
             f"Model `{result['model']['dir']}` (input {result['model']['input']}, sha256 "
             f"{result['model']['checksum'][:12]}…); {len(result['groups'])} notes of subset "
             f"{cfg['subset'] or 'all'} ({len(set(result['groups']))} {cfg['group_by']} groups, grouped "
             f"{cfg['n_splits']}-fold CV); convolutional layers {pooling}; {n_untrained} untrained networks "
             f"(BatchNorm: {cfg['batchnorm']}); {cfg['n_permutations']} permutations (the smallest p-value they "
             f"can show is 1/{cfg['n_permutations'] + 1} = {1 / (cfg['n_permutations'] + 1):.3f}, written "
             f"\"≤ … (floor)\").  Descriptors marked \"model input\" are functions of the model input (the "
             f"S1 band energies are the time-averaged S1 input, the modulation spectrum an exact sum of the S2 "
             f"input): a layer's similarity to them says how much of its input it keeps, not what it represents "
             f"of the sound; \"audio\" descriptors are measured on the audio (pYIN, Hilbert envelope, STFT).", "",
             "## Probes: R², trained / untrained (mean ± std over seeds)", "",
             "Ridge probes of each descriptor, out-of-fold R² against the training-fold mean (≤ 0: no better "
             "than the mean).  Last row: L2 logistic probe of the technique, balanced accuracy (chance "
             f"{_fmt(ref['technique']['chance'])}).  Column \"input\": the model input averaged over time.", ""]
    rows = []
    for j, name in enumerate(targets):
        cells = [_fmt(ref["probe"][j]["r2"])]
        for layer in layers:
            p = summary["probe"][layer][name]
            cells.append(f"{_fmt(p['trained_r2'])} / {_pm(p['untrained_r2_mean'], p['untrained_r2_std'])}")
        rows.append([f"{name} ({result['targets'][name]['unit']})"] + cells)
    tech = [_fmt(ref["technique"]["balanced_accuracy"])]
    for layer in layers:
        bacc = _net_values(result, "technique", layer, "balanced_accuracy")
        tech.append(f"{_fmt(bacc[0])} / {_pm(*_stats(bacc[1:]))}")
    rows.append(["technique (balanced accuracy)"] + tech)
    lines += [md_table(["descriptor", "input"] + layers, rows), "",
              "## Probe RMSE of the trained network (descriptor units) and of the mean predictor", ""]
    rows = []
    for j, name in enumerate(targets):
        r0 = result["results"]["trained"]["probe"][layers[0]][j]
        rows.append([name, result["targets"][name]["unit"], _fmt(ref["probe"][j]["rmse"], 3)]
                    + [_fmt(summary["probe"][layer][name]["trained_rmse"], 3) for layer in layers]
                    + [_fmt(r0["rmse_mean"], 3), str(r0["n"]), result["targets"][name]["source"]])
    lines += [md_table(["descriptor", "unit", "input"] + layers + ["mean predictor", "notes", "source"], rows,
                       align="ll" + "r" * (len(layers) + 3) + "l"), "",
              "## CKA: debiased trained (permutation p) / untrained mean; linear CKA in probe.json", ""]
    rows = []
    for name in list(CKA_DESCRIPTORS) + layers:
        cells = []
        for layer in layers:
            if name == layer:
                cells.append("1")
                continue
            deb = _net_values(result, "cka", layer, name, "debiased")
            p = summary["cka"][layer][name]["p"]
            cells.append(f"{_fmt(deb[0])} (p {_p(p, cfg['n_permutations'])}) / {_fmt(_stats(deb[1:])[0])}")
        rows.append([name, _source(name)] + cells)
    lines += [md_table(["descriptor", "from"] + layers, rows, align="ll" + "r" * len(layers)), "",
              "## What training changed: debiased CKA between each trained layer and the same layer untrained", "",
              md_table(["layer", "mean ± std over seeds"],
                       [[layer, _pm(*_stats([e["debiased"] for e in result["training_cka"][layer]]))]
                        for layer in layers]), "",
              "## Best single unit (trained network, channels averaged over time): Pearson r (max-statistic p)", ""]
    rows = []
    for name in targets:
        cells = []
        for layer in layers:
            u = result["units"].get(layer, {}).get(name)
            cells.append("–" if u is None else f"#{u['unit']}: {u['r']:+.2f} (p {_p(u['p'], cfg['n_permutations'])})")
        rows.append([name] + cells)
    lines += [md_table(["descriptor"] + layers, rows), "",
              f"![probe R²]({FILES['r2']})", "", f"![CKA]({FILES['cka']})", ""]
    return "\n".join(lines)


def _debiased(result: dict, layer: str, name: str) -> np.ndarray:
    """Debiased CKA of every network (N,), NaN for a layer with itself."""
    if name == layer:
        return np.full(len(result["networks"]), np.nan)
    return _net_values(result, "cka", layer, name, "debiased")


def _figures(result: dict, summary: dict, out_dir: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...viz.probe import trained_untrained_heatmaps
    layers, targets = result["layers"], list(result["targets"])
    probe, tech = summary["probe"], summary["technique_probe"]
    tr = [[probe[L][t]["trained_r2"] for t in targets] + [tech[L]["trained"]] for L in layers]
    un = [[probe[L][t]["untrained_r2_mean"] for t in targets] + [tech[L]["untrained_mean"]] for L in layers]
    trained_untrained_heatmaps(np.array(tr, np.float64), np.array(un, np.float64), layers,
                               targets + ["technique (bal. acc.)"], label="probe R²")
    plt.savefig(os.path.join(out_dir, FILES["r2"]), dpi=110)
    plt.close("all")
    names = list(CKA_DESCRIPTORS) + layers
    deb = np.array([[_debiased(result, L, n) for n in names] for L in layers])   # (layers, names, N)
    untrained = deb[..., 1:].mean(axis=-1) if deb.shape[-1] > 1 else np.full(deb.shape[:2], np.nan)
    trained_untrained_heatmaps(deb[..., 0], untrained, layers, names, label="debiased CKA")
    plt.savefig(os.path.join(out_dir, FILES["cka"]), dpi=110)
    plt.close("all")


@claims_output("out_dir", kind="probe")
def write_probe_outputs(result: dict, out_dir: PathLike, *, overwrite: bool = False) -> Dict[str, str]:
    """Write probe.h5, probe.json, probe.md and the two figures into ``out_dir`` (as a whole, under the output
    rule: :mod:`scatterxai._util.outputs`); return their paths."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, v) for k, v in FILES.items()}
    summary = summary_json(result)
    _write_h5(paths["h5"], result)
    write_json(paths["json"], summary)
    _figures(result, summary, out_dir)
    with atomic_path(paths["md"]) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(probe_markdown(result, summary))
    return paths


#: the CKA descriptors of the report section
_SECTION_CKA = ("audio_descriptors", "mel_spectrum", "s1_energy")


def report_section(out_dir: PathLike, *, figures_rel: str, note: str = "") -> str:
    """A report.md section from the files in ``out_dir``: per layer, probe R² of log2 f0 and log2 rate, the
    technique probe, debiased CKA with the audio descriptors and the mel spectrum (measured on the audio) and
    with the S1 energies (a function of the model input), trained / untrained.

    Parameters
    ----------
    out_dir : str
        Directory holding probe.json and probe.h5.
    figures_rel : str
        Path of ``out_dir`` relative to the report (for the figure links).
    note : str
        A sentence on the notes and settings (e.g. the subset), put before the table.
    """
    with open(os.path.join(out_dir, FILES["json"]), encoding="utf-8") as fh:
        summary = json.load(fh)

    def num(v):
        return float("nan") if v is None else float(v)

    def pair(a, b):
        return f"{_fmt(num(a))} / {_fmt(num(b))}"

    rows = []
    with h5py.File(os.path.join(out_dir, FILES["h5"]), "r") as f:
        for layer in summary["layers"]:
            p, t = summary["probe"][layer], summary["technique_probe"][layer]
            cka = [f[f"cka/{layer}/{d}/debiased"][()] for d in _SECTION_CKA]
            rows.append([layer, pair(p["log2_f0"]["trained_r2"], p["log2_f0"]["untrained_r2_mean"]),
                         pair(p["log2_rate"]["trained_r2"], p["log2_rate"]["untrained_r2_mean"]),
                         pair(t["trained"], t["untrained_mean"])]
                        + [pair(c[0], np.mean(c[1:]) if c.size > 1 else None) for c in cka])
        ref = [f[f"probe/input/{d}/r2"][0] for d in ("log2_f0", "log2_rate")]
        ref_tech = f["technique/input/balanced_accuracy"][0]
    rows.insert(0, ["input (reference)", _fmt(ref[0]), _fmt(ref[1]), _fmt(ref_tech)] + [""] * len(_SECTION_CKA))
    return "\n".join(["## What do the layers represent? (probe study)", "", note, "",
                      "Trained / untrained (mean over seeds).  R²: grouped-CV ridge probe (out-of-fold, against "
                      "the training-fold mean); technique: balanced accuracy of an L2 logistic probe; CKA: "
                      "debiased linear CKA with the scalar audio descriptors together (pYIN f0, AM/FM rate and "
                      "depth, spectral shape; z-scored) and the mel spectrum, both measured on the audio, and "
                      "with the S1 band energies — which are the time-averaged S1 input itself, so that column "
                      "says how much of its input a layer keeps, not what it learned.  Every descriptor, "
                      "permutation p-values and the best single units: probe/probe.md.", "",
                      md_table(["layer", "R² log2 f0", "R² log2 rate", "technique", "CKA audio descriptors",
                                "CKA mel spectrum (audio)", "CKA S1 energy (= input)"], rows), "",
                      f"![probe R², trained and untrained]({figures_rel}/{FILES['r2']})", "",
                      f"![debiased CKA, trained and untrained]({figures_rel}/{FILES['cka']})", ""])
