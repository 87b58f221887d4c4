"""The Examples sections of the public API's main entry points, run as doctests (``make test`` runs them).

Their namespace holds ``np``, ``tmp`` (a fresh directory for each docstring, a :class:`pathlib.Path`) and
``toy``, a small study made once (:func:`toy_study`): ``toy.features`` (30 random notes in the SMALL
scattering configuration, N = 2**13, J = 6, with training, validation and test splits and ground-truth
modulation rates), ``toy.model_dir`` (the S1+S2 convnet trained one epoch on it), ``toy.relevance`` (its
relevance file: LRP-ε and LRP-[ε,z+] on the test split) and ``toy.audio`` (a synthetic trill, a WAV file).
"""

import doctest
import importlib
import types

import numpy as np
import pytest

from scatterxai.task import CLASSES

from .conftest import SMALL, train_one_epoch

#: module → the entry points whose Examples it holds (a module name: the module's own docstring)
EXAMPLES = {
    "scatterxai.scattering.api": ["scatter"],
    "scatterxai.features": ["scatterxai.features"],            # extract_features (in the package docstring)
    "scatterxai.model.train": ["train_model"],
    "scatterxai.explain.attribution": ["attribute"],
    "scatterxai.explain.export": ["explain"],
    "scatterxai.explain.base": ["registered"],
    "scatterxai.analysis.compare": ["compare_relevance"],
    "scatterxai.analysis.quality": ["scatterxai.analysis.quality"],   # quality (in the package docstring)
    "scatterxai.analysis.sweep.run": ["run_sweep"],
    "scatterxai.analysis.auralise.run": ["auralise_audio"],
}


def toy_study(root) -> types.SimpleNamespace:
    """Files of a small study for the examples (see the module docstring)."""
    from scatterxai.data.synth import make_note_spec, write_note
    from scatterxai.explain import explain
    from scatterxai.features import write_features
    from scatterxai.scattering import path_table
    K, table, rng = 30, path_table(SMALL), np.random.default_rng(0)
    y = np.arange(K) % len(CLASSES)
    S = (rng.random((K, len(table), table.n_frames)) * (1 + y)[:, None, None]).astype(np.float32)
    subsets = np.array(["training", "training", "validation", "test", "test", "training"] * (K // 6), object)
    columns = {"file_name": np.array([f"n{i}.wav" for i in range(K)], object), "label": y, "subset": subsets,
               "modulation_hz": rng.uniform(4, 30, K)}
    features = str(root / "features.h5")
    write_features(features, S, columns, SMALL, classes=CLASSES)
    model_dir = train_one_epoch(features, root / "model", input="s1s2")
    relevance = explain(features, model_dir=model_dir, out=root / "relevance.h5", methods="epsilon,epsilon_plus",
                        device="cpu", progress=False)
    spec = make_note_spec("Violin", "trill-minor-second-up", pitch="A4", seed=0, duration_s=2.0)
    audio = write_note(spec, root / "trill.wav")
    return types.SimpleNamespace(features=features, model_dir=model_dir, relevance=str(relevance), audio=audio)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return toy_study(tmp_path_factory.mktemp("toy"))


def _docstring_tests(module_name: str):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("module_name", sorted(EXAMPLES))
def test_examples(module_name, toy, tmp_path, one_torch_thread):
    tests = _docstring_tests(module_name)
    names = {t.name.rsplit(".", 1)[-1] if t.name != module_name else module_name for t in tests}
    assert set(EXAMPLES[module_name]) <= names, f"no Examples for {set(EXAMPLES[module_name]) - names}"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for i, test in enumerate(tests):
        tmp = tmp_path / f"doc{i}"
        tmp.mkdir()
        test.globs.update(np=np, tmp=tmp, toy=toy)
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_every_entry_point_has_a_runnable_example():
    for module_name, entries in EXAMPLES.items():
        module = importlib.import_module(module_name)
        for entry in entries:
            doc = module.__doc__ if entry == module_name else getattr(module, entry).__doc__
            assert "Examples\n" in doc and ">>> " in doc, f"{module_name}: {entry}"
