import numpy as np
import pytest
import torch
from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D

from scatterxai.errors import ParameterError
from scatterxai.scattering import PAPER_CONFIG, ScatteringConfig, compute_mu, log_normalize, path_table, scatter

from .conftest import SLOW_MOD, SMALL


def test_paper_path_table():
    t = path_table(PAPER_CONFIG)
    assert len(t) == 1200 and len(t.s1) == 74 and len(t.s2) == 1126
    assert t.n_frames == 32 and t.n_total == 1286
    assert np.all(t.lambda1_hz >= 32.0)
    assert np.all(np.isnan(t.lambda2_hz[t.s1])) and np.all(t.n2[t.s1] == -1)
    assert np.all(np.isfinite(t.lambda2_hz[t.s2])) and np.all(t.n2[t.s2] >= 0)
    # second-order paths only where the modulation filter is slower than the carrier filter
    assert np.all(t.j2[t.s2] > t.j1[t.s2])
    assert np.all(t.lambda2_hz[t.s2] < t.lambda1_hz[t.s2])


def test_config_coerces_q_and_validates():
    assert ScatteringConfig(Q=[np.int64(8), 2]).Q == (8, 2)
    assert ScatteringConfig(Q=np.int32(4)).Q == (4, 1)
    with pytest.raises(ParameterError, match="Q must be"):
        ScatteringConfig(Q=(8, 2, 1))
    with pytest.raises(ParameterError, match="T must be a power of two"):
        ScatteringConfig(T=1000)
    with pytest.raises(ParameterError, match="N must be >= T"):
        ScatteringConfig(N=2 ** 10, T=2 ** 13)
    assert ScatteringConfig.from_dict(PAPER_CONFIG.to_dict()) == PAPER_CONFIG


@pytest.mark.parametrize("config", [SMALL, ScatteringConfig(N=2 ** 12, J=5, Q=(4, 1), T=2 ** 5, fmin_hz=200)])
def test_kept_coefficients_equal_kymatio(config, rng):
    x = rng.standard_normal((3, config.N))
    ours = scatter(x, config, method="kymatio", dtype=torch.float64, device="cpu").numpy()
    ky = ScatteringTorch1D(**config.kymatio_kwargs(), out_type="list").double()
    out = ky(torch.as_tensor(x))
    meta = ky.meta()
    ref = [o["coef"].numpy() for o, xi in zip(out, meta["xi"][:, 0])
           if len(o["n"]) >= 1 and xi * config.sr >= config.fmin_hz]
    assert len(ref) == len(path_table(config))
    np.testing.assert_allclose(ours, np.stack(ref, axis=1), rtol=1e-12, atol=0)


def test_batched_equals_per_item(rng):
    x = rng.standard_normal((4, SMALL.N)).astype(np.float32)
    batched = scatter(x, SMALL, method="kymatio", batch_size=4).numpy()
    single = np.concatenate([scatter(x[i], SMALL, method="kymatio").numpy() for i in range(4)])
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-7)


def test_input_guards(rng):
    x = rng.standard_normal((2, SMALL.N))
    ref = scatter(x.astype(np.float32), SMALL, method="kymatio").numpy()
    # float64 and integer input are cast, non-contiguous tensors are copied
    np.testing.assert_allclose(scatter(x, SMALL, method="kymatio").numpy(), ref, rtol=1e-6, atol=1e-7)
    strided = torch.as_tensor(np.repeat(x, 2, axis=1))[:, ::2]
    assert not strided.is_contiguous()
    np.testing.assert_allclose(scatter(strided, SMALL, method="kymatio").numpy(), ref, rtol=1e-6, atol=1e-7)
    assert np.isfinite(scatter((x * 1000).astype(np.int32), SMALL, method="kymatio").numpy()).all()
    with pytest.raises(ParameterError, match="input length 100 does not match the configured N=8192"):
        scatter(x[:, :100], SMALL, method="kymatio")
    with pytest.raises(ParameterError, match=r"shape \(N,\) or \(B, N\)"):
        scatter(x[None], SMALL, method="kymatio")
    with pytest.raises(ParameterError, match="NaN"):
        scatter(np.full(SMALL.N, np.nan), SMALL, method="kymatio")
    with pytest.raises(ParameterError, match="method must be one of"):
        scatter(x, SMALL, method="nope")
    with pytest.raises(ParameterError, match="device"):
        scatter(x, SMALL, method="kymatio", device="tpu")


def test_silent_input_is_finite():
    S = scatter(np.zeros(SMALL.N), SMALL, method="kymatio").numpy()
    assert np.isfinite(S).all() and np.all(S == 0)


def _max_s2(x, config):
    t = path_table(config)
    S = scatter(x / x.std(), config, method="kymatio", dtype=torch.float64).numpy()[0].mean(-1)
    i = t.s2[np.argmax(S[t.s2])]
    return t.lambda1_hz[i], t.lambda2_hz[i]


@pytest.mark.parametrize("kind", ["am", "fm"])
def test_closed_form_modulation_maximum(kind):
    """Andén & Mallat: a carrier f_c modulated at f_m puts the S2 maximum at (λ1, λ2) ≈ (f_c, f_m)."""
    fc, fm = 440.0, 8.0
    t = np.arange(SLOW_MOD.N) / SLOW_MOD.sr
    if kind == "am":
        x = (1 + 0.8 * np.cos(2 * np.pi * fm * t)) * np.sin(2 * np.pi * fc * t)
    else:  # vibrato of ±1/2 semitone
        dev = fc * (2 ** (0.5 / 12) - 1)
        x = np.sin(2 * np.pi * fc * t + dev / fm * np.sin(2 * np.pi * fm * t))
    lam1, lam2 = _max_s2(x, SLOW_MOD)
    assert abs(np.log2(lam2 / fm)) <= 0.5, lam2
    assert abs(np.log2(lam1 / fc)) <= 1 / 8, lam1


def test_log_normalize_numpy_and_torch(rng):
    S = rng.random((5, 3, 4))
    mu = compute_mu(S)
    np.testing.assert_allclose(mu, S.mean(axis=(0, 2)))
    out = log_normalize(S, mu)
    np.testing.assert_allclose(out, np.log1p(S / (0.1 * mu[:, None] + 1e-8)))
    np.testing.assert_allclose(log_normalize(torch.as_tensor(S), mu).numpy(), out)
    with pytest.raises(ParameterError, match="mu has shape"):
        log_normalize(S, mu[:2])
