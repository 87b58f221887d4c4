"""The ``explore`` stage of ``scatterxai run`` (:data:`scatterxai.pipeline.ANALYSES`): ``OUT/explorer/``.

Bounded so that the demo keeps its time budget: :data:`RUN_CONFIG` shows at most two notes per class and
auralises the paper's two LRP rules only (every method's maps are shown; ``scatterxai explore OUT`` rewrites
the folder with more notes and every method auralised).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from .build import EXPLORER_FILES, ExploreConfig, explore
from .data import method_title

if TYPE_CHECKING:
    from ..analysis.context import AnalysisContext

__all__ = ["RUN_CONFIG", "RUN_AURALISED", "pipeline_section", "prepare_explore"]

#: methods auralised by the pipeline's explorer (when the run has them)
RUN_AURALISED = ("epsilon", "epsilon_plus")
#: the pipeline's explorer: two notes per class, the paper's rules auralised
RUN_CONFIG = ExploreConfig(notes=2, auralise=RUN_AURALISED)


def prepare_explore(ctx: AnalysisContext) -> None:
    """A preparation (:data:`scatterxai.pipeline.PREPARATIONS`): when the explorer will auralise notes and the
    on-disk cache lacks the float64 filter bank of the run's scattering configuration, build it in the
    background (:func:`scatterxai.analysis.auralise.resynth.prepare_bank`, ≈ 6 s of one core for the paper's
    configuration), while the single-threaded figure and comparison stages leave a core idle; the explorer
    stage then reads it from the cache instead of building it first."""
    from ..analysis.auralise.resynth import bank_missing
    from ..io.hdf5 import read_config
    from ..io.relevance import RelevanceFile

    with RelevanceFile(ctx.relevance) as rf:
        auralised = RUN_CONFIG.audio and any(m in rf.methods for m in RUN_AURALISED)
        scattering = read_config(rf.attrs, "relevance", rf.path)
    if auralised and bank_missing(scattering):
        ctx.start_background("explore", "scatterxai.analysis.auralise.resynth:prepare_bank",
                             config=scattering.to_dict())


def pipeline_section(ctx: AnalysisContext) -> str:
    """Write ``OUT/explorer/`` (stage ``explore``, after the comparison and the quality checks) and return the
    report's section saying what it holds and how to open it."""
    from ..io.relevance import RelevanceFile

    with RelevanceFile(ctx.relevance) as rf:
        methods = rf.methods
    config = replace(RUN_CONFIG, auralise=tuple(m for m in RUN_AURALISED if m in methods))
    out = os.path.join(ctx.out, "explorer")
    upstream = {name: ctx.digest(name) for name in ("explain", "compare", "quality") if _has(ctx, name)}
    key = {**upstream, "config": asdict(config)}
    outputs = [os.path.join(out, EXPLORER_FILES["index"]), os.path.join(out, EXPLORER_FILES["summary"])]
    if not ctx.is_current("explore", key, outputs):   # else the preparation is stopped at the run's end
        ctx.wait_background("explore")
    st = ctx.stage("explore", key, outputs,
                   lambda: explore(ctx.out, out, config, audio_root=ctx.audio_root, progress=True))
    with open(os.path.join(out, EXPLORER_FILES["summary"]), encoding="utf-8") as fh:
        summary = json.load(fh)
    rel = os.path.relpath(os.path.join(out, EXPLORER_FILES["index"]), ctx.out)
    seconds = f" in {st.seconds:.1f} s" if getattr(st, "seconds", None) is not None else ""
    aural = " and ".join(method_title(m) for m in summary["auralised"]) or "none"
    return "\n".join([
        "## Explorer", "",
        f"[`{rel}`]({rel}): open it in a browser (double-click it, or `xdg-open {rel}` / `open {rel}`); it "
        f"runs from the files, with no server and no network.  A table of the notes; each note's map per method "
        f"(hover a cell for its λ1 and λ2 in Hz and its relevance), spectrogram, class probabilities, and "
        f"players for the note and for the part of it that a method's map keeps and leaves (auralised here: "
        f"{aural}); aggregated maps and kurtosis per class; the comparison and quality verdicts of the methods.  "
        f"Shown: {summary['selection']}  Written{seconds}; {summary['bytes'] / 1e6:.1f} MB.  "
        f"`scatterxai explore RUN_DIR --notes 5` (RUN_DIR: this report's folder) rewrites it with more notes and "
        f"every method auralised.", ""])


def _has(ctx: AnalysisContext, name: str) -> bool:
    try:
        ctx.digest(name)
    except KeyError:
        return False
    return True
