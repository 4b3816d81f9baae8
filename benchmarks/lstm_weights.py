"""The LSTM stacks every benchmark steps: seeded weights of PyTorch's shapes and gate order
(numpy only, so that a TensorFlow or emulated Python can build the same model)."""
import numpy as np


def weights(I, H, L, seed):
    rng = np.random.default_rng(seed)
    layers = []
    for index in range(L):
        fan_in = I if index == 0 else H
        bound = 1 / np.sqrt(H)
        layers.append([rng.uniform(-bound, bound, shape).astype(np.float32) for shape in
                       ((4 * H, fan_in), (4 * H, H), (4 * H,), (4 * H,))])
    return layers
