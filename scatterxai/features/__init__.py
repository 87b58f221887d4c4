"""Scattering features on disk: the features HDF5 file (:mod:`.store`) and resumable extraction
(:mod:`.extract`: plan rows / compute a batch / commit a batch).

Examples
--------
:func:`extract_features` on three short recordings listed in a meta CSV (a ``label`` column, optionally
``subset``; without it a 6:2:2 split is drawn), with a small transform:

>>> import soundfile as sf
>>> from scatterxai import ScatteringConfig
>>> from scatterxai.features import FeatureFile, extract_features
>>> rng = np.random.default_rng(0)
>>> (tmp / "audio").mkdir()
>>> for i in range(3):
...     sf.write(tmp / "audio" / f"note{i}.wav", 0.1 * rng.standard_normal(8192), 44100)
>>> _ = (tmp / "meta.csv").write_text("file_name,label,subset\\n"
...                                   "note0.wav,trill,training\\nnote1.wav,vibrato,training\\nnote2.wav,trill,test\\n")
>>> config = ScatteringConfig(N=2**13, J=6, Q=(8, 2), T=2**6)
>>> summary = extract_features(tmp / "meta.csv", tmp / "audio", tmp / "features.h5", config=config, device="cpu",
...                            progress=False)
>>> summary.n_ok, summary.n_failed
(3, 0)
>>> with FeatureFile(tmp / "features.h5") as ff:
...     print(len(ff), ff.classes, ff.load([0]).shape)
3 ('vibrato', 'trill') (1, 249, 128)

Text labels that are the paper's techniques keep the paper's class order.  Re-running the same command
finds the file complete and does nothing; an interrupted run resumes.
"""

from .extract import ExtractSummary, extract_features
from .store import FeatureFile, write_features

__all__ = ["FeatureFile", "write_features", "extract_features", "ExtractSummary"]
