"""Random streams of the renderer: one shared generator (the corpus) or one stream per draw (sweeps).

:func:`scatterxai.data.synth.render_note` draws a note's timbre, noise and room from
``np.random.default_rng([seed, index, 1])``, one draw after another.  Many draws have a size that depends
on the note's parameters (the rate jitter is drawn at twice the modulation rate, one ripple value per
partial — their number depends on f0 —, one depth per modulation cycle), so with a single generator
changing the rate or f0 shifts every later draw: the two notes would also differ in tilt, noise level and
room.  That is harmless in a corpus, where every note has its own draws anyway, but a controlled variation
("the same note at another rate") needs the other draws to stay put.

:class:`SplitStreams` gives each *call* its own generator, ``default_rng(key + (call number,))``: the k-th
call of the renderer returns the first values of the same stream whatever the sizes of the calls before
it, so the per-partial ripple of partial 3 or the depth of modulation cycle 12 are the same in every
note of a sweep.  Code paths that exist for some notes only (the alternate fingering of a trill, the room,
the technique controls) take a named sub-stream (:func:`substream`), so that the calls after them keep
their numbers when a technique or an instrument changes.

With a plain ``np.random.Generator`` (the corpus) :func:`substream` returns the generator itself, so the
corpus draws exactly what it always drew (its notes stay bit-identical).
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable, Union

import numpy as np

__all__ = ["SplitStreams", "substream", "STREAM_MODES"]

#: how :func:`scatterxai.data.synth.render_note` draws: one generator, or one stream per call
STREAM_MODES = ("shared", "split")
# marks split-mode keys, so that they never equal the corpus key [seed, index, 1]
_SPLIT_TAG = 0x5EED
# marks a named sub-stream within a key (call numbers stay far below it)
_CHILD_TAG = 0x7FFFFFFF


class SplitStreams:
    """Stand-in for the ``np.random.Generator`` methods the synthesiser calls; every call is a new stream.

    Parameters
    ----------
    key : tuple of int
        Non-negative integers below 2**32; call number i draws from ``default_rng(key + (i,))``.
    """

    __slots__ = ("key", "_calls")

    def __init__(self, key: Iterable[int]):
        self.key = tuple(int(k) for k in key)
        self._calls = 0

    @classmethod
    def for_note(cls, seed: int, index: int) -> SplitStreams:
        """The renderer's streams of note (seed, index)."""
        return cls((seed, index, 1, _SPLIT_TAG))

    def _next(self) -> np.random.Generator:
        g = np.random.default_rng(self.key + (self._calls,))
        self._calls += 1
        return g

    def child(self, name: str) -> SplitStreams:
        """An independent family of streams named ``name`` (its calls do not advance this one's count)."""
        return SplitStreams(self.key + (_CHILD_TAG, zlib.crc32(name.encode())))

    def uniform(self, *args: Any, **kwargs: Any) -> Any:
        return self._next().uniform(*args, **kwargs)

    def normal(self, *args: Any, **kwargs: Any) -> Any:
        return self._next().normal(*args, **kwargs)

    def standard_normal(self, *args: Any, **kwargs: Any) -> Any:
        return self._next().standard_normal(*args, **kwargs)

    def integers(self, *args: Any, **kwargs: Any) -> Any:
        return self._next().integers(*args, **kwargs)

    def choice(self, *args: Any, **kwargs: Any) -> Any:
        return self._next().choice(*args, **kwargs)

    def __repr__(self):
        return f"SplitStreams(key={self.key}, calls={self._calls})"


#: A random source of the renderer: a shared ``np.random.Generator`` or :class:`SplitStreams`.
Rng = Union[np.random.Generator, SplitStreams]


def substream(rng: Rng, name: str) -> Rng:
    """``rng.child(name)`` for :class:`SplitStreams`; a shared ``Generator`` is returned unchanged."""
    return rng.child(name) if isinstance(rng, SplitStreams) else rng
