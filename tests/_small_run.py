"""A small features file and relevance file (SMALL configuration, random-weight model) for file-format and
figure tests."""

import numpy as np
import torch

from scatterxai.explain import explain
from scatterxai.features import FeatureFile, write_features
from scatterxai.model import ConvNet, save_model
from scatterxai.scattering import path_table
from scatterxai.task import CLASSES

from .conftest import SMALL

K = 10


def write_small_features(path, compression=None, seed=0):
    """Features of K random examples with string, bool, Hz and seconds columns and two failed files."""
    rng = np.random.default_rng(seed)
    table = path_table(SMALL)
    S = rng.gamma(2.0, 1.0, size=(K, len(table), table.n_frames)).astype(np.float32)
    examples = {"file_name": np.array([f"n{i}-é.wav" for i in range(K)], dtype=object),
                "label": np.arange(K) % 5, "subset": np.array(["training"] * 4 + ["test"] * 6, dtype=object),
                "modulation_hz": rng.uniform(4, 32, K), "instrument family": np.array(["Strings"] * K, dtype=object),
                "is_loud": np.arange(K) % 2 == 0, "duration_s": rng.uniform(2, 8, K)}
    failed = {"file_name": np.array(["bad.wav", "gone.wav"], dtype=object),
              "reason": np.array(["empty", "missing"], dtype=object), "csv_row": np.array([3, 7])}
    write_features(path, S, examples, SMALL, classes=CLASSES, failed=failed, compression=compression)
    return S


def make_small_run(root, compressions=(None,)):
    """features.h5, a random-weight S1+S2 model and one relevance file per compression (test subset)."""
    features = root / "features.h5"
    write_small_features(features)
    table = path_table(SMALL)
    with FeatureFile(features) as ff:
        mu = ff.mu
    torch.manual_seed(0)
    channels = np.arange(len(table))
    config = {"input": "s1s2", "n_channels": len(channels), "channels": channels, "n_paths": len(table), "mu": mu,
              "c": 0.1, "classes": list(CLASSES), "scattering": SMALL.to_dict(),
              "paths": {k: np.asarray(getattr(table, k)) for k in table.FIELDS}}
    model = save_model(ConvNet(len(channels), n_classes=5), root / "model", config)
    relevance = {}
    for compression in compressions:
        relevance[compression] = root / f"relevance-{compression}.h5"
        explain(features, model_dir=model, out=relevance[compression], methods="epsilon,epsilon_plus", top_n=3,
                batch_size=4, progress=False, subset="test", compression=compression)
    return {"root": root, "features": features, "model": model, "relevance": relevance[compressions[0]],
            "relevance_by": relevance}
