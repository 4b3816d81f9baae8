"""Layer drafts: what the importers build while they walk a graph, before the layers are
final (a Dense may still take a bias or an activation from the next node), then made into
lstmlite layers in one place."""
from __future__ import annotations

from typing import List

from lstmlite.errors import ConversionError
from lstmlite.layers import Dense, Layer, Normalize, Scale


def build_layers(chain: List[dict], where: str) -> List[Layer]:
    """Drafts are {"layer": Layer}, {"dense", "bias", "activation"}, {"normalize": (mean,
    std)} or {"scale", "offset"}, each with the "node" that made it (for messages)."""
    layers = []
    for draft in chain:
        try:
            if "layer" in draft:
                layers.append(draft["layer"])
            elif "dense" in draft:
                layers.append(Dense(draft["dense"], draft["bias"],
                                    activation=draft["activation"]))
            elif "normalize" in draft:
                layers.append(Normalize(*draft["normalize"]))
            else:
                layers.append(Scale(draft["scale"], draft["offset"]))
        except Exception as exc:
            raise ConversionError(f"{where}: node {draft['node']!r}: {exc}") from None
    return layers
