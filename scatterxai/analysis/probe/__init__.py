"""What do the layers represent? Numerical core in pure numpy + scikit-learn (no torch).

:mod:`.cka` compares two multi-dimensional representations of the same notes (linear CKA, debiased CKA,
permutation null); :mod:`.probes` decodes one descriptor from a layer (grouped-CV ridge and logistic
probes); :mod:`.units` matches single units to a scalar descriptor (Pearson / Spearman r, max-statistic
permutation null).
"""
