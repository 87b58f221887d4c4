"""What an analysis stage of ``scatterxai run`` receives: the part of :class:`scatterxai.pipeline.RunContext`
that the stages of :data:`scatterxai.pipeline.ANALYSES` use, as protocols (for annotations only: analysis
modules never import the pipeline, which imports them by name)."""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Protocol

__all__ = ["AnalysisContext", "RunSettings", "StageRecord"]


class RunSettings(Protocol):
    """The fields of :class:`scatterxai.pipeline.RunConfig` the analysis stages read."""

    seed: int
    device: str
    jobs: Optional[int]


class StageRecord(Protocol):
    """A recorded stage (:class:`scatterxai.pipeline.Stage`): its digest goes into later stages' keys."""

    digest: str


class AnalysisContext(Protocol):
    """A pipeline run as an analysis stage sees it (:class:`scatterxai.pipeline.RunContext`)."""

    out: str
    config: RunSettings
    features: str
    relevance: str
    meta_csv: Optional[str]
    audio_root: Optional[str]

    def stage(self, name: str, key: dict, outputs: List[str], fn: Callable[[], object]) -> StageRecord:
        """Run ``fn`` as stage ``name`` unless a stamp with the same ``key`` and all ``outputs`` exist."""
        ...

    def digest(self, name: str) -> str:
        """Digest of an earlier stage of this run."""
        ...

    def is_current(self, name: str, key: dict, outputs: List[str]) -> bool:
        """Whether :meth:`stage` with these arguments would reuse the stage's outputs."""
        ...

    def model_dir(self, inp: str) -> str:
        """Model directory of input ``inp`` ("s1" or "s1s2")."""
        ...

    def start_background(self, name: str, target: str, **kwargs: Any) -> None:
        """Run ``target`` ("module:function", with JSON-serialisable ``kwargs``) in a background process named
        ``name`` (a preparation)."""
        ...

    def wait_background(self, name: str) -> None:
        """Wait for the background process ``name``, if one was started (its failure is only logged)."""
        ...
