"""The Backend interface: what the predictor, the validator and the exporter's checks run a model through; and
`FileBackend`, what every exported-file runtime (ONNX Runtime, OpenVINO, LiteRT) shares."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch

from yolov9.errors import YOLOv9Error
from yolov9.ops.letterbox import PAD_VALUE


def float_outputs(output: Any) -> Any:
    """A model output (a tensor, or nested tuples / lists of them) in float32."""
    if isinstance(output, torch.Tensor):
        return output.float()
    return type(output)(float_outputs(o) for o in output)


class Backend:
    """A model ready for inference in some runtime.

    Called on a float batch (B, 3, H, W) RGB in [0, 1], it returns torch tensors on the CPU or the backend's
    device: the decoded head output of the model's task (detection: (B, 4 + nc, A) xywh pixels + scores), or, for a
    file exported with NMS, (num_dets (B, 1), boxes (B, K, 4) xyxy, scores (B, K), classes (B, K)).

    Attributes: `names` (class names), `stride` (largest stride), `task` ('detect', ...), `fixed_shape` ((h, w) of
    an exported fixed-shape model, else None: any stride multiple), `has_nms`, `imgsz` ((h, w) the model was
    trained or exported at, or None), `source` (what it was loaded from, for messages), `format` ('torch', 'onnx',
    'openvino', 'tflite').
    """

    names: list[str]
    stride: int
    task: str = "detect"
    fixed_shape: Optional[tuple[int, int]] = None
    has_nms: bool = False
    imgsz: Optional[tuple[int, int]] = None
    source: str = "model"
    format: str = ""
    device: torch.device = torch.device("cpu")

    def __call__(self, images: torch.Tensor) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.format} {self.source}>"


class FileBackend(Backend):
    """A file written by `yolov9 export`, run by some runtime's `run` on numpy arrays.

    Shared by every file runtime: the metadata (`names`, `stride`, `task`, `imgsz`, `nms`; kept whole in
    `metadata`), a fixed input shape (smaller inputs are padded at the bottom and right with the letterbox grey,
    which leaves pixel coordinates unchanged), a fixed batch size (batches are run in chunks of it) and the outputs
    as torch tensors. Subclasses call `describe` once, then implement `run`.
    """

    path: Path
    fixed_batch: Optional[int] = None
    metadata: dict[str, str]

    @staticmethod
    def existing_file(path: Union[str, Path], kind: str) -> Path:
        """`path` as a Path, or one clear error when there is no such file."""
        path = Path(path)
        if not path.is_file():
            raise YOLOv9Error(f"{path}: {kind} file not found")
        return path

    def describe(self, metadata: dict[str, str], input_shape: Sequence[Optional[int]]) -> None:
        """Attributes from the file's metadata and its input shape (B, 3, H, W), None for a dynamic dimension."""
        self.source = str(self.path)
        self.metadata = dict(metadata)
        self.names = parse_names(metadata.get("names", "[]"), self.path)
        self.stride = int(metadata.get("stride", 32))
        self.has_nms = metadata.get("nms", "false") == "true"
        self.task = metadata.get("task", "detect")
        batch, _, h, w = input_shape
        self.fixed_batch = batch
        self.fixed_shape = (h, w) if h is not None and w is not None else None
        imgsz = json.loads(metadata["imgsz"]) if "imgsz" in metadata else None
        self.imgsz = self.fixed_shape or (tuple(imgsz) if imgsz else None)

    def run(self, array: np.ndarray) -> list[np.ndarray]:
        """The runtime's outputs, in the file's output order, for one float32 batch (B, 3, H, W)."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> Any:
        array = images.detach().float().cpu().numpy()
        if self.fixed_shape is not None:
            array = pad_to(array, self.fixed_shape, self.path)
        n, size = array.shape[0], self.fixed_batch or array.shape[0]
        chunks = [array[i:i + size] for i in range(0, n, size)]
        if len(chunks[-1]) < size:  # a fixed batch size: fill the last chunk with padding images
            chunks[-1] = np.concatenate((chunks[-1], np.full((size - len(chunks[-1]), *array.shape[1:]),
                                                             PAD_VALUE / 255, array.dtype)))
        parts = [self.run(np.ascontiguousarray(chunk)) for chunk in chunks]
        outputs = [torch.from_numpy(np.concatenate(arrays)[:n]) for arrays in zip(*parts)]
        if self.has_nms:  # num_dets, boxes, scores, classes (+ segmentation: coefficients, protos)
            num, boxes, scores, classes, *rest = outputs
            return (num.long(), boxes.float(), scores.float(), classes.long(), *(o.float() for o in rest))
        return outputs[0].float() if len(outputs) == 1 else tuple(o.float() for o in outputs)


def parse_names(text: str, path: Path) -> list[str]:
    """Class names from metadata: our JSON list, or a {index: name} mapping (as other exporters write it)."""
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        try:
            names = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise YOLOv9Error(f"{path}: metadata 'names' is neither a JSON list nor a mapping: {text[:80]!r}")
    if isinstance(names, dict):
        order = sorted(names, key=lambda k: (0, int(k), "") if str(k).isdigit() else (1, 0, str(k)))
        names = [names[k] for k in order]
    return [str(n) for n in names]


def pad_to(array: np.ndarray, shape: tuple[int, int], path: Path) -> np.ndarray:
    """(B, 3, h, w) padded at the bottom / right with the letterbox grey to a fixed `shape` (H, W)."""
    h, w = array.shape[2:]
    if h > shape[0] or w > shape[1]:
        raise YOLOv9Error(f"{path}: input {h}x{w} is larger than the exported fixed shape {shape[0]}x{shape[1]}; "
                          f"re-export with --imgsz {h} {w} (or --dynamic where the format has it)")
    if (h, w) == tuple(shape):
        return array
    padded = np.full(array.shape[:2] + tuple(shape), PAD_VALUE / 255, dtype=array.dtype)
    padded[:, :, :h, :w] = array
    return padded
