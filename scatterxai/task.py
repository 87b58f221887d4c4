"""The task's vocabulary, defined once: the paper's technique classes, the network's input kinds, the
per-path metadata columns, the network's layers.

:data:`CLASSES` is the default label set: the five periodic modulation techniques of SOL-PMT and of the
synthetic corpus, a note's label being its index here (companion code's convention).  Other studies bring
their own class names, which the files they write record.
"""

from __future__ import annotations

__all__ = ["CLASSES", "INPUTS", "INPUT_LABELS", "PATH_FIELDS", "LAYERS", "DEFAULT_SCALE", "REALISM_FACTORS",
           "DEFAULT_REALISM"]

#: technique classes of SOL-PMT and the synthetic corpus; a note's label is the index of its class here
CLASSES = ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")
#: input selections of the network: name → description
INPUTS = {"s1": "first-order coefficients only", "s1s2": "first- and second-order coefficients"}
#: how reports and figures name the input selections
INPUT_LABELS = {"s1": "S1", "s1s2": "S1+S2"}
#: the public per-path columns (``/paths`` in every HDF5 file, ``paths`` in model directories)
PATH_FIELDS = ("order", "lambda1_hz", "lambda2_hz", "n1", "n2")
#: the network's layers whose activations the analyses read (and DeconvNet can start from), input to output
LAYERS = ("conv0", "conv1", "conv2", "fc1")
#: size of the default (demo) synthetic corpus as a fraction of SOL-PMT's counts (≈ 1,670 notes), the
#: demo profile of ``scatterxai run``: at 0.1 (556 notes) the S1+S2 network sees 11 vibrato and 17
#: bisbigliando training notes and its test macro accuracy varies from 78 % to 91 % with the seed; at 0.3
#: it is 93–98 %
DEFAULT_SCALE = 0.3
#: performance and recording conditions of the synthetic corpus (:mod:`scatterxai.data.synth.realism`)
REALISM_FACTORS = ("excerpt", "legato", "vibrato", "room", "noise", "mic", "timbre", "articulation", "players",
                   "common")
#: the conditions the corpus (and the demo) uses unless told otherwise: studio notes, as in the paper's task,
#: whose trills, tremolos and flutters have the depth of amplitude pattern measured on real notes
#: (``articulation``), whose vibratos are played by every sustained instrument and a singer (``players``),
#: with three times SOL-PMT's few vibrato notes (``common``), each heard through its own microphone and
#: channel (``mic``) with background noise 30-60 dB below it (``noise``).  README, "Studio notes or
#: performances": over training seeds 0-4 the demo-scale model classifies more real recordings with these
#: (median 23 of 24 whole files) than without the noise (21) or with ``articulation`` alone (19), at a
#: synthetic test accuracy as high (95.0-97.0 %); the louder noise of earlier versions (12-50 dB below the
#: note) cost synthetic accuracy
DEFAULT_REALISM = "noise+mic+articulation+players+common"
