"""Strip the PGI auxiliary branch: a multi-branch training model -> the single-branch inference model.

The graph is followed back from the main (last) head branch's inputs; every layer not on those paths is
dropped (CBLinear + auxiliary backbone of m/c, auxiliary neck of t/s/e, auxiliary head branches). A leading
`Silence` goes too when no kept layer names its index explicitly (yolov9-c -> gelan-c), and stays when one
does (yolov9-e -> gelan-e). The result's config, layer indices and state_dict keys are those of gelan-X.
"""
from __future__ import annotations

import copy

from yolov9.models.builder import config_rows
from yolov9.models.detection_model import DetectionModel
from yolov9.nn.head import HEAD_BRANCHES, branch_module_names


def _entries(source) -> list[int]:
    return source if isinstance(source, list) else [source]


def _absolute(entry: int, index: int) -> int:
    return index + entry if entry < 0 else entry


def main_head_sources(rows: list) -> list[int]:
    """Absolute layer indices feeding the main (last) branch of the head row."""
    head_index = len(rows) - 1
    sources = [_absolute(s, head_index) for s in _entries(rows[head_index][0])]
    levels = len(sources) // HEAD_BRANCHES[rows[head_index][2]]
    return sources[-levels:]


def kept_layers(rows: list) -> list[int]:
    """Indices (sorted, head excluded) of the layers the main head branch depends on."""
    main_sources = main_head_sources(rows)
    needed: set[int] = set()
    stack = list(main_sources)
    while stack:
        i = stack.pop()
        if i >= 0 and i not in needed:
            needed.add(i)
            stack.extend(_absolute(s, i) for s in _entries(rows[i][0]))
    explicitly_named = set(main_sources) | {s for i in needed for s in _entries(rows[i][0]) if s >= 0}
    return [i for i in sorted(needed) if not (rows[i][2] == "Silence" and i not in explicitly_named)]


def stripped_config(cfg: dict) -> tuple[dict, dict[int, int]]:
    """(config of the single-branch model, old layer index -> new layer index, head included)."""
    rows = config_rows(cfg)
    head_index = len(rows) - 1
    keep = kept_layers(rows)
    new_index = {old: new for new, old in enumerate(keep)}
    new_index[head_index] = len(keep)

    def remap(source):
        # -1 stays -1 (the previous kept layer is the previous old layer, or the input image);
        # absolute indices are renumbered.
        out = [s if s < 0 else new_index[s] for s in _entries(source)]
        return out if isinstance(source, list) else out[0]

    n_backbone = len(cfg["backbone"])
    backbone, head = [], []
    for old in keep:
        source, repeats, name, args = rows[old]
        (backbone if old < n_backbone else head).append([remap(source), repeats, name, copy.deepcopy(args)])
    head.append([[new_index[s] for s in main_head_sources(rows)], 1, "DDetect", copy.deepcopy(rows[head_index][3])])
    new_cfg = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in ("backbone", "head", "yaml_file")}
    new_cfg["backbone"], new_cfg["head"] = backbone, head
    return new_cfg, new_index


def stripped_state_dict(state: dict, new_index: dict[int, int], branches: int) -> dict:
    """Rename `model.<old>.*` keys to the stripped layout; the main head branch becomes cv2/cv3/dfl."""
    head_old = max(new_index)
    rename = dict(zip(branch_module_names(branches - 1), branch_module_names(0)))
    out = {}
    for key, value in state.items():
        _, old_text, rest = key.split(".", 2)
        old = int(old_text)
        if old == head_old:
            first, tail = rest.split(".", 1)
            if first in rename:
                out[f"model.{new_index[old]}.{rename[first]}.{tail}"] = value
        elif old in new_index:
            out[f"model.{new_index[old]}.{rest}"] = value
    return out


def strip_auxiliary(model: DetectionModel) -> DetectionModel:
    """A new single-branch model equal to the main branch of `model` (weights copied; dtype, device, mode kept).

    Works for any config by following the graph; a single-branch model comes back as an independent copy.
    """
    new_cfg, new_index = stripped_config(model.yaml)
    stripped = DetectionModel(new_cfg)
    if model.is_fused:
        stripped.fuse()
    param = next(model.parameters())
    stripped.to(device=param.device, dtype=param.dtype)
    stripped.load_state_dict(stripped_state_dict(model.state_dict(), new_index, model.branches), strict=True)
    stripped.names = list(model.names)
    stripped.hyp = copy.deepcopy(model.hyp)
    return stripped.train(model.training)
