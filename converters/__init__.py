"""Importers into lstmlite's Model (installed as lstmlite.converters): from ONNX and PyTorch.
They need onnx or torch, which the runtime never imports."""
