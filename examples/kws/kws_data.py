"""Synthetic keyword-spotting data: the ten Speech Commands keywords, "unknown" words and
background noise, spoken by espeak-ng (apt-get install espeak-ng) with many voices, accents,
speeds and pitches, mixed with white, pink, brown and hum noise at several SNRs.

Voices and speeds are split: the test split's voice variants and speaking rates never occur in
training, so the evaluation measures speakers the model has not heard. Everything is seeded.

Used by train.py, evaluate.py and plot.py; needs numpy, scipy and espeak-ng (not lstmlite's
runtime dependencies).
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import Dict, List, Sequence, Tuple

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from lstmlite.features import LogMel  # noqa: E402

SAMPLE_RATE = 16000
KEYWORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
LABELS = ["_silence_", "_unknown_"] + KEYWORDS
SILENCE, UNKNOWN = 0, 1
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree",
                 "wow", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "learn", "follow", "forward", "backward", "visual", "yellow", "know",
                 "lap", "dawn", "loft", "bright", "often", "step", "goal", "yet", "nose",
                 "cup", "town", "light", "got", "the", "turn", "please", "now", "then", "and"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
           "en-gb-x-gbcwmd"]
VOICES = {
    "train": ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2",
              "klatt3", "adam", "Alex", "Andy", "Annie", "benjamin", "caleb", "david", "ed",
              "edward", "iven", "john", "linda", "max", "michel", "paul", "quincy", "rob",
              "robert", "steph", "travis", "victor", "zac", "norbert", "Mike", "Lee",
              "grandpa", "aunty"],
    "test": ["m7", "m8", "f5", "klatt4", "Alicia", "Hugo", "anika", "belinda", "shelby",
             "steph2"],
}
SPEEDS = {"train": [120, 140, 160, 180, 200], "test": [130, 150, 170, 190]}

FRONT_END = dict(sample_rate=SAMPLE_RATE, n_fft=512, win_length=400, hop_length=160,
                 n_mels=40, fmin=20.0, fmax=7600.0, log_offset=1e-6)
#: frames labelled with a word: from 50 ms before its last sample to 300 ms after it
LABEL_BEFORE_END, LABEL_AFTER_END = 0.05, 0.30
IGNORE = -100


def front_end() -> LogMel:
    return LogMel(**FRONT_END)


def speak(word: str, accent: str, voice: str, speed: int, pitch: int,
          warp: float = 1.0) -> np.ndarray:
    """One utterance as float64 audio at 16 kHz, leading and trailing silence trimmed.
    warp != 1 resamples it, scaling every frequency (pitch and formants: a longer or shorter
    vocal tract) by `warp` and the duration by 1 / warp."""
    wav = subprocess.run(["espeak-ng", "-v", f"{accent}+{voice}", "-s", str(speed), "-p",
                          str(pitch), "--stdout", word], check=True, capture_output=True).stdout
    pcm = np.frombuffer(wav[44:], dtype="<i2").astype(np.float64) / 32768.0
    ratio = Fraction(441 * warp / 160).limit_denominator(2000)
    # espeak-ng speaks at 22050 Hz: to 16 kHz, and warped
    audio = resample_poly(pcm, ratio.denominator, ratio.numerator)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    if loud.size == 0:
        return audio[:0]
    return audio[max(loud[0] - 160, 0):loud[-1] + 160]


#: the training split's vocal-tract warps (the test split's voices are never warped)
WARP = (0.88, 1.12)


def utterance_bank(split: str, per_keyword: int, per_unknown: int,
                   seed: int) -> Dict[str, List[np.ndarray]]:
    """word -> list of utterances, each by a random accent, voice, speed and pitch of split
    (and, in training, a random warp: many more voices than espeak-ng's variants)."""
    rng = np.random.default_rng(seed)
    jobs: List[Tuple[str, str, str, int, int, float]] = []
    for word in KEYWORDS + UNKNOWN_WORDS:
        count = per_keyword if word in KEYWORDS else per_unknown
        for _ in range(count):
            jobs.append((word, str(rng.choice(ACCENTS)), str(rng.choice(VOICES[split])),
                         int(rng.choice(SPEEDS[split])), int(rng.integers(25, 80)),
                         float(rng.uniform(*WARP)) if split == "train" else 1.0))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        audio = list(pool.map(lambda job: speak(*job), jobs))
    bank: Dict[str, List[np.ndarray]] = {}
    for job, clip in zip(jobs, audio):
        if clip.size > 1600:
            bank.setdefault(job[0], []).append(clip)
    return bank


def noise(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Unit-RMS noise of a random colour: white, pink (1/f), brown (1/f^2) or mains hum."""
    kind = rng.integers(4)
    if kind == 3:
        t = np.arange(samples) / SAMPLE_RATE
        base = rng.choice([50.0, 60.0])
        signal = sum(rng.uniform(0.2, 1.0) * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
                     for k in range(1, 6)) + 0.1 * rng.standard_normal(samples)
    else:
        spectrum = np.fft.rfft(rng.standard_normal(samples))
        frequency = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), 20.0)
        spectrum /= frequency ** (kind / 2.0)
        signal = np.fft.irfft(spectrum, samples)
    return signal / (np.sqrt(np.mean(signal ** 2)) + 1e-12)


def mix(rng: np.random.Generator, seconds: float, words: Sequence[Tuple[str, np.ndarray]],
        snr_db: float, noise_level: float):
    """A recording: noise at noise_level RMS with the words placed one after the other at
    random gaps, each at snr_db over the noise. Returns (audio, [(word, start, end), ...])
    with sample positions."""
    total = int(seconds * SAMPLE_RATE)
    audio = noise_level * noise(rng, total)
    placed = []
    position = int(rng.uniform(0.1, 0.5) * SAMPLE_RATE)
    for word, clip in words:
        if position + clip.size > total - int(0.35 * SAMPLE_RATE):
            break
        rms = np.sqrt(np.mean(clip ** 2)) + 1e-12
        gain = noise_level * 10 ** (snr_db / 20) / rms
        audio[position:position + clip.size] += gain * clip
        placed.append((word, position, position + clip.size))
        position += clip.size + int(rng.uniform(0.3, 0.9) * SAMPLE_RATE)
    peak = np.abs(audio).max()
    if peak > 0.99:
        audio *= 0.99 / peak
    return audio, placed


def frame_labels(placed, frames: int, front: LogMel) -> np.ndarray:
    """Per-frame class targets: a word's class on frames completed from LABEL_BEFORE_END
    before its end to LABEL_AFTER_END after it; IGNORE while it is being spoken (a keyword is
    not yet decidable); silence elsewhere."""
    ends = (np.arange(frames) * front.hop_length + front.n_fft)
    labels = np.full(frames, SILENCE, dtype=np.int64)
    for word, start, end in placed:
        target = LABELS.index(word) if word in KEYWORDS else UNKNOWN
        labels[(ends > start) & (ends < end - LABEL_BEFORE_END * SAMPLE_RATE)] = IGNORE
        window = ((ends >= end - LABEL_BEFORE_END * SAMPLE_RATE)
                  & (ends <= end + LABEL_AFTER_END * SAMPLE_RATE))
        labels[window] = target
    return labels


def random_words(rng: np.random.Generator, bank, count: int, keyword_share: float):
    words = []
    for _ in range(count):
        pool = KEYWORDS if rng.random() < keyword_share else UNKNOWN_WORDS
        word = str(rng.choice([w for w in pool if w in bank]))
        clips = bank[word]
        words.append((word, clips[rng.integers(len(clips))]))
    return words


def training_sequences(bank, count: int, seconds: float, seed: int):
    """count recordings of `seconds` with 0-4 words (mostly keywords), random noise and SNR
    from -5 to 30 dB; returns features (count, T, 40) float32 and targets (count, T) int64."""
    rng = np.random.default_rng(seed)
    front = front_end()
    features, targets = [], []
    for _ in range(count):
        words = random_words(rng, bank, int(rng.integers(0, 5)), keyword_share=0.6)
        audio, placed = mix(rng, seconds, words, snr_db=rng.uniform(-5, 30),
                            noise_level=10 ** rng.uniform(-3.5, -1.3))
        frames = front.transform(audio)
        features.append(frames)
        targets.append(frame_labels(placed, frames.shape[0], front))
    return np.stack(features), np.stack(targets)
