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
#: size of the default (demo) synthetic corpus as a fraction of SOL-PMT's counts, the demo profile of
#: ``scatterxai run``: large enough for the S1+S2 network to see enough vibrato and bisbigliando notes
#: (README, "Two commands" and Table 1, measures the accuracy at this scale and below it, with commands)
DEFAULT_SCALE = 0.3
#: performance and recording conditions of the synthetic corpus (:mod:`scatterxai.data.synth.realism`)
REALISM_FACTORS = ("excerpt", "legato", "vibrato", "room", "noise", "mic", "timbre", "articulation", "players",
                   "common")
#: the conditions the corpus (and the demo) uses unless told otherwise: studio notes, as in the paper's task,
#: whose trills, tremolos and flutters have the depth of amplitude pattern measured on real notes
#: (``articulation``), whose vibratos are played by every sustained instrument and a singer (``players``),
#: with three times SOL-PMT's few vibrato notes (``common``), each heard through its own microphone and
#: channel (``mic``) with background noise 30-60 dB below it (``noise``).  The README's "Studio notes or
#: performances" section measures this choice against the other conditions (synthetic accuracy and real
#: transfer over training seeds, with the commands that produce them)
DEFAULT_REALISM = "noise+mic+articulation+players+common"
