"""Linear probes: how well does a layer decode one descriptor of unseen note families? (scikit-learn)

Protocol (the same for both probes)
-----------------------------------
outer CV
    Grouped K-fold on ``groups`` (instrument or pitch): no group sits in both a training and a test fold.
    Groups are dealt to folds largest first, each to the fold holding the fewest notes so far
    (scikit-learn's ``GroupKFold`` balancing); ``seed`` shuffles the order among groups of equal size, so
    with equal-sized groups it picks the partition.  With fewer groups than ``n_splits``, n_splits drops
    to the number of groups (a warning); fewer than 2 groups is an error.
model
    ``Pipeline(StandardScaler, row-space projection, RidgeCV | LogisticRegressionCV)`` fitted on the
    training fold only: features are z-scored with the training fold's mean and standard deviation.  When
    a training fold has more features than notes, its z-scored features are replaced by their
    coordinates in the fold's row space (≤ n_train columns, from the eigendecomposition of its Gram).  An
    L2-penalised linear model's weights always lie in that row space and the penalty is rotation-invariant,
    so the fit, α / C and the predictions are unchanged; it only makes p = 38,400 (flattened conv0) as cheap as p ≈ n.
clipping (option ``clip``, off by default)
    After z-scoring, the held-out fold's features are clipped to the range the training fold spans, so that
    the probe does not extrapolate: with groups by instrument, a held-out instrument can lie far outside
    the others (z-scores in the hundreds) and an unclipped linear probe then predicts values far outside
    the target's range.  Training rows are unchanged; the inner CV sees the outer training fold unclipped.
inner CV
    α (ridge) or C (logistic) is chosen on the training fold by a grouped K-fold over the training
    fold's own groups (``inner_splits`` folds, fewer if it holds fewer groups), scored by mean squared
    error (ridge) or balanced accuracy (logistic), so that the hyper-parameter is tuned for unseen
    groups as the outer score is.  A training fold with a single group falls back to leave-one-out
    (ridge, scikit-learn's efficient GCV) or a stratified 3-fold split (logistic).
scores (pooled out-of-fold predictions)
    Ridge: R² = 1 − SSE / SST with SSE = Σ (y − ŷ)² and SST = Σ (y − ȳ_train)², where ȳ_train is the
    mean of the training fold that predicted the note — the mean predictor under the same CV, so
    R² ≤ 0 means "no better than predicting the training mean".  This SST is ≥ the SST around the pooled
    mean (it adds the spread of fold means), most visibly when groups differ in level (e.g. y = log2 f0,
    groups = pitch).  RMSE = √(SSE / n) and the mean predictor's √(SST / n), in y's units.
    Logistic: balanced accuracy (mean per-class recall) of the pooled predictions, chance = 1 / n_classes
    (balanced accuracy of any constant prediction); classes are weighted "balanced" in the fit.
missing values
    Notes whose target is NaN (ridge) or NaN / None (logistic), e.g. f0 unknown, are dropped; the result
    says how many (``n_dropped``) and which rows were kept (``kept``).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ...errors import ParameterError

__all__ = ["logistic_probe", "ridge_probe", "ridge_probes"]

logger = logging.getLogger("scatterxai")

Split = tuple[np.ndarray, np.ndarray]

#: default ridge penalties and inverse logistic penalties (on z-scored features)
ALPHAS = tuple(np.logspace(-3, 5, 17))
CS = tuple(np.logspace(-4, 4, 9))


class _RowSpace(TransformerMixin, BaseEstimator):
    """Coordinates of the rows in the training rows' span (identity when features ≤ samples).

    Exact for L2-penalised linear models with an intercept fitted on z-scored (centred) training rows:
    their weights lie in the span of the training rows, and the L2 norm is unchanged by the rotation.
    The orthonormal basis is V = X_trᵀ U Λ^(−1/2) from the eigendecomposition X_tr X_trᵀ = U Λ Uᵀ (cost
    n² p, a third of a thin SVD's); directions with λ < 10⁻¹² λ_max (singular value < 10⁻⁶ of the
    largest) are dropped, far below any penalty of the probe grids.
    """

    def fit(self, X, y=None):
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.rows_ = None
        if X.shape[1] <= X.shape[0]:
            return X
        w, U = np.linalg.eigh(X @ X.T)
        keep = w > max(float(w[-1]), 0.0) * 1e-12
        self.rows_, self.weights_ = X, U[:, keep] / np.sqrt(w[keep])
        return U[:, keep] * np.sqrt(w[keep])  # = X V

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        return X if self.rows_ is None else (X @ self.rows_.T) @ self.weights_


class _ClipToTrainingRange(TransformerMixin, BaseEstimator):
    """Clip features to the per-column range of the rows it was fitted on (identity on those rows)."""

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=np.float64)
        self.low_, self.high_ = X.min(axis=0), X.max(axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=np.float64), self.low_, self.high_)


def _scaling(clip: bool) -> list:
    return [StandardScaler()] + ([_ClipToTrainingRange()] if clip else [])


def _features(X, n_rows: int | None = None) -> np.ndarray:
    A = np.asarray(X, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[1] < 1:
        raise ParameterError(f"X must have shape (n, features), got {np.shape(X)}")
    if n_rows is not None and A.shape[0] != n_rows:
        raise ParameterError(f"X has {A.shape[0]} rows but the target has {n_rows} values")
    if not np.all(np.isfinite(A)):
        raise ParameterError(f"X holds {int(np.sum(~np.isfinite(A)))} non-finite values; "
                             "drop or impute those notes first")
    return A


def _check_groups(groups, n: int) -> np.ndarray:
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise ParameterError(f"groups must be a 1-D array with one label per note (n = {n}), "
                             f"got shape {g.shape}")
    if g.dtype.kind == "f" and np.any(np.isnan(g)):
        raise ParameterError("groups holds NaN; every note needs a group (instrument or pitch)")
    return g


def _group_folds(groups: np.ndarray, n_splits: int, rng: np.random.Generator, *,
                 quiet: bool = False) -> list[Split]:
    """Balanced grouped K-fold: groups largest first, each to the lightest fold; ties in random order."""
    uniq, inv = np.unique(groups, return_inverse=True)
    inv = inv.ravel()
    if len(uniq) < 2:
        raise ParameterError(f"grouped CV needs at least 2 groups, got {len(uniq)} ({uniq.tolist()})")
    if n_splits > len(uniq):
        if not quiet:
            logger.warning("only %d groups: using %d folds instead of n_splits = %d",
                           len(uniq), len(uniq), n_splits)
        n_splits = len(uniq)
    sizes = np.bincount(inv)
    order = rng.permutation(len(uniq))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(len(uniq), dtype=int)
    load = np.zeros(n_splits)
    for gi in order:
        f = int(np.argmin(load))
        fold_of_group[gi] = f
        load[f] += sizes[gi]
    fold = fold_of_group[inv]
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(n_splits)]


def _inner_folds(groups: np.ndarray, inner_splits: int, rng) -> list[Split] | None:
    """Grouped inner splits of a training fold, or None if it holds a single group."""
    if len(np.unique(groups)) < 2:
        return None
    return _group_folds(groups, inner_splits, rng, quiet=True)


def _check_splits(n_splits, inner_splits):
    for name, v in (("n_splits", n_splits), ("inner_splits", inner_splits)):
        if int(v) != v or v < 2:
            raise ParameterError(f"{name} must be an integer ≥ 2, got {v!r}")


def _grid(values, name: str) -> np.ndarray:
    v = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if v.ndim != 1 or v.size < 1 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ParameterError(f"{name} must be a 1-D array of positive finite values, got {values!r}")
    return v


def _log_edge(chosen: np.ndarray, grid: np.ndarray, name: str):
    at_edge = int(np.sum(np.isclose(chosen, grid.min()) | np.isclose(chosen, grid.max())))
    if at_edge:  # expected without signal (strongest penalty) or with p ≪ n and little noise (weakest)
        logger.info("%s chosen at the edge of its grid [%g, %g] in %d of %d folds",
                    name, grid.min(), grid.max(), at_edge, len(chosen))


def ridge_probe(X: np.ndarray, y: np.ndarray, *, groups: np.ndarray, n_splits: int = 5,
                alphas: ArrayLike = ALPHAS, inner_splits: int = 3,
                seed: int = 0, clip: bool = False) -> dict:
    """Decode a scalar descriptor from features with ridge regression under grouped CV.

    Parameters
    ----------
    X : np.ndarray [shape=(n, p)]
        Features, one row per note (e.g. a layer time-averaged or flattened).
    y : np.ndarray [shape=(n,)]
        Descriptor in natural units (dB, octaves = log2 f0, cents, Hz); NaN marks unknown values.
    groups : np.ndarray [shape=(n,)]
        Note family of every note (instrument or pitch); the folds never split a group.
    n_splits : int ≥ 2
        Outer folds (reduced to the number of groups if there are fewer).
    alphas : array-like [shape=(k,)]
        Ridge penalties tried by the inner CV (on z-scored features); default 10⁻³ … 10⁵, 17 values.
    inner_splits : int ≥ 2
        Grouped folds of the inner CV.
    seed : int
        Orders groups of equal size before they are dealt to folds (outer and inner CV).
    clip : bool
        Clip the held-out fold's z-scored features to the training fold's range (module docstring).

    Returns
    -------
    dict
        ``r2`` (pooled out-of-fold R² against the training-fold mean predictor), ``rmse`` and
        ``rmse_mean`` (of the probe and of that mean predictor, in y's units), ``alpha`` (chosen α per
        fold), ``n`` (notes used), ``n_dropped`` (NaN targets), ``kept`` (bool, shape (n_input,)),
        ``y_pred`` (out-of-fold predictions of the kept notes), ``n_splits``, ``n_groups``.
    """
    _check_splits(n_splits, inner_splits)
    alphas = _grid(alphas, "alphas")
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ParameterError(f"y must be 1-D (one value per note), got shape {y.shape}")
    if np.any(np.isinf(y)):
        raise ParameterError("y holds infinite values")
    X = _features(X, y.shape[0])
    groups = _check_groups(groups, y.shape[0])
    kept = ~np.isnan(y)
    if not kept.all():
        logger.info("ridge_probe: dropped %d of %d notes with NaN target", int((~kept).sum()), kept.size)
    X, y, groups = X[kept], y[kept], groups[kept]
    rng = np.random.default_rng(seed)
    folds = _group_folds(groups, int(n_splits), rng)
    y_pred = np.empty_like(y)
    base = np.empty_like(y)  # the training-fold mean predicting each note
    chosen = []
    for train, test in folds:
        inner = _inner_folds(groups[train], int(inner_splits), rng)
        model = make_pipeline(*_scaling(clip), _RowSpace(),
                              RidgeCV(alphas=alphas, cv=inner,
                                      scoring=None if inner is None else "neg_mean_squared_error"))
        model.fit(X[train], y[train])
        y_pred[test] = model.predict(X[test])
        base[test] = y[train].mean()
        chosen.append(float(model[-1].alpha_))
    chosen = np.array(chosen)
    _log_edge(chosen, alphas, "ridge alpha")
    sse = float(np.sum((y - y_pred) ** 2))
    sst = float(np.sum((y - base) ** 2))
    n = y.shape[0]
    return {"r2": 1.0 - sse / sst if sst > 0 else float("nan"), "rmse": float(np.sqrt(sse / n)),
            "rmse_mean": float(np.sqrt(sst / n)), "alpha": chosen, "n": n, "n_dropped": int((~kept).sum()),
            "kept": kept, "y_pred": y_pred, "n_splits": len(folds), "n_groups": len(np.unique(groups))}


def _ridge_predictions(Z_train, Y_train, Z_test, alphas) -> np.ndarray:
    """Predictions of ridge with an intercept for every α and target: (n_alphas, n_test, n_targets).

    scikit-learn's ``Ridge(alpha)`` centres X and y on the training rows and solves
    w = Aᵀ(AAᵀ + αI)⁻¹ y_c (A the centred training rows); with AAᵀ = U Λ Uᵀ the test predictions are
    B Aᵀ U (Λ + α)⁻¹ Uᵀ y_c + ȳ (B the test rows centred on the training mean): one eigendecomposition
    serves every α and target.
    """
    mx, my = Z_train.mean(axis=0), Y_train.mean(axis=0)
    A, B = Z_train - mx, Z_test - mx
    lam, U = np.linalg.eigh(A @ A.T)
    lam = np.clip(lam, 0.0, None)  # rounding makes the null directions of a centred Gram slightly negative
    P = (B @ A.T) @ U                                   # (n_test, n_train)
    c = U.T @ (Y_train - my)                            # (n_train, n_targets)
    return np.einsum("tr,arj->atj", P, c[None] / (lam[None, :, None] + alphas[:, None, None])) + my


def ridge_probes(X: np.ndarray, Y: np.ndarray, *, groups: np.ndarray, n_splits: int = 5,
                 alphas: ArrayLike = ALPHAS, inner_splits: int = 3,
                 seed: int = 0, clip: bool = False) -> list:
    """:func:`ridge_probe` of every column of ``Y`` at once: same folds, grid, choice of α and scores.

    Equal to ``[ridge_probe(X, Y[:, j], groups=groups, ...) for j in range(Y.shape[1])]`` within rounding
    (tested), but the targets that share a pattern of NaN share the folds and one eigendecomposition per
    fit, which makes a probe study of many descriptors ~100× cheaper than calling :func:`ridge_probe` in
    a loop (where scikit-learn refits every (α, inner fold) pair).  α is chosen per target by the mean
    over the inner folds of their mean squared error (scikit-learn's ``GridSearchCV`` rule: the first
    of equal scores).  A training fold holding a single group (no grouped inner CV) falls back to
    :func:`ridge_probe`.

    Parameters
    ----------
    X : np.ndarray [shape=(n, p)]
    Y : np.ndarray [shape=(n, n_targets) or (n,)]
        Targets in natural units; NaN marks unknown values.
    groups, n_splits, alphas, inner_splits, seed, clip
        As :func:`ridge_probe`.

    Returns
    -------
    list of dict
        One :func:`ridge_probe` result per column of ``Y``.
    """
    _check_splits(n_splits, inner_splits)
    alphas = _grid(alphas, "alphas")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise ParameterError(f"Y must have shape (n, n_targets), got {Y.shape}")
    if np.any(np.isinf(Y)):
        raise ParameterError("Y holds infinite values")
    X = _features(X, Y.shape[0])
    groups = _check_groups(groups, Y.shape[0])
    results: list = [None] * Y.shape[1]
    patterns: dict = {}
    for j in range(Y.shape[1]):
        patterns.setdefault((~np.isnan(Y[:, j])).tobytes(), []).append(j)
    for cols in patterns.values():
        kept = ~np.isnan(Y[:, cols[0]])
        if not kept.all():
            logger.info("ridge_probes: dropped %d of %d notes with NaN target for %d target(s)",
                        int((~kept).sum()), kept.size, len(cols))
        Xk, Yk, gk = X[kept], Y[kept][:, cols], groups[kept]
        rng = np.random.default_rng(seed)
        folds = _group_folds(gk, int(n_splits), rng)
        inners = [_inner_folds(gk[train], int(inner_splits), rng) for train, _ in folds]
        if any(inner is None for inner in inners):
            for j in cols:
                results[j] = ridge_probe(X, Y[:, j], groups=groups, n_splits=n_splits, alphas=alphas,
                                         inner_splits=inner_splits, seed=seed, clip=clip)
            continue
        y_pred, base = np.empty_like(Yk), np.empty_like(Yk)
        chosen = np.empty((len(folds), len(cols)))
        for f, ((train, test), inner) in enumerate(zip(folds, inners)):
            scaler = StandardScaler().fit(Xk[train])
            Z_train, Z_test, Y_train = scaler.transform(Xk[train]), scaler.transform(Xk[test]), Yk[train]
            if clip:
                Z_test = np.clip(Z_test, Z_train.min(axis=0), Z_train.max(axis=0))
            mse = np.zeros((alphas.size, len(cols)))
            for i_train, i_test in inner:
                pred = _ridge_predictions(Z_train[i_train], Y_train[i_train], Z_train[i_test], alphas)
                mse += np.mean((pred - Y_train[i_test]) ** 2, axis=1) / len(inner)
            best = np.argmin(mse, axis=0)  # first minimum, as GridSearchCV's rank
            chosen[f] = alphas[best]
            pred = _ridge_predictions(Z_train, Y_train, Z_test, alphas[np.unique(best)])
            which = np.searchsorted(np.unique(best), best)
            y_pred[test] = pred[which, :, np.arange(len(cols))].T
            base[test] = Y_train.mean(axis=0)
        n = Yk.shape[0]
        for k, j in enumerate(cols):
            _log_edge(chosen[:, k], alphas, "ridge alpha")
            sse = float(np.sum((Yk[:, k] - y_pred[:, k]) ** 2))
            sst = float(np.sum((Yk[:, k] - base[:, k]) ** 2))
            results[j] = {"r2": 1.0 - sse / sst if sst > 0 else float("nan"), "rmse": float(np.sqrt(sse / n)),
                          "rmse_mean": float(np.sqrt(sst / n)), "alpha": chosen[:, k].copy(), "n": n,
                          "n_dropped": int((~kept).sum()), "kept": kept, "y_pred": y_pred[:, k].copy(),
                          "n_splits": len(folds), "n_groups": len(np.unique(gk))}
    return results


def _missing_labels(labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind == "f":
        return np.isnan(labels)
    if labels.dtype.kind == "O":
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in labels], dtype=bool)
    return np.zeros(labels.shape, dtype=bool)


def logistic_probe(X: np.ndarray, labels: np.ndarray, *, groups: np.ndarray, n_splits: int = 5,
                   Cs: ArrayLike = CS, inner_splits: int = 3,
                   seed: int = 0, max_iter: int = 2000, clip: bool = False) -> dict:
    """Decode a class label from features with L2 logistic regression under grouped CV.

    Parameters
    ----------
    X : np.ndarray [shape=(n, p)]
        Features, one row per note.
    labels : np.ndarray [shape=(n,)]
        Class of every note (any hashable labels); NaN / None marks unknown labels.
    groups : np.ndarray [shape=(n,)]
        Note family of every note (instrument or pitch); the folds never split a group.
    n_splits : int ≥ 2
        Outer folds (reduced to the number of groups if there are fewer).
    Cs : array-like [shape=(k,)]
        Inverse L2 penalties tried by the inner CV (on z-scored features); default 10⁻⁴ … 10⁴, 9 values.
    inner_splits : int ≥ 2
        Grouped folds of the inner CV.
    seed : int
        Orders groups of equal size before they are dealt to folds; seeds the stratified fallback split.
    max_iter : int
        Iterations of the lbfgs solver.
    clip : bool
        Clip the held-out fold's z-scored features to the training fold's range (module docstring).

    Returns
    -------
    dict
        ``balanced_accuracy`` (pooled out-of-fold), ``chance`` (1 / n_classes), ``C`` (chosen C per fold,
        NaN for a fold whose training part holds a single class, which then predicts that class),
        ``n``, ``n_dropped``, ``kept``, ``y_pred``, ``n_classes``, ``n_splits``, ``n_groups``.
    """
    _check_splits(n_splits, inner_splits)
    Cs = _grid(Cs, "Cs")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ParameterError(f"labels must be 1-D (one class per note), got shape {labels.shape}")
    X = _features(X, labels.shape[0])
    groups = _check_groups(groups, labels.shape[0])
    kept = ~_missing_labels(labels)
    if not kept.all():
        logger.info("logistic_probe: dropped %d of %d notes without label", int((~kept).sum()), kept.size)
    X, labels, groups = X[kept], labels[kept], groups[kept]
    classes = np.unique(labels)
    if classes.size < 2:
        raise ParameterError(f"labels must hold at least 2 classes, got {classes.tolist()}")
    rng = np.random.default_rng(seed)
    folds = _group_folds(groups, int(n_splits), rng)
    y_pred = np.empty(labels.shape, dtype=labels.dtype)
    chosen = []
    for train, test in folds:
        train_classes = np.unique(labels[train])
        if train_classes.size < 2:
            logger.warning("a training fold holds the single class %r; it predicts that class",
                           train_classes[0])
            y_pred[test] = train_classes[0]
            chosen.append(np.nan)
            continue
        inner = _inner_folds(groups[train], int(inner_splits), rng)
        if inner is None:
            # at most 3 stratified folds, fewer when even the largest class has fewer notes (sklearn refuses
            # more folds than notes in every class)
            k = min(3, int(np.unique(labels[train], return_counts=True)[1].max()))
            if k < 2:
                raise ParameterError(f"too few notes for a technique probe: a training fold holds one note per "
                                     f"class ({train.size} notes); probe more notes (--max-examples, --subset all)")
            inner = StratifiedKFold(k, shuffle=True, random_state=int(rng.integers(2 ** 31)))
        clf = LogisticRegressionCV(Cs=Cs, l1_ratios=(0.0,), cv=inner, scoring="balanced_accuracy",
                                   class_weight="balanced", max_iter=int(max_iter),
                                   use_legacy_attributes=False)
        model = make_pipeline(*_scaling(clip), _RowSpace(), clf)
        with warnings.catch_warnings():
            # inner folds may miss a class: scikit-learn warns, the balanced accuracy stays defined
            warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
            model.fit(X[train], labels[train])
        y_pred[test] = model.predict(X[test])
        chosen.append(float(np.ravel(clf.C_)[0]))
    chosen = np.array(chosen)
    _log_edge(chosen[np.isfinite(chosen)], Cs, "logistic C")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*y_pred contains classes not in y_true.*")
        bacc = float(balanced_accuracy_score(labels, y_pred))
    return {"balanced_accuracy": bacc, "chance": 1.0 / classes.size, "C": chosen, "n": labels.shape[0],
            "n_dropped": int((~kept).sum()), "kept": kept, "y_pred": y_pred, "n_classes": int(classes.size),
            "n_splits": len(folds), "n_groups": len(np.unique(groups))}
