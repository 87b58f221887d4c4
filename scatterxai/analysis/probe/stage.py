"""The probe study in ``scatterxai run``: two analysis stages (:data:`scatterxai.pipeline.ANALYSES`).

* ``describe`` — descriptors of a bounded subset of the test split → ``OUT/descriptors.h5``: at most
  :data:`PIPELINE_NOTES` notes spread over classes and instruments
  (:func:`scatterxai.data.split.spread_subset`), because pYIN costs ≈ 0.35 s of CPU per note; computed by
  as many worker processes as the run's ``jobs`` (default: all cores);
* ``probe`` — the probe study of the S1+S2 model on those notes → ``OUT/probe/`` with
  :data:`PIPELINE_UNTRAINED_SEEDS` untrained networks and :data:`PIPELINE_PERMUTATIONS` permutations (the
  command's defaults are 5 and 200), and a section of report.md.

Both are redone only when their inputs (corpus, features, model) or settings change.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..._util.log import logger

if TYPE_CHECKING:
    from ..context import AnalysisContext

__all__ = ["describe_stage", "prepare_describe", "probe_stage", "PIPELINE_NOTES", "PIPELINE_UNTRAINED_SEEDS",
           "PIPELINE_PERMUTATIONS"]

#: notes of the test split described and probed by ``scatterxai run``
PIPELINE_NOTES = 80
#: untrained networks of the pipeline's probe study
PIPELINE_UNTRAINED_SEEDS = 2
#: permutations of the pipeline's CKA and best-unit nulls
PIPELINE_PERMUTATIONS = 50


def _describe_config(ctx):
    from ..describe.run import DescribeConfig
    return DescribeConfig(subset="test", max_notes=PIPELINE_NOTES, seed=ctx.config.seed,
                          jobs=ctx.config.jobs or os.cpu_count() or 1)


def _n_test_notes(ctx) -> int:
    from ...features.store import FeatureFile
    with FeatureFile(ctx.features) as ff:
        return len(ff.indices("test")) if "subset" in ff.examples else 0


def _group_by(ctx) -> str:
    """Cross-validation groups: instruments when the data name them (SOL-PMT, the synthetic corpus), else
    pitches (a user's CSV without an ``instrument`` column)."""
    from ...features.store import FeatureFile
    with FeatureFile(ctx.features) as ff:
        return "instrument" if "instrument" in ff.examples else "pitch"


def _skipped(ctx, *, warn: bool = False) -> str:
    """A report note when the test split is too small for the probe study (both stages are skipped), else "";
    ``warn`` also logs it (once per run: the describe stage, which runs first)."""
    from .study import MIN_NOTES
    n = _n_test_notes(ctx)
    if n >= MIN_NOTES:
        return ""
    if warn:
        logger.warning("warning: describe and probe skipped: the test split has %d notes, the probe study needs "
                       "at least %d", n, MIN_NOTES)
    return (f"## What do the layers represent? (probe study)\n\nSkipped: the test split has {n} notes and the "
            f"probe study needs at least {MIN_NOTES} (run `scatterxai describe` and `scatterxai probe` with "
            f"--subset all on a larger study).\n")


def _describe_key(ctx) -> dict:
    from ..describe.run import DESCRIBE_VERSION
    return {"data": ctx.digest("data"), "extract": ctx.digest("extract"),
            "config": _describe_config(ctx).result_settings(), "version": DESCRIBE_VERSION}


def prepare_describe(ctx: AnalysisContext) -> None:
    """A preparation (:data:`scatterxai.pipeline.PREPARATIONS`): when the describe stage will run, start
    :func:`scatterxai.analysis.describe.descriptors.warm_up` in the background.  numba's first compilation
    of librosa's functions takes ≈ 17 s of one core in a fresh environment; done while the single-threaded
    figure and comparison stages run, it no longer holds up both describe workers, each of which would
    compile them for itself."""
    if _skipped(ctx) or ctx.is_current("describe", _describe_key(ctx), [_descriptors_path(ctx)]):
        return
    ctx.start_background("describe", "scatterxai.analysis.describe.descriptors:warm_up")


def _descriptors_path(ctx) -> str:
    return os.path.join(ctx.out, "descriptors.h5")


def describe_stage(ctx: AnalysisContext) -> str:
    """``OUT/descriptors.h5`` for the notes the probe study uses (no report section of its own)."""
    from ..describe.run import describe_notes
    if _skipped(ctx, warn=True):
        return ""
    config = _describe_config(ctx)
    out = _descriptors_path(ctx)
    ctx.wait_background("describe")
    ctx.stage("describe", _describe_key(ctx), [out],
              lambda: logger.info("%s", describe_notes(ctx.meta_csv, ctx.audio_root, out, features=ctx.features,
                                                       config=config, overwrite=True, progress=True).describe()))
    return ""


def probe_stage(ctx: AnalysisContext) -> str:
    """``OUT/probe/`` for the S1+S2 model on the described test notes; returns the report section."""
    from .export import FILES, report_section, write_probe_outputs
    from .study import ProbeConfig, probe_study
    skipped = _skipped(ctx)
    if skipped:
        return skipped
    config = ProbeConfig(subset="test", untrained_seeds=PIPELINE_UNTRAINED_SEEDS, group_by=_group_by(ctx),
                         n_permutations=PIPELINE_PERMUTATIONS, seed=ctx.config.seed, device=ctx.config.device,
                         jobs=ctx.config.jobs or os.cpu_count() or 1)
    out_dir = os.path.join(ctx.out, "probe")
    descriptors = _descriptors_path(ctx)

    def run():
        result = probe_study(ctx.features, descriptors, ctx.model_dir("s1s2"), config, progress=True)
        write_probe_outputs(result, out_dir)

    ctx.stage("probe", {"describe": ctx.digest("describe"), "train": ctx.digest("train_s1s2"),
                        "config": config.result_settings()}, [os.path.join(out_dir, f) for f in FILES.values()], run)
    note = (f"Notes: at most {PIPELINE_NOTES} notes of the test split spread over classes and instruments "
            f"(pYIN costs ≈ 0.35 s of CPU per note); {PIPELINE_UNTRAINED_SEEDS} untrained networks (BatchNorm "
            f"recalibrated on the same notes), {PIPELINE_PERMUTATIONS} permutations (smallest p-value they can "
            f"show: 1/{PIPELINE_PERMUTATIONS + 1} = {1 / (PIPELINE_PERMUTATIONS + 1):.3f}); grouped 5-fold CV by "
            f"{config.group_by} (held-out features clipped to the training fold's range); convolutional layers "
            f"averaged over time.  `scatterxai probe` defaults: all notes, 5 untrained networks, 200 "
            f"permutations.")
    return report_section(out_dir, figures_rel="probe", note=note)
