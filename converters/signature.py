"""How a converted graph's inputs and outputs map onto Model.run(): the graph's signature.

A source graph (ONNX, a torch program) takes a sequence tensor in some axis order, maybe
initial states and sequence lengths, and returns a sequence (or its last step) and maybe
final states. The converter records, for every graph input and output, a small recipe of
array operations (JSON-serialisable, stored in the .lstm metadata under "signature") that
turns the graph's feeds into run()'s arguments and run()'s results into the graph's outputs.
`run_signature(model, signature, feeds)` replays it; verification and users both use it.

Recipes (nested lists):
  ["input", name]                 a graph input
  ["zeros"]                       zeros of the shape the consumer needs
  ["state", layer, "h" | "c"]     final state of recurrent layer `layer` (0-based among the
                                  recurrent layers), shape (num_directions, B, size)
  ["transpose", perm, r]          ["squeeze", axes, r]      ["unsqueeze", axes, r]
  ["slice", axis, start, stop, step, r]    ["gather", axis, index, r]
  ["concat", axis, [r, ...]]      ["cast", dtype, r]
The sequence input is {"name", "axes"} with axes a list of "B", "T", "F" (features) and
"1" (a unit axis); "fixed_inputs" maps graph inputs given a value at conversion (--input
sr=16000) to that value, "fixed_shapes" graph inputs given static dimensions (--input-shape
input=?,576) to them (null: left dynamic); a sequence output is {"axes": [...], "last_step": bool} with feature
axes written ["F", size, stride] (the flat feature index is the sum of index * stride), and
where the graph reversed the sequence before a layer (Keras' go_backwards) "first_step": true
(the graph's last step is the model's first) or "reversed": true (every step, in reverse).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from lstmlite.errors import ConversionError, ShapeError


def evaluate(recipe: Any, feeds: Dict[str, np.ndarray],
             states: Optional[List[tuple]] = None) -> Optional[np.ndarray]:
    """Evaluates a recipe; ["zeros"] gives None (the caller knows the shape)."""
    op = recipe[0]
    if op == "input":
        if recipe[1] not in feeds:
            raise ShapeError(f"graph input {recipe[1]!r} was not given")
        return np.asarray(feeds[recipe[1]])
    if op == "zeros":
        return None
    if op == "state":
        if states is None:
            raise ConversionError("a state recipe needs the final states")
        entry = states[recipe[1]]
        return entry[0] if recipe[2] == "h" else entry[1]
    if op == "concat":
        parts = [evaluate(r, feeds, states) for r in recipe[2]]
        return np.concatenate(parts, axis=recipe[1])
    value = evaluate(recipe[-1], feeds, states)
    if value is None:
        return None
    if op == "transpose":
        return np.transpose(value, recipe[1])
    if op == "squeeze":
        return np.squeeze(value, axis=tuple(recipe[1]))
    if op == "unsqueeze":
        for axis in sorted(recipe[1]):
            value = np.expand_dims(value, axis)
        return value
    if op == "slice":
        _, axis, start, stop, step, _ = recipe
        index = [slice(None)] * value.ndim
        index[axis] = slice(start, stop, step)
        return value[tuple(index)]
    if op == "gather":
        return np.take(value, recipe[2], axis=recipe[1])
    if op == "cast":
        return value.astype(recipe[1])
    raise ConversionError(f"unknown recipe operation {op!r}")


def sequence_to_run(feed: np.ndarray, axes: List[str]) -> np.ndarray:
    """The graph's sequence input, axes in `axes` order, as run()'s (B, T, F)."""
    array = np.asarray(feed)
    if array.ndim != len(axes):
        raise ShapeError(f"sequence input has {array.ndim} axes, expected {len(axes)} "
                         f"({', '.join(axes)})")
    squeeze = tuple(i for i, a in enumerate(axes) if a == "1")
    kept = [a for a in axes if a != "1"]
    array = np.squeeze(array, axis=squeeze) if squeeze else array
    for missing in ("B", "T"):
        if missing not in kept:
            array = array[None]
            kept.insert(0, missing)
    return np.transpose(array, [kept.index("B"), kept.index("T"), kept.index("F")])


def sequence_from_run(Y: np.ndarray, axes: List[Any], last_step: bool,
                      first_step: bool = False, reversed_time: bool = False) -> np.ndarray:
    """run()'s (B, T, N) output in the graph output's layout: every step, the last, or (a
    graph that reversed the sequence before a layer, Keras' go_backwards) the first step, or
    every step in reverse order."""
    if first_step:
        Y = Y[:, :1]
    elif last_step or "T" not in axes:
        Y = Y[:, -1:]
    elif reversed_time:
        Y = Y[:, ::-1]
    features = [a for a in axes if isinstance(a, (list, tuple))]
    index = np.zeros([f[1] for f in features], dtype=np.int64)
    for k, (_, size, stride) in enumerate(features):
        shape = [1] * len(features)
        shape[k] = size
        index = index + (np.arange(size) * stride).reshape(shape)
    picked = Y[:, :, index] if features else Y[:, :, 0]  # (B, T, sizes...)
    order, source = [], {"B": 0, "T": 1}
    feature_number = 0
    for axis in axes:
        if isinstance(axis, (list, tuple)):
            order.append(2 + feature_number)
            feature_number += 1
        elif axis in source:
            order.append(source[axis])
    dropped = [d for d in (0, 1) if d not in order]
    for d in dropped:
        if picked.shape[d] != 1:
            raise ShapeError(f"output drops the {'batch' if d == 0 else 'time'} axis of size "
                             f"{picked.shape[d]}")
    picked = np.transpose(picked, dropped + order).reshape(
        [picked.shape[d] for d in order])
    for position, axis in enumerate(axes):
        if axis == "1":
            picked = np.expand_dims(picked, position)
    return picked


def run_signature(model, signature: Dict[str, Any], feeds: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Runs `model` as the source graph would: feeds by graph input name, returns every graph
    output by name. `signature` is model.metadata["signature"] (or the converter's)."""
    seq = signature["sequence_input"]
    if seq["name"] not in feeds:
        raise ShapeError(f"graph input {seq['name']!r} (the sequence) was not given")
    for name, value in (signature.get("fixed_inputs") or {}).items():
        if name in feeds and not np.array_equal(np.asarray(feeds[name]).reshape(-1),
                                                np.asarray(value).reshape(-1)):
            raise ShapeError(f"graph input {name!r} was fixed at {value} when the model was "
                             f"converted (--input); it was given {np.asarray(feeds[name])}")
    X = sequence_to_run(feeds[seq["name"]], seq["axes"])
    B = X.shape[0]
    initial = None
    if signature.get("initial_state"):
        initial = []
        for layer, entry in zip(model.recurrent_layers, signature["initial_state"]):
            arrays = []
            for name, size in zip(layer.state_names, layer.state_sizes()):
                recipe = entry.get(name) if entry else None
                value = None if recipe is None else evaluate(recipe, feeds)
                if value is not None:
                    value = np.asarray(value, dtype=np.float32).reshape(
                        layer.num_directions, B, size)
                arrays.append(value)
            initial.append(tuple(arrays))
    lengths = None
    if signature.get("sequence_lengths"):
        lengths = evaluate(signature["sequence_lengths"], feeds)
        lengths = np.asarray(lengths).astype(np.int64).reshape(B)
    Y, states = model.run(X, initial_state=initial, sequence_lengths=lengths,
                          return_state=True)
    outputs = {}
    for name, spec in signature["outputs"].items():
        if spec["kind"] == "sequence":
            outputs[name] = sequence_from_run(Y, spec["axes"], spec["last_step"],
                                              spec.get("first_step", False),
                                              spec.get("reversed", False))
        else:
            outputs[name] = evaluate(spec["recipe"], feeds, states)
    return outputs


def describe(signature: Dict[str, Any]) -> List[str]:
    """Human-readable lines: what each graph input and output is in lstmlite's terms."""
    lines = []
    seq = signature["sequence_input"]
    lines.append(f"input {seq['name']!r} ({', '.join(seq['axes'])}): the sequence; "
                 f"Stream.step takes one frame (the F axis)")
    uses: Dict[str, List[str]] = {}
    for number, entry in enumerate(signature.get("initial_state") or []):
        for name, recipe in (entry or {}).items():
            if recipe is not None and recipe[0] != "zeros":
                uses.setdefault(_inputs_of(recipe), []).append(f"{name} of layer {number}")
    for source, roles in uses.items():
        lines.append(f"input {source}: initial {', '.join(roles)} (recurrent layers; "
                     f"run(initial_state=...) or Stream.state)")
    if signature.get("sequence_lengths"):
        lines.append(f"input {_inputs_of(signature['sequence_lengths'])}: sequence lengths "
                     f"(run(sequence_lengths=...))")
    for name, value in (signature.get("fixed_inputs") or {}).items():
        lines.append(f"input {name!r}: fixed at {value} when converted (--input); the graph's "
                     f"If nodes it decided keep the branch taken")
    for name, dims in (signature.get("fixed_shapes") or {}).items():
        shown = ", ".join("?" if d is None else str(d) for d in dims)
        lines.append(f"input {name!r}: shape fixed at ({shown}) when converted "
                     f"(--input-shape)")
    for name, spec in signature["outputs"].items():
        if spec["kind"] == "sequence":
            if spec.get("final"):
                lines.append(f"output {name!r}: the bidirectional layer's final states (its "
                             f"output='final') through the layers after it: one output per "
                             f"sequence, run() returns it as one step; a bidirectional layer "
                             f"cannot stream")
            elif spec.get("first_step") or spec.get("reversed"):
                what = ("the first step of the output (the graph reversed the sequence: "
                        "a reverse layer's output after it has seen every step)"
                        if spec.get("first_step") else
                        "the output with its steps in reverse order (the graph reversed the "
                        "sequence)")
                lines.append(f"output {name!r}: {what}; run() returns every step in order, "
                             f"a reverse layer cannot stream")
            else:
                what = "the last step of the output" if spec["last_step"] else "the output"
                lines.append(f"output {name!r}: {what} (step() returns it at every step; "
                             f"run() returns every step)")
        else:
            states = sorted({(leaf[1], leaf[2]) for leaf in recipe_leaves(spec["recipe"])
                             if leaf[0] == "state"})
            named = ", ".join(f"{s} of layer {layer}" for layer, s in states)
            lines.append(f"output {name!r}: final {named} (recurrent layers; "
                         f"run(return_state=True) or Stream.state)")
    return lines


def recipe_leaves(recipe: Any) -> List[list]:
    """The ["input", ...], ["state", ...] and ["zeros"] recipes a recipe is built from."""
    if recipe[0] in ("input", "state", "zeros"):
        return [recipe]
    if recipe[0] == "concat":
        return [leaf for part in recipe[2] for leaf in recipe_leaves(part)]
    return recipe_leaves(recipe[-1])


def _inputs_of(recipe: Any) -> str:
    return ", ".join(sorted({repr(leaf[1]) for leaf in recipe_leaves(recipe)
                             if leaf[0] == "input"}))
