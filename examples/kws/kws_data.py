"""Training data for the keyword spotter: the ten Speech Commands keywords, other words and
read sentences spoken by five speech engines (voices.py), brought to 16 kHz from the rate each
engine's wav header states, and made to sound like microphones in rooms: vocal-tract and speed
warps, room reverberation (image-method rooms from pyroomacoustics), noise of several colours
and babble at 0 to 30 dB SNR, band-limited microphone responses and gain.

Speakers are split (voices.SPEAKERS): the evaluation's voices never occur here. Everything is
seeded. Used by train.py; needs numpy, scipy, soundfile, pyroomacoustics and the engines (not
lstmlite's runtime dependencies). The evaluation (evaluate.py) does not use this file's audio
path: it runs each engine's own command and resamples with sox.
"""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..", "..")]
import voices as V  # noqa: E402
from lstmlite.features import LogMel  # noqa: E402

SAMPLE_RATE = 16000
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
LABELS = ["_silence_", "_unknown_"] + KEYWORDS
SILENCE, UNKNOWN = 0, 1
#: other words, the confusable ones among them (know, yet, often, lift, goal, ...)
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree",
                 "wow", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "learn", "follow", "forward", "backward", "visual", "yellow", "know",
                 "lap", "dawn", "loft", "bright", "often", "step", "goal", "yet", "nose",
                 "cup", "town", "light", "got", "the", "turn", "please", "now", "then", "and",
                 "lift", "write", "dot", "stock", "gone", "own", "yeah", "top", "us", "done"]

FRONT_END = dict(sample_rate=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160,
                 n_mels=40, fmin=20.0, fmax=7600.0, log_offset=1e-6)
#: frames labelled with a word: from 50 ms before its last sample to 300 ms after it
LABEL_BEFORE_END, LABEL_AFTER_END = 0.05, 0.30
IGNORE = -100
#: the training split's vocal-tract warps (test voices are never warped)
WARP = (0.87, 1.15)


def front_end() -> LogMel:
    return LogMel(**FRONT_END)


def to_16k(audio: np.ndarray, rate: int, warp: float = 1.0) -> np.ndarray:
    """Audio sampled at `rate` Hz, resampled to 16 kHz. warp != 1 plays it `warp` times
    faster: every frequency (pitch and formants, a shorter or longer vocal tract) scales by
    warp and the duration by 1 / warp. With warp 1 duration and pitch are kept exactly."""
    if warp == 1.0:
        ratio = Fraction(SAMPLE_RATE, rate)
    else:
        ratio = Fraction(SAMPLE_RATE / (rate * warp)).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(audio, dtype=np.float64)
    return resample_poly(audio, ratio.numerator, ratio.denominator)


def trim(audio: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """Leading and trailing silence cut to `margin` seconds: below 0.3% of the peak (-50 dB,
    so the weak fricatives that end "off", "left" and "up" stay)."""
    loud = np.flatnonzero(np.abs(audio) > 0.003 * np.abs(audio).max()) if audio.size else []
    if len(loud) == 0:
        return audio[:0]
    pad = int(margin * SAMPLE_RATE)
    return audio[max(loud[0] - pad, 0):loud[-1] + pad]


# ---- sentences: read speech without keywords, separate texts for training and evaluation

_SUBJECTS = {
    "train": ["the old man", "my sister", "a small dog", "the teacher", "our neighbours",
              "the farmer", "a young girl", "the baker", "his father", "the children",
              "the nurse", "her cousin", "a tall soldier", "the captain", "my brother"],
    "test": ["the doctor", "a quiet student", "the painter", "their aunt", "the driver",
             "a clever fox", "the singer", "his mother", "the pilot", "a kind stranger"],
}
_VERBS = {
    "train": ["painted", "carried", "found", "washed", "bought", "opened", "cleaned",
              "watched", "followed", "visited", "moved", "fixed", "cooked", "sold", "brought",
              "counted", "lifted", "dropped", "pushed", "pulled", "covered", "filled"],
    "test": ["wrapped", "noticed", "borrowed", "mended", "carved", "delivered", "explored",
             "measured", "polished", "collected", "described", "remembered", "ordered"],
}
_OBJECTS = {
    "train": ["the red box", "a heavy table", "the garden gate", "three apples",
              "the kitchen window", "a long letter", "the wooden chair", "some fresh bread",
              "the yellow car", "a paper bag", "the blue kettle", "an empty bottle",
              "the small boat", "a bunch of flowers", "the broken clock"],
    "test": ["the silver spoon", "a green blanket", "the narrow bridge", "seven candles",
             "the leather bag", "a bright lamp", "the tall ladder", "a basket of plums",
             "the glass jar", "an old map", "the iron kettle", "a warm coat"],
}
_PLACES = {
    "train": ["near the river", "before dinner", "in the morning", "after the storm",
              "behind the house", "at the market", "with great care", "by the lake",
              "under the bridge", "during the summer", "at the station", "across the field",
              "in the evening", "for a long time", "without a word"],
    "test": ["beside the church", "late at night", "in the winter", "after lunch",
             "at the harbour", "with a smile", "through the forest", "inside the barn",
             "near the village", "before sunrise", "in a hurry", "along the coast"],
}
_OPENERS = {"train": ["", "", "yesterday ", "then ", "at last ", "as usual ", "so "],
            "test": ["", "", "later ", "once more ", "that week ", "in the end "]}


def sentences(split: str, count: int, seed: int) -> List[str]:
    """count read sentences of the split's own vocabulary, none with a keyword in it."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        text = (f"{rng.choice(_OPENERS[split])}{rng.choice(_SUBJECTS[split])} "
                f"{rng.choice(_VERBS[split])} {rng.choice(_OBJECTS[split])} "
                f"{rng.choice(_PLACES[split])}.")
        if rng.random() < 0.4:
            text = text[:-1] + f", and {rng.choice(_SUBJECTS[split])} " \
                               f"{rng.choice(_VERBS[split])} {rng.choice(_OBJECTS[split])}."
        words = set(text.replace(",", " ").replace(".", " ").split())
        assert not words & set(KEYWORDS), text
        out.append(text[0].upper() + text[1:])
    return out


# ---- the utterance bank

#: utterances per keyword and per other word, per engine, in training
PER_KEYWORD = {"espeak-ng": 130, "flite": 45, "festival": 35, "pico": 45, "piper": 45}
PER_UNKNOWN = {"espeak-ng": 12, "flite": 5, "festival": 4, "pico": 5, "piper": 5}
SENTENCES = {"espeak-ng": 70, "flite": 30, "festival": 25, "pico": 30, "piper": 30}


def utterance_bank(seed: int, engines: Sequence[str] = V.ENGINES, scale: float = 1.0
                   ) -> Tuple[Dict[str, List[np.ndarray]], List[np.ndarray]]:
    """(word -> utterances, sentences): training voices of `engines` at random rates, pitches
    and vocal-tract warps, each at 16 kHz; words trimmed. scale multiplies every count."""
    rng = np.random.default_rng(seed)
    texts = sentences("train", 400, seed)
    jobs: List[Tuple[str, V.Utterance]] = []
    for engine in engines:
        for word in KEYWORDS + UNKNOWN_WORDS:
            table = PER_KEYWORD if word in KEYWORDS else PER_UNKNOWN
            for _ in range(max(1, int(round(table[engine] * scale)))):
                jobs.append((word, V.random_utterance(rng, engine, "train", word)))
        for _ in range(max(1, int(round(SENTENCES[engine] * scale)))):
            text = str(rng.choice(texts))
            jobs.append(("<sentence>", V.random_utterance(rng, engine, "train", text)))
    audio = V.synthesize_many([u for _, u in jobs], workers=os.cpu_count() or 2)
    bank: Dict[str, List[np.ndarray]] = {}
    spoken: List[np.ndarray] = []
    for (word, _), (samples, rate) in zip(jobs, audio):
        clip = trim(to_16k(samples, rate, float(rng.uniform(*WARP))))
        if word == "<sentence>":
            if clip.size > SAMPLE_RATE:
                spoken.append(clip)
        elif clip.size > 1600:
            bank.setdefault(word, []).append(clip)
    return bank, spoken


# ---- rooms, microphones, noise

def rooms(count: int, seed: int) -> List[np.ndarray]:
    """count room impulse responses at 16 kHz: shoebox rooms 3-10 m wide, RT60 0.15-0.8 s,
    speaker and microphone at random places (image method, pyroomacoustics); normalized so
    the direct path has unit gain."""
    import pyroomacoustics as pra
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        size = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 3.5)])
        rt60 = rng.uniform(0.15, 0.8)
        try:
            absorption, order = pra.inverse_sabine(rt60, size)
        except ValueError:
            continue
        room = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                           max_order=min(order, 12))
        room.add_source(rng.uniform(0.5, size - 0.5))
        room.add_microphone(rng.uniform(0.5, size - 0.5))
        room.compute_rir()
        rir = np.asarray(room.rir[0][0], dtype=np.float64)
        direct = np.argmax(np.abs(rir))
        rir = rir[max(direct - 40, 0):]
        out.append(rir / np.abs(rir).max())
    return out


def noise(rng: np.random.Generator, samples: int,
          babble: Optional[Sequence[np.ndarray]] = None) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f), brown (1/f^2), mains hum or (given speech) babble
    of three overlapping talkers."""
    kind = rng.integers(5 if babble else 4)
    if kind == 4:
        signal = np.zeros(samples)
        for _ in range(3):
            talk = np.tile(babble[rng.integers(len(babble))], 1 + samples // SAMPLE_RATE)
            start = rng.integers(max(talk.size - samples, 1))
            signal += talk[start:start + samples] / (np.sqrt(np.mean(talk ** 2)) + 1e-12)
    elif kind == 3:
        t = np.arange(samples) / SAMPLE_RATE
        base = rng.choice([50.0, 60.0])
        signal = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * base * k * t
                                                    + rng.uniform(0, 2 * np.pi))
                     for k in range(1, 6)) + 0.1 * rng.standard_normal(samples)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        frequency = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), 20.0)
        spectrum /= frequency ** (kind / 2.0)
        signal = np.fft.irfft(spectrum, samples)
    return signal / (np.sqrt(np.mean(signal ** 2)) + 1e-12)


def microphone(rng: np.random.Generator, audio: np.ndarray) -> np.ndarray:
    """A random band-limited microphone: high-pass 50-400 Hz and low-pass 3-7.5 kHz
    (Butterworth, order 1-4), as cheap electret capsules and telephone-band paths have."""
    low = butter(int(rng.integers(1, 5)), rng.uniform(50, 400), "highpass", fs=SAMPLE_RATE,
                 output="sos")
    high = butter(int(rng.integers(1, 5)), rng.uniform(3000, 7500), "lowpass", fs=SAMPLE_RATE,
                  output="sos")
    return sosfilt(high, sosfilt(low, audio))


def place(rng: np.random.Generator, seconds: float, pieces: Sequence[Tuple[str, np.ndarray]],
          gap: Tuple[float, float] = (0.3, 0.9)):
    """Clean speech: the pieces one after the other at random gaps, each at a random level
    within 6 dB; (audio, [(label, start, end), ...]) with sample positions; pieces that do not
    fit are left out."""
    total = int(seconds * SAMPLE_RATE)
    audio = np.zeros(total)
    placed = []
    position = int(rng.uniform(0.05, 0.5) * SAMPLE_RATE)
    for label, clip in pieces:
        if position + clip.size > total - int(0.35 * SAMPLE_RATE):
            break
        level = 10 ** rng.uniform(-0.3, 0) / (np.sqrt(np.mean(clip ** 2)) + 1e-12)
        audio[position:position + clip.size] += level * clip
        placed.append((label, position, position + clip.size))
        position += clip.size + int(rng.uniform(*gap) * SAMPLE_RATE)
    return audio, placed


def record(rng: np.random.Generator, speech: np.ndarray, snr_db: float, level: float,
           rirs: Sequence[np.ndarray], babble: Optional[Sequence[np.ndarray]],
           reverb: float = 0.5, band_limit: float = 0.5) -> np.ndarray:
    """speech as a microphone hears it: reverberated (probability `reverb`) in a random room,
    noise at snr_db under the speech's RMS, through a band-limited microphone (probability
    `band_limit`), scaled so the noise has RMS `level`; clipped at full scale."""
    if rirs and rng.random() < reverb:
        speech = fftconvolve(speech, rirs[rng.integers(len(rirs))])[:speech.size]
    active = speech[np.abs(speech) > 1e-4]
    rms = np.sqrt(np.mean(active ** 2)) if active.size else 1.0
    audio = speech / rms * 10 ** (snr_db / 20) + noise(rng, speech.size, babble)
    if rng.random() < band_limit:
        audio = microphone(rng, audio)
    return np.clip(audio * level, -1.0, 1.0)


def frame_labels(placed, frames: int, front: LogMel) -> np.ndarray:
    """Per-frame class targets: a keyword's class on frames completed from LABEL_BEFORE_END
    before its end to LABEL_AFTER_END after it, IGNORE while it is being spoken (not yet
    decidable); other words and sentences are _unknown_ from their start to LABEL_AFTER_END
    after their end; _silence_ elsewhere."""
    ends = (np.arange(frames) * front.hop_length + front.n_fft)
    labels = np.full(frames, SILENCE, dtype=np.int64)
    before, after = LABEL_BEFORE_END * SAMPLE_RATE, LABEL_AFTER_END * SAMPLE_RATE
    for word, start, end in placed:
        if word in KEYWORDS:
            labels[(ends > start) & (ends < end - before)] = IGNORE
            labels[(ends >= end - before) & (ends <= end + after)] = LABELS.index(word)
        else:
            labels[(ends > start) & (ends <= end + after) & (labels == SILENCE)] = UNKNOWN
    return labels


def _crop(rng: np.random.Generator, clip: np.ndarray, seconds: float) -> np.ndarray:
    size = int(seconds * SAMPLE_RATE)
    if clip.size <= size:
        return clip
    start = rng.integers(clip.size - size)
    return clip[start:start + size]


def _pick(rng, bank, pool):
    word = str(rng.choice([w for w in pool if w in bank]))
    clips = bank[word]
    return word, clips[rng.integers(len(clips))]


def training_sequences(bank, spoken, rirs, count: int, seconds: float, seed: int):
    """count recordings of `seconds`: isolated words (mostly keywords), keywords next to read
    speech, or read speech alone, in rooms, noise and microphones; returns features
    (count, T, 40) float32 and targets (count, T) int64."""
    rng = np.random.default_rng(seed)
    front = front_end()
    features, targets = [], []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.5:          # 0-4 isolated words
            pieces = [_pick(rng, bank, KEYWORDS if rng.random() < 0.6 else UNKNOWN_WORDS)
                      for _ in range(int(rng.integers(0, 5)))]
            speech, placed = place(rng, seconds, pieces)
        elif kind < 0.85:       # a keyword before or after read speech
            pieces = [("<speech>", _crop(rng, spoken[rng.integers(len(spoken))],
                                         rng.uniform(0.8, seconds - 1.4))),
                      _pick(rng, bank, KEYWORDS)]
            if rng.random() < 0.5:
                pieces.reverse()
            speech, placed = place(rng, seconds, pieces, gap=(0.15, 0.6))
        else:                   # read speech only
            pieces = [("<speech>", _crop(rng, spoken[rng.integers(len(spoken))], seconds))]
            speech, placed = place(rng, seconds, pieces)
        audio = record(rng, speech, rng.uniform(0, 30), 10 ** rng.uniform(-3.5, -1.3), rirs,
                       spoken)
        frames = front.transform(audio)
        features.append(frames)
        targets.append(frame_labels(placed, frames.shape[0], front))
    return np.stack(features), np.stack(targets)
