"""The models that ship with lstmlite, trained by the scripts in the repository's examples/.

    model = lstmlite.load(lstmlite.examples.path("kws"))

"kws"            keyword spotter: 16 kHz audio through the log-mel front end in its metadata,
                 10 keywords + silence + unknown (examples/kws)
"kws-int8"       the same with int8 weights
"activity"       activity classifier: 6 raw accelerometer/gyroscope channels per step (aeon's
                 BasicMotions order), standing / walking / running / badminton (examples/sensors)
"activity-int8"  the same with int8 weights
"gait"           gait predictor: 9 raw acceleration channels (mg) of one 64 Hz step in, the
                 next step's prediction out (Daphnet; examples/sensors)
"gait-int8"      the same with int8 weights
"demo"           seeded random weights of a keyword spotter's shape (no meaning; benchmarks)

Beside them: "kws-sentence.wav", a synthesized sentence for `lstmlite demo`.
"""
from __future__ import annotations

import os
from typing import List

from ..errors import LstmliteError

_HERE = os.path.dirname(os.path.abspath(__file__))


def names() -> List[str]:
    """The bundled model names, for path()."""
    return sorted(name[:-len(".lstm")] for name in os.listdir(_HERE) if name.endswith(".lstm"))


def path(name: str) -> str:
    """The path of a bundled model (`name` as in names(), e.g. "kws") or data file (a name with
    its extension, e.g. "kws-sentence.wav")."""
    filename = name if os.path.splitext(name)[1] else name + ".lstm"
    full = os.path.join(_HERE, filename)
    if os.path.basename(filename) != filename or not os.path.isfile(full):
        raise LstmliteError(f"no bundled example {name!r}; the models are "
                            f"{', '.join(names())}")
    return full
