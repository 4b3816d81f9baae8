"""state_dict files: names and shapes only, so the layer stack is inferred from the standard
key patterns (nn.LSTM/GRU/RNN weight_ih_l{k}[_reverse], cells' weight_ih, nn.Linear
weight/bias) and verified against torch modules rebuilt from the same weights. A state_dict
records no activations: the head's must be given."""
from __future__ import annotations

import os
import re
from typing import Any, Dict, List, Optional

import numpy as np

from lstmlite.errors import ConversionError
from lstmlite.layers import GRU, LSTM, RNN, Dense

from .common import verified_conversion
from .torch_common import DEFAULT_TOLERANCE, PICKLED_MODULE_HELP, verify_torch
from .torch_common import torch_module as _torch

HEAD_ACTIVATIONS = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "sigmoid": "Sigmoid",
                    "tanh": "Tanh", "relu": "Relu", "none": "Identity"}


# ---- state_dicts -------------------------------------------------------------------------------

_RECURRENT_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|"
                            r"weight_hr)(?:_l(?P<layer>\d+)(?P<reverse>_reverse)?)?$")


def _unwrap_checkpoint(loaded, where):
    if isinstance(loaded, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in loaded and isinstance(loaded[key], dict):
                return loaded[key]
        return loaded
    raise ConversionError(f"{where}: holds a {type(loaded).__name__}, not a state_dict (a "
                          f"dict of tensors). {PICKLED_MODULE_HELP}")


def convert_state_dict(state_dict, where: str = "state_dict", *, verify: bool = True,
                       tolerance: float = DEFAULT_TOLERANCE, seed: int = 0,
                       head_activation: Optional[str] = None,
                       input_size: Optional[int] = None):
    """Infers the layer stack from standard key patterns (nn.LSTM/GRU/RNN weight_ih_l{k}
    [_reverse], cells' weight_ih, nn.Linear weight/bias) and shapes. A state_dict carries no
    activations: with a Linear head, head_activation must say what follows it ("none" for
    logits); without it the conversion is refused rather than guessed."""
    torch = _torch()
    state = _unwrap_checkpoint(state_dict, where)
    arrays = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{where}: entry {key!r} is a {type(value).__name__}, not a "
                                  f"tensor")
        arrays[key] = value.detach().cpu().float().numpy()
    listing = "; ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
    groups: Dict[str, Dict[str, Any]] = {}   # by module prefix, in the dict's order
    for key, array in arrays.items():
        match = _RECURRENT_KEY.match(key)
        if match:
            layer = int(match["layer"]) if match["layer"] is not None else None
            group = groups.setdefault(match["prefix"], {"kind": "recurrent", "keys": {}})
            group["cell"] = layer is None
            group["keys"][(match["kind"], layer or 0, bool(match["reverse"]))] = array
        elif key.endswith("weight") and array.ndim == 2 or \
                key.endswith("bias") and array.ndim == 1 and key[:-4] + "weight" in arrays:
            name = "weight" if key.endswith("weight") else "bias"
            prefix = key[:-len(name)]
            groups.setdefault(prefix, {"kind": "linear", "keys": {}})["keys"][name] = array
        else:
            raise ConversionError(
                f"{where}: key {key!r} {tuple(array.shape)} matches no layer lstmlite can "
                f"infer from a state_dict (nn.LSTM/GRU/RNN, their cells, nn.Linear). Keys: "
                f"{listing}. Convert the module with from_torch or a torch.export program "
                f"(.pt2) instead")
    layers = [(g["kind"], prefix, g["keys"] if g["kind"] == "linear" else g)
              for prefix, g in groups.items()]
    notes: List[str] = []
    linear_positions = [i for i, (kind, _, _) in enumerate(layers) if kind == "linear"]
    if len(linear_positions) > 1 or linear_positions and linear_positions[0] != len(layers) - 1:
        raise ConversionError(
            f"{where}: has Linear layers before the last layer; a state_dict does not say "
            f"which activations lie between layers or in what order they run. Keys: "
            f"{listing}. Convert the module with from_torch or save a torch.export program "
            f"(.pt2)")
    head = HEAD_ACTIVATIONS.get((head_activation or "none").lower())
    if head is None:
        raise ConversionError(f"head activation {head_activation!r} is not one of "
                              f"{', '.join(HEAD_ACTIVATIONS)}")
    if linear_positions and head_activation is None:
        # verification rebuilds the module from the same state_dict, so it cannot catch a
        # missing sigmoid: the user has to say what the head ends with
        raise ConversionError(
            f"{where}: a state_dict does not record the activation after its last Linear "
            f"({layers[-1][1].rstrip('.') or 'the head'}); guessing would silently drop a "
            f"softmax or sigmoid. Give --head-activation (API: head_activation=): "
            f"{', '.join(HEAD_ACTIVATIONS)} (none: logits)")
    built = []
    for kind, prefix, group in layers:
        if kind == "linear":
            notes.append(f"the head's activation is {head_activation} (--head-activation); "
                         f"a state_dict does not record it")
            built.append(Dense(group["weight"], group.get("bias"), activation=head))
            continue
        built.extend(_recurrent_from_keys(prefix, group, where, listing, notes))
    if not built or not any(l.recurrent for l in built):
        raise ConversionError(f"{where}: no recurrent layer found. Keys: {listing}")
    if head_activation is not None and built[-1].type_name != "Dense":
        raise ConversionError(f"--head-activation needs a Linear head; {where} has none")
    if input_size is not None and built[0].input_size != input_size:
        raise ConversionError(f"{where}: the first layer takes {built[0].input_size} "
                              f"features, but --input-size is {input_size}")
    for number in range(1, len(built)):
        if built[number].input_size != built[number - 1].output_size:
            raise ConversionError(
                f"{where}: layers do not chain in key order ({built[number - 1].type_name} "
                f"outputs {built[number - 1].output_size}, {built[number].type_name} takes "
                f"{built[number].input_size}). Keys: {listing}")
    notes.append("a state_dict does not say whether the head reads every step or the last: "
                 "step() gives the head's output at every step; run()'s last step is the "
                 "last-step output")
    signature = {"sequence_input": {"name": "x", "axes": ["B", "T", "F"]},
                 "initial_state": None, "sequence_lengths": None,
                 "outputs": {"output0": {"kind": "sequence",
                                         "axes": ["B", "T", ["F", built[-1].output_size, 1]],
                                         "last_step": False}},
                 "input_order": ["x"]}
    reference = _torch_reference(built, state, layers, head)

    def check(candidate):
        example = torch.zeros(2, 9, built[0].input_size)
        return verify_torch(reference, candidate, signature, (example,), tolerance=tolerance,
                            seed=seed, name=str(where))
    return verified_conversion(built, signature, notes,
                               {"format": "state_dict", "file": os.path.basename(str(where))},
                               check, verify=verify, where=str(where))


def from_state_dict(state_dict, *, head_activation: Optional[str] = None,
                    verify: bool = True, tolerance: float = DEFAULT_TOLERANCE):
    """A Model from a state_dict (a dict of tensors, or a checkpoint holding one)."""
    return convert_state_dict(state_dict, verify=verify, tolerance=tolerance,
                              head_activation=head_activation).model


def _recurrent_from_keys(prefix, group, where, listing, notes):
    keys = group["keys"]
    layer_numbers = sorted({layer for (_, layer, _) in keys})
    out = []
    for layer_number in layer_numbers:
        reverse = (("weight_ih", layer_number, True) in keys)
        parts = []
        for rev in ([False, True] if reverse else [False]):
            get = (lambda name: keys.get((name, layer_number, rev)))
            if get("weight_ih") is None or get("weight_hh") is None:
                raise ConversionError(f"{where}: {prefix} layer {layer_number} lacks weight_ih "
                                      f"or weight_hh. Keys: {listing}")
            parts.append([get(n) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                           "weight_hr")])
        w_ih, w_hh, _, _, w_hr = parts[0]
        hidden = w_hr.shape[1] if w_hr is not None else w_hh.shape[1]
        gates = w_ih.shape[0] // hidden if hidden else 0
        if gates * hidden != w_ih.shape[0] or gates not in (1, 3, 4):
            raise ConversionError(f"{where}: {prefix}weight_ih_l{layer_number} has "
                                  f"{w_ih.shape[0]} rows for hidden size {hidden}: not 4 "
                                  f"(LSTM), 3 (GRU) or 1 (RNN) gates. Keys: {listing}")
        stack = (lambda k: None if parts[0][k] is None else
                 np.stack([p[k] for p in parts]) if reverse else parts[0][k])
        direction = "bidirectional" if reverse else "forward"
        if gates == 4:
            out.append(LSTM(stack(0), stack(1), stack(2), stack(3), weight_hr=stack(4),
                            direction=direction))
        elif gates == 3:
            out.append(GRU(stack(0), stack(1), stack(2), stack(3), direction=direction))
        else:
            notes.append(f"{prefix or 'the'} RNN is taken as tanh (PyTorch's default); a "
                         f"state_dict does not record nonlinearity='relu'")
            out.append(RNN(stack(0), stack(1), stack(2), stack(3), nonlinearity="tanh",
                           direction=direction))
    return out


def _torch_reference(built, state, layers, head):
    """torch modules with the state_dict's own weights, in the inferred order: an independent
    reference for verification (torch's kernels, not lstmlite's)."""
    torch = _torch()
    modules = []
    for kind, _, group in layers:
        if kind == "linear":
            module = torch.nn.Linear(*group["weight"].shape[::-1], bias="bias" in group)
            module.load_state_dict({k: torch.from_numpy(v) for k, v in group.items()})
            modules.append(module)
            continue
        keys = group["keys"]
        numbers = sorted({layer for (_, layer, _) in keys})
        first = [l for l in built if l.recurrent][len([m for m in modules
                                                      if isinstance(m, torch.nn.RNNBase)])]
        cls = {"LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU, "RNN": torch.nn.RNN}[first.type_name]
        kwargs = dict(num_layers=len(numbers), bias=("bias_ih", 0, False) in keys,
                      batch_first=True, bidirectional=first.num_directions == 2)
        if first.type_name == "LSTM" and first.proj_size:
            kwargs["proj_size"] = first.proj_size
        module = cls(first.input_size, first.hidden_size, **kwargs)
        weights = {}
        for (name, layer, rev), array in keys.items():
            suffix = "" if group.get("cell") else f"_l{layer}" + ("_reverse" if rev else "")
            weights[name + (suffix or "_l0")] = torch.from_numpy(array)
        module.load_state_dict(weights)
        modules.append(module)
    activation = {"Softmax": lambda y: torch.softmax(y, -1),
                  "LogSoftmax": lambda y: torch.log_softmax(y, -1),
                  "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Relu": torch.relu,
                  "Identity": lambda y: y}[head]

    def run(x):
        with torch.no_grad():
            y = x
            for module in modules:
                y = module(y)[0] if isinstance(module, torch.nn.RNNBase) else module(y)
            return activation(y) if isinstance(modules[-1], torch.nn.Linear) else y
    return run
