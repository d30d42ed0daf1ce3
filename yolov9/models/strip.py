"""Strip the PGI auxiliary branch: a multi-branch training model -> the single-branch inference model.

The graph is followed back from the main (last) head branch's inputs (its level maps and, for DualDSegment, its
prototype input); every layer not on those paths is dropped (CBLinear + auxiliary backbone of m/c, auxiliary
neck of t/s/e, auxiliary prototype rows, auxiliary head branches). A leading `Silence` goes too when no kept layer
names its index explicitly (yolov9-c -> gelan-c), and stays when one does (yolov9-e -> gelan-e). Detection models
give the rows and state_dict keys of gelan-X.

The result's config is labelled as its own: `yaml_file` is `<source stem>-stripped.yaml` and `stripped_from`
names the source. That matters for segmentation: yolov9-c-dseg gives the gelan-c-dseg rows but with row 41's 2
inner repeats in row 22 (official gelan-c-dseg has 1), a config of its own.
"""
from __future__ import annotations

import copy
from pathlib import Path

from yolov9.models.builder import absolute_source, config_rows, source_list
from yolov9.models.detection_model import DetectionModel
from yolov9.nn.head import HEAD_SPECS, head_name


def main_head_sources(rows: list) -> list[int]:
    """Absolute layer indices feeding the main (last) branch of the head row, in the head's input order."""
    head_index = len(rows) - 1
    sources = [absolute_source(s, head_index) for s in source_list(rows[head_index][0])]
    spec = HEAD_SPECS[rows[head_index][2]]
    return [sources[p] for p in spec.branch_inputs(len(sources), spec.branches - 1)]


def kept_layers(rows: list) -> list[int]:
    """Indices (sorted, head excluded) of the layers the main head branch depends on."""
    main_sources = main_head_sources(rows)
    needed: set[int] = set()
    stack = list(main_sources)
    while stack:
        i = stack.pop()
        if i >= 0 and i not in needed:
            needed.add(i)
            stack.extend(absolute_source(s, i) for s in source_list(rows[i][0]))
    explicitly_named = set(main_sources) | {s for i in needed for s in source_list(rows[i][0]) if s >= 0}
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
        out = [s if s < 0 else new_index[s] for s in source_list(source)]
        return out if isinstance(source, list) else out[0]

    n_backbone = len(cfg["backbone"])
    backbone, head = [], []
    for old in keep:
        source, repeats, name, args = rows[old]
        (backbone if old < n_backbone else head).append([remap(source), repeats, name, copy.deepcopy(args)])
    spec = HEAD_SPECS[rows[head_index][2]]
    head.append([[new_index[s] for s in main_head_sources(rows)], 1, head_name(spec.single_branch()),
                 copy.deepcopy(rows[head_index][3])])
    new_cfg = {k: copy.deepcopy(v) for k, v in cfg.items() if k not in ("backbone", "head")}
    new_cfg.update(backbone=backbone, head=head)
    if spec.branches > 1:  # a single-branch source keeps its own name
        source_name = str(cfg.get("yaml_file", "model"))
        new_cfg.update(yaml_file=f"{Path(source_name).stem}-stripped.yaml", stripped_from=source_name)
    return new_cfg, new_index


def stripped_state_dict(state: dict, new_index: dict[int, int], rename: dict[str, str]) -> dict:
    """Rename `model.<old>.*` keys to the stripped layout; head modules named in `rename` are kept, renamed."""
    head_old = max(new_index)
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
    main_names = model.head.branch_module_names(model.head.main_branch)
    rename = dict(zip(main_names, stripped.head.branch_module_names(0)))
    stripped.load_state_dict(stripped_state_dict(model.state_dict(), new_index, rename), strict=True)
    stripped.names = list(model.names)
    stripped.hyp = copy.deepcopy(model.hyp)
    stripped.imgsz = model.imgsz
    return stripped.train(model.training)
