"""Exceptions raised by lstmlite. Each is a ValueError or TypeError, so code that already
catches those keeps working; catch LstmliteError to catch all of ours."""


class LstmliteError(Exception):
    """Base class of every exception lstmlite raises on purpose."""


class ModelError(LstmliteError, ValueError):
    """A layer or model is invalid: wrong weight shapes, NaN/inf weights, unknown options,
    layer sizes that do not chain."""


class ShapeError(LstmliteError, ValueError):
    """An input, output buffer or state array has the wrong shape."""


class InputTypeError(LstmliteError, TypeError):
    """An input has a dtype or type that cannot be converted to float32 (strings, objects,
    complex numbers, booleans)."""


class StreamingError(LstmliteError, ValueError):
    """A stream was asked of a model that needs whole sequences (reverse or bidirectional
    layers): use Model.run()."""


class FormatError(LstmliteError, ValueError):
    """A .lstm file is malformed, truncated, of an unsupported version or fails its checksum."""


class ConversionError(LstmliteError, ValueError):
    """A model from another framework cannot be converted faithfully."""


class VerificationError(ConversionError):
    """A converted model disagrees with its source beyond the tolerance."""
