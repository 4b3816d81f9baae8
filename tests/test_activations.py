"""The C activations one by one against float64, including the vectorized exp, sigmoid and
tanh approximations, whose maximum errors are stated here and in the README."""
import numpy as np
import pytest

import lstmlite as ll
from lstmlite import _core
import reference as ref

GRID = np.concatenate([np.linspace(-100, 100, 400_001), np.linspace(-1e-3, 1e-3, 2001),
                       [0.0, -0.0, 1e-30, -1e-30, 88.0, -88.0, 1e4, -1e4]]).astype(np.float32)

# Measured maximum absolute errors of the vectorized approximations over GRID, both kernel
# sets: sigmoid 8.9e-8, tanh 1.2e-7 (float32's own spacing near 1 is 6e-8 / 1.2e-7).
MAX_ABS_ERROR = {"Sigmoid": 1.5e-7, "Tanh": 1.5e-7}


def test_python_table_comes_from_c():
    names = _core.activation_names()
    assert ll.ACTIVATION_IDS == {name: i for i, name in enumerate(names)}
    # ids are stored in files: pin them
    assert names[:4] == ["Identity", "Sigmoid", "Tanh", "Relu"]
    assert names[12:] == ["Softmax", "LogSoftmax"]


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh"])
def test_fast_sigmoid_tanh_error(kernels, name):
    got = _core.apply_activation(ll.ACTIVATION_IDS[name], 0, 0, np.inf, GRID)
    want = ref.activation(name, 0, 0, GRID.astype(np.float64))
    assert np.abs(got - want).max() <= MAX_ABS_ERROR[name]
    # exact limits at saturation and exact symmetry points
    assert got[np.argmax(GRID)] == 1.0
    assert (got[GRID == 0] == (0.5 if name == "Sigmoid" else 0.0)).all()


@pytest.mark.parametrize("name,alpha,beta", [
    ("Identity", 0, 0), ("Relu", 0, 0), ("HardSigmoid", 0.2, 0.5), ("LeakyRelu", 0.01, 0),
    ("ThresholdedRelu", 1.0, 0), ("ScaledTanh", 1.7, 0.6), ("Affine", 0.5, -2.0),
    ("Elu", 1.0, 0), ("Softsign", 0, 0), ("Softplus", 0, 0)])
def test_elementwise(kernels, name, alpha, beta):
    x = GRID[::50]
    got = _core.apply_activation(ll.ACTIVATION_IDS[name], alpha, beta, np.inf, x)
    want = ref.activation(name, alpha, beta, x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=2e-7, atol=2e-7)


@pytest.mark.parametrize("name", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("scale", [1, 30, 1000])
def test_vector_activations(kernels, rng, name, scale):
    x = (rng.standard_normal(37) * scale).astype(np.float32)
    got = _core.apply_activation(ll.ACTIVATION_IDS[name], 0, 0, np.inf, x)
    want = ref.activation(name, 0, 0, x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh", "Relu", "Softplus", "Elu", "Softsign",
                                  "HardSigmoid", "LeakyRelu", "ThresholdedRelu", "Affine",
                                  "ScaledTanh", "Identity"])
def test_nan_propagates_and_clip_applies(kernels, name):
    x = np.array([np.nan, -50, -2, 0.5, 2, 50], np.float32)
    alpha, beta = ll.layers.ACTIVATION_DEFAULTS.get(name, (0.0, 0.0))
    got = _core.apply_activation(ll.ACTIVATION_IDS[name], alpha, beta, 1.5, x)
    assert np.isnan(got[0])
    want = ref.activation(name, alpha, beta, np.clip(x[1:].astype(np.float64), -1.5, 1.5))
    np.testing.assert_allclose(got[1:], want, rtol=2e-7, atol=2e-7)


def test_cpu_info_reports_the_choice():
    info = ll.cpu_info()
    assert info["kernels"] in info["available"] and "generic" in info["available"]
