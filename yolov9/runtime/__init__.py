"""Inference runtimes behind one interface: a `Backend` is called on a float batch and returns the model's
decoded output; `load_model` decides once what a source is; `prepare_for_inference` is the one strip + fuse +
dtype + memory-format step. A new runtime is one module here with a `Backend` subclass (see docs/architecture.md):
PyTorch (`torch_backend`), ONNX Runtime (`onnx_backend`), OpenVINO (`openvino_backend`), LiteRT (`tflite_backend`);
the exported-file ones share `FileBackend`.
"""
from yolov9.runtime.backend import Backend, FileBackend
from yolov9.runtime.load import load_backend, load_model, require_trainable
from yolov9.runtime.prepare import prepare_for_inference
from yolov9.runtime.torch_backend import TorchBackend

__all__ = ["Backend", "FileBackend", "TorchBackend", "load_backend", "load_model", "prepare_for_inference", "require_trainable"]
