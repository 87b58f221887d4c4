"""What do the layers represent?

Numerical core in pure numpy + scikit-learn (no torch): :mod:`.cka` compares two multi-dimensional
representations of the same notes (linear CKA, debiased CKA, permutation null); :mod:`.probes` decodes one
descriptor (or many at once) from a layer (grouped-CV ridge and logistic probes); :mod:`.units` matches single
units to a scalar descriptor (Pearson / Spearman r, max-statistic permutation null).

The study: :mod:`.study` runs them on the activations of a trained model and of untrained networks (torch,
imported when the study runs), :mod:`.export` writes probe.h5 / probe.json / probe.md and the heat maps,
:mod:`.stage` puts it (and the descriptors it needs) into ``scatterxai run``.

Performance: the work is many small BLAS calls.  On a shared machine run it with one BLAS thread per
process (``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl.threadpool_limits(1)``, as the study does); measured at
n = 334 on 2 busy cores, p = 38,400: ridge probe 3.4 s with one thread, 60 s with OpenBLAS's default threads.
"""
