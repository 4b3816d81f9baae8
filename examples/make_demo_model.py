"""Writes the bundled example model, lstmlite/examples/demo.lstm, from its seeded builder
(lstmlite.demo.build_demo_model). Run it again after a format change:

    python examples/make_demo_model.py
"""
import os

import lstmlite
from lstmlite.demo import build_demo_model

if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(lstmlite.__file__)), "examples",
                        "demo.lstm")
    build_demo_model().save(path, metadata={"generator": "examples/make_demo_model.py",
                                            "lstmlite": lstmlite.__version__})
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")
