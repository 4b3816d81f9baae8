"""A synthesized dialogue to run a voice-activity detector on: turns spoken by espeak-ng's
voices (each written by espeak-ng itself at its own rate, then resampled to 16 kHz by sox),
pauses of varied length between them, and sox's noises under everything (pink, brown, white,
a hum, and a stretch of chords), at levels that change along the recording.

    python examples/vad/dialogue.py out.wav [--minutes 1.5] [--seed 0]

Needs Debian's espeak-ng and sox. The tests, the benchmark and the example's plot use it; it
writes a 16-bit mono 16 kHz .wav and returns the turns' times.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from typing import List, Tuple

import numpy as np

SAMPLE_RATE = 16000

TURNS = [
    "Hello, is anybody there? I would like to book a table for two.",
    "Of course. What time would suit you?",
    "Around eight this evening, if you still have room.",
    "Let me check. Yes, eight o'clock is free, near the window.",
    "Wonderful. Could you put it under the name Morgan?",
    "Morgan, table for two at eight. Anything else I can do for you?",
    "Do you have anything for people who do not eat meat?",
    "We have three vegetarian dishes and a soup of the day.",
    "That sounds good. Is there parking near the restaurant?",
    "There is a car park across the street, free after six.",
    "Thank you very much, see you tonight.",
    "You are welcome. Goodbye.",
]
VOICES = ["en-us", "en-gb+f3", "en-us+m3", "en-gb-scotland+f2", "en-us+m7", "en+klatt4"]
NOISES = ["pinknoise", "brownnoise", "whitenoise", "hum", "chords"]


def _run(command: List[str]) -> None:
    subprocess.run(command, check=True, capture_output=True)


def _read(path: str) -> np.ndarray:
    """A 16-bit mono wav sox wrote at 16 kHz, as float samples."""
    import wave
    with wave.open(path, "rb") as handle:
        assert handle.getframerate() == SAMPLE_RATE and handle.getnchannels() == 1
        return np.frombuffer(handle.readframes(handle.getnframes()), "<i2") / 32768.0


def _speech(text: str, voice: str, speed: int, work: str) -> np.ndarray:
    raw, resampled = os.path.join(work, "turn.wav"), os.path.join(work, "turn16.wav")
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", raw, text])
    # -R: the same dither on every run, so the same file
    _run(["sox", "-R", raw, "-r", str(SAMPLE_RATE), "-b", "16", resampled])
    return _read(resampled)


def _noise(kind: str, seconds: float, work: str, seed: int) -> np.ndarray:
    path = os.path.join(work, "noise.wav")
    base = ["sox", "-R", "-n", "-r", str(SAMPLE_RATE), "-b", "16", "-c", "1", path, "synth",
            f"{seconds:.3f}"]
    if kind == "hum":
        _run(base + ["sine", "50", "sine", "150"])
    elif kind == "chords":
        notes = [(220, 277, 330), (247, 311, 370), (196, 247, 294)][seed % 3]
        _run(base + [w for note in notes for w in ("sine", str(note))] + ["remix", "-"])
    else:
        _run(base + [kind])
    noise = _read(path)
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def make_dialogue(path: str, minutes: float = 1.5, seed: int = 0
                  ) -> List[Tuple[float, float]]:
    """Writes the dialogue to `path`; returns (start, end) seconds of every spoken turn."""
    rng = np.random.default_rng(seed)
    pieces, turns, position = [], [], 0
    with tempfile.TemporaryDirectory() as work:
        index = 0
        while position < minutes * 60 * SAMPLE_RATE:
            pause = int(rng.uniform(0.15, 2.5) * SAMPLE_RATE)
            pieces.append(np.zeros(pause))
            position += pause
            text = TURNS[index % len(TURNS)]
            voice = VOICES[int(rng.integers(len(VOICES)))]
            speech = _speech(text, voice, int(rng.integers(130, 200)), work)
            speech *= 10 ** (rng.uniform(-12, 0) / 20) * 0.5 / (np.abs(speech).max() + 1e-12)
            turns.append((position / SAMPLE_RATE, (position + len(speech)) / SAMPLE_RATE))
            pieces.append(speech)
            position += len(speech)
            index += 1
        pieces.append(np.zeros(SAMPLE_RATE))
        signal = np.concatenate(pieces)
        # noise under everything: a different kind and level every ~10 s
        segment = 10 * SAMPLE_RATE
        for number, start in enumerate(range(0, len(signal), segment)):
            length = min(segment, len(signal) - start)
            kind = NOISES[int(rng.integers(len(NOISES)))]
            noise = _noise(kind, length / SAMPLE_RATE + 0.01, work, seed + number)[:length]
            level = 10 ** (rng.uniform(-50, -25) / 20)
            signal[start:start + length] += level * noise
    pcm = np.clip(np.round(signal * 32767), -32768, 32767).astype("<i2")
    import wave
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(pcm.tobytes())
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    turns = make_dialogue(args.output, args.minutes, args.seed)
    print(f"wrote {args.output}: {len(turns)} turns")


if __name__ == "__main__":
    main()
