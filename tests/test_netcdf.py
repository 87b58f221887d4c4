"""Files others can open: netCDF-4 dimension scales (xarray/h5netcdf), units and descriptions, compression."""

import warnings

import h5py
import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

from scatterxai.features import FeatureFile, write_features  # noqa: E402
from scatterxai.io.netcdf import undescribed  # noqa: E402
from scatterxai.scattering import path_table, scatter  # noqa: E402
from scatterxai.task import CLASSES  # noqa: E402

from ._small_run import K, make_small_run  # noqa: E402
from ._small_run import write_small_features as _features  # noqa: E402
from .conftest import SMALL  # noqa: E402

FEATURE_GROUPS = ("examples", "paths", "stats", "failed")
RELEVANCE_GROUPS = ("examples", "paths", "grid", "relevance", "local", "aggregate", "kurtosis", "conservation",
                    "localisation")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_small_run(tmp_path_factory.mktemp("netcdf"), compressions=(None, "gzip", "lzf"))


def _open(path, group=None):
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # no phony_dims warning, no coordinate warning
        return xr.open_dataset(path, engine="h5netcdf", group=group).load()


def _all_dims(ds):
    return set(ds.sizes)


def _same_as_h5py(ds, f, group):
    """Every variable of ``ds`` equals the h5py read of the same dataset."""
    prefix = f"{group}/" if group else ""
    for name in list(ds.data_vars) + list(ds.coords):
        h5 = f[prefix + name]
        ref = h5.asstr()[()] if h5.dtype.kind == "O" else h5[()]
        got = ds[name].values
        if got.dtype.kind in "UO":
            assert list(got.astype(str)) == list(np.asarray(ref).astype(str)), name
        else:
            np.testing.assert_array_equal(got, ref, err_msg=name)


def test_features_file_opens_in_xarray_with_named_dimensions(files):
    table = path_table(SMALL)
    ds = _open(files["features"])
    assert dict(ds["features"].sizes) == {"example": K, "path": len(table), "frame": table.n_frames}
    for c in ("lambda1_hz", "lambda2_hz", "order", "time_s", "example", "path", "frame"):
        assert c in ds.coords, c
    np.testing.assert_array_equal(ds["lambda1_hz"].values, table.lambda1_hz)
    np.testing.assert_array_equal(ds["lambda2_hz"].values, table.lambda2_hz)
    assert ds["lambda1_hz"].dims == ("path",) and ds["time_s"].dims == ("frame",)
    assert ds["lambda1_hz"].attrs["units"] == "Hz" and ds["time_s"].attrs["units"] == "s"
    assert "not log-normalised" in ds["features"].attrs["description"]
    with h5py.File(files["features"], "r") as f:
        _same_as_h5py(ds, f, None)
        for group in FEATURE_GROUPS:
            g = _open(files["features"], group)
            assert not any(d.startswith("phony_dim") for d in _all_dims(g)), group
            _same_as_h5py(g, f, group)
    ex = _open(files["features"], "examples")
    assert set(ex.sizes) == {"example"} and ex.sizes["example"] == K
    assert list(ex["file_name"].values) == [f"n{i}-é.wav" for i in range(K)]          # strings open
    assert ex["is_loud"].dtype == bool and ex["duration_s"].attrs["units"] == "s"
    assert ex["modulation_hz"].attrs["units"] == "Hz" and ex["instrument family"].attrs["description"]
    assert dict(_open(files["features"], "paths").sizes) == {"path": len(table)}
    failed = _open(files["features"], "failed")
    assert dict(failed.sizes) == {"failure": 2} and list(failed["reason"].values) == ["empty", "missing"]
    assert "failure" not in failed.variables                  # a dimension without coordinate values


def test_relevance_file_opens_in_xarray_with_named_dimensions(files):
    table = path_table(SMALL)
    ds = _open(files["relevance"])
    n = ds.sizes["example"]
    assert n == 6 and dict(ds["features"].sizes) == {"example": n, "path": len(table), "frame": table.n_frames}
    assert list(ds["class"].values) == list(CLASSES)
    assert "normalised network input" in ds["features"].attrs["description"]
    with h5py.File(files["relevance"], "r") as f:
        _same_as_h5py(ds, f, None)
        for group in RELEVANCE_GROUPS:
            g = _open(files["relevance"], group)
            assert not any(d.startswith("phony_dim") for d in _all_dims(g)), group
            _same_as_h5py(g, f, group)
    rel = _open(files["relevance"], "relevance")
    assert set(rel.data_vars) == {"epsilon", "epsilon_plus"}
    assert rel["epsilon_plus"].dims == ("example", "path", "frame")
    assert _open(files["relevance"], "aggregate")["epsilon"].dims == ("class", "path")
    assert _open(files["relevance"], "examples")["logits"].dims == ("example", "class")
    grid = _open(files["relevance"], "grid")
    assert grid["lambda1_hz"].dims == ("lambda1_hz",) and grid["row"].dims == ("path",)
    assert "lambda1_hz" in grid.indexes and grid["lambda2_hz"].values[0] == 0


def test_datatree_opens_every_group(files):
    for path in (files["features"], files["relevance"]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = xr.open_datatree(path, engine="h5netcdf")
        assert not any(d.startswith("phony_dim") for node in tree.subtree for d in node.sizes)
        # children see the root's coordinates (netCDF-4 scoping): e.g. /examples gets example indices
        assert "example" in tree["examples"].coords


def test_every_dataset_has_dimensions_units_and_description(files):
    for path in (files["features"], files["relevance"]):
        with h5py.File(path, "r") as f:
            assert undescribed(f) == []
            assert f["features"].attrs["units"] == "1"


def test_time_coordinate_places_a_click_at_its_time(tmp_path):
    # independent check of time_s: the first-order response to a click peaks in the frame whose centre
    # time is the click's
    table = path_table(SMALL)
    n0 = 5000
    x = np.zeros(SMALL.N)
    x[n0] = 1.0
    S = scatter(x, SMALL, device="cpu", method="fast").numpy()
    write_features(tmp_path / "click.h5", S, {"file_name": np.array(["click"], dtype=object)}, SMALL)
    with h5py.File(tmp_path / "click.h5", "r") as f:
        t = f["time_s"][()]
    peak = S[0, table.s1].sum(axis=0).argmax()
    assert abs(t[peak] - n0 / SMALL.sr) <= 0.5 * SMALL.T / SMALL.sr


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compression_round_trips_exactly(files, tmp_path, compression):
    path = tmp_path / f"features-{compression}.h5"
    S = _features(path, compression=compression)
    with h5py.File(path, "r") as f, h5py.File(files["features"], "r") as plain:
        ds = f["features"]
        assert ds.compression == compression and ds.chunks == (1,) + S.shape[1:]
        np.testing.assert_array_equal(ds[()], S)
        np.testing.assert_array_equal(ds[()], plain["features"][()])
    with FeatureFile(path) as ff:
        np.testing.assert_array_equal(ff.load([3, 1]), S[[3, 1]])
    np.testing.assert_array_equal(_open(path)["features"].values, S)
    packed = files["relevance_by"][compression]
    with h5py.File(packed, "r") as f, h5py.File(files["relevance"], "r") as plain:
        for name in ("features", "relevance/epsilon", "relevance/epsilon_plus"):
            assert f[name].compression == compression and f[name].chunks[0] == 1
            np.testing.assert_array_equal(f[name][()], plain[name][()])
    assert _open(packed, "relevance")["epsilon"].shape[0] == 6


def test_bad_compression_is_rejected(tmp_path):
    from scatterxai.errors import ParameterError
    with pytest.raises(ParameterError, match="compression must be one of"):
        _features(tmp_path / "x.h5", compression="zstd")


def test_readme_xarray_recipe_runs(files, capsys):
    import os
    readme = open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md"), encoding="utf-8").read()
    start = readme.index('import xarray as xr\npath = "results/demo/relevance.h5"')
    block = readme[start:readme.index("```", start)].replace("results/demo/relevance.h5", str(files["relevance"]))
    scope = {}
    exec(block, scope)
    assert scope["s2"].dims == ("example",) and len(scope["table"]) == 6
    assert {"kurtosis_epsilon", "conservation_epsilon_plus", "localisation_epsilon", "file_name", "class"} \
        <= set(scope["table"].columns)
    assert "vibrato" in capsys.readouterr().out
