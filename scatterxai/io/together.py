"""Inputs that belong together are checked together: a relevance file, the features file it was made from and
the model it explains.

A relevance file records the sha256 of the model's weights (``model_checksum``) and the fingerprint of the
features file it explains (``features_fingerprint``: :attr:`scatterxai.features.FeatureFile.fingerprint`).
A command given a relevance file with a features file or a model (``quality``) refuses a pair that does not
belong together instead of computing numbers about two different studies.  Relevance files written before
the fingerprint existed are checked by their file names.
"""

from __future__ import annotations

import os
from typing import Optional

from .._util.types import PathLike
from ..errors import ModelError, StoreError

__all__ = ["check_together", "relevance_study"]


def relevance_study(relevance: Optional[PathLike]) -> Optional[str]:
    """The ``features_fingerprint`` a relevance file records (None: absent, or the file cannot be read)."""
    if relevance is None:
        return None
    from .relevance import RelevanceFile
    try:
        with RelevanceFile(relevance) as rf:
            value = rf.attrs.get("features_fingerprint")
    except (StoreError, OSError):
        return None
    return None if value is None else str(value)


def check_together(*, relevance: Optional[PathLike] = None, features: Optional[PathLike] = None,
                   model_dir: Optional[PathLike] = None) -> None:
    """Refuse a relevance file that was not made from ``features`` or does not explain ``model_dir``.

    Raises
    ------
    StoreError
        The relevance file explains another features file.
    ModelError
        The relevance file explains another model (another ``model.pt``).
    """
    if relevance is None or (features is None and model_dir is None):
        return
    from .._util.fs import file_sha256
    from ..features.store import FeatureFile
    from .relevance import RelevanceFile
    with RelevanceFile(relevance) as rf:
        recorded, checksum = rf.attrs.get("features_fingerprint"), rf.attrs.get("model_checksum")
        names = {str(n) for n in rf.examples.get("file_name", ())}
    if features is not None:
        with FeatureFile(getattr(features, "path", features)) as ff:
            mine = ff.fingerprint
            missing = names - {str(n) for n in ff.examples.get("file_name", ())}
        if (recorded is not None and str(recorded) != mine) or (recorded is None and missing):
            why = (f"{len(missing)} of its notes (e.g. {sorted(missing)[0]}) are not in it" if missing else
                   "its fingerprint differs")
            raise StoreError(f"{relevance} was made from another features file than {features} ({why}); give the "
                             f"features file it explains, or explain these features first")
    if model_dir is not None and checksum is not None:
        weights = os.path.join(os.fspath(model_dir), "model.pt")
        try:
            mine = file_sha256(weights)
        except OSError:
            return   # the command's model loader reports a missing or unreadable model
        if str(checksum) != mine:
            raise ModelError(f"{relevance} explains another model (model.pt sha256 {str(checksum)[:12]}…) than "
                             f"{model_dir} ({mine[:12]}…); explain this model first, or give the model it explains")
