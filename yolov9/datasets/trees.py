"""The bundled "trees" dataset: aerial photographs with hand-labelled tree crowns from deepforest 2.1.0 (MIT).

`build_trees(out)` tiles the four annotated deepforest images into overlapping JPEG tiles with YOLO labels
(one class, `tree`; deepforest's `Tree`, `Alive` and `Dead` labels are all tree crowns), and keeps every source
image whole inside one split: the large YELL crop and OSBS_029 train, the other YELL crop and SOAP_061 validate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import cv2
import numpy as np

from yolov9.datasets.sources import PackageData
from yolov9.datasets.tiling import MIN_SIDE, MIN_VISIBLE, tile_image
from yolov9.datasets.voc import parse_voc
from yolov9.data.config import write_data_yaml
from yolov9.datasets.yolo_writer import prepare_output, write_sample
from yolov9.errors import DatasetError
from yolov9.io.atomic import atomic_write_bytes

DEEPFOREST_VERSION = "2.1.0"
DOWNLOAD_HINT = (f"Get it with: pip download --no-deps deepforest=={DEEPFOREST_VERSION} -d /tmp/deepforest "
                 f"and pass --source /tmp/deepforest/deepforest-{DEEPFOREST_VERSION}-py3-none-any.whl")
TREE_SPLITS: Dict[str, str] = {
    "2019_YELL_2_528000_4978000_image_crop2": "train",
    "OSBS_029": "train",
    "2019_YELL_2_541000_4977000_image_crop": "val",
    "SOAP_061": "val",
}
TILE, OVERLAP, QUALITY, DEMO_IMGSZ = 416, 112, 90, 320


def _read_source(data: PackageData, stem: str):
    annotation = parse_voc(data.read(f"{stem}.xml").decode(), source=f"{data.description}: {stem}.xml")
    image = cv2.imdecode(np.frombuffer(data.read(f"{stem}.png"), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{data.description}: {stem}.png is not a readable image")
    if image.shape[:2] != (annotation.height, annotation.width):
        raise DatasetError(f"{data.description}: {stem}.xml says {annotation.width}x{annotation.height} but "
                           f"{stem}.png is {image.shape[1]}x{image.shape[0]}")
    return image, annotation


def build_trees(out: Union[str, Path], source: Optional[Union[str, Path]] = None, tile: int = TILE,
                overlap: int = OVERLAP, quality: int = QUALITY, splits: Mapping[str, str] = TREE_SPLITS,
                min_visible: float = MIN_VISIBLE, min_side: float = MIN_SIDE, overwrite: bool = False) -> Dict:
    """Build the dataset under `out` from deepforest's wheel / unpacked folder `source` (default: installed package).

    Returns a summary: per split the number of tiles, boxes, clipped boxes, dropped slivers and source boxes.
    """
    out = Path(out)
    data = PackageData("deepforest", "data", source, hint=DOWNLOAD_HINT)
    licence = data.license_text()
    if licence is None:
        raise DatasetError(f"{data.description}: no LICENSE file found; the data must be redistributed with it")
    prepare_output(out, overwrite)
    summary = {split: {"images": 0, "boxes": 0, "clipped": 0, "slivers": 0, "source_boxes": 0, "sources": []}
               for split in dict.fromkeys(splits.values())}
    largest_side = 0.0
    for stem, split in splits.items():
        image, annotation = _read_source(data, stem)
        counts = summary[split]
        counts["sources"].append(f"{stem}.png ({annotation.width}x{annotation.height}, {len(annotation.boxes)} boxes)")
        counts["source_boxes"] += len(annotation.boxes)
        largest_side = max(largest_side, float((annotation.boxes[:, 2:] - annotation.boxes[:, :2]).max(initial=0)))
        for piece in tile_image(annotation.width, annotation.height, annotation.boxes, tile, overlap,
                                min_visible, min_side):
            x0, y0, x1, y1 = piece.window
            inside = ((annotation.boxes[:, 0] >= x0) & (annotation.boxes[:, 1] >= y0)
                      & (annotation.boxes[:, 2] <= x1) & (annotation.boxes[:, 3] <= y1))
            touching = ((annotation.boxes[:, 0] < x1) & (annotation.boxes[:, 2] > x0)
                        & (annotation.boxes[:, 1] < y1) & (annotation.boxes[:, 3] > y0))
            write_sample(out, split, f"{stem}_x{x0}_y{y0}", image[y0:y1, x0:x1], piece.boxes,
                         np.zeros(len(piece.boxes), dtype=np.int64), quality)
            counts["images"] += 1
            counts["boxes"] += len(piece.boxes)
            counts["clipped"] += int(len(piece.boxes) - inside[piece.source_index].sum())
            counts["slivers"] += int(touching.sum() - len(piece.boxes))
    write_data_yaml(out / "trees.yaml", ["tree"], {split: f"images/{split}" for split in summary},
                    header=f"# Tree crowns from deepforest {DEEPFOREST_VERSION} (MIT); see README.md. "
                           f"Rebuild: yolov9 dataset trees --out {out.as_posix()} --overwrite")
    atomic_write_bytes(out / "LICENSE", licence.encode())
    atomic_write_bytes(out / "README.md", trees_readme(summary, tile, overlap, quality, min_visible, min_side,
                                                             largest_side).encode())
    return summary


def trees_readme(summary: Mapping, tile: int, overlap: int, quality: int, min_visible: float, min_side: float,
                 largest_side: float) -> str:
    """The dataset card: source, licence, counts per split, tiling, clipping rule and split."""
    coverage = ("The overlap is at least the largest box side,\n  so every crown lies whole in at least one tile: "
                "dropping slivers loses no tree." if overlap >= largest_side else
                "The overlap is smaller than the largest box side,\n  so a crown may appear only clipped.")
    rows = "\n".join(f"| {split} | {c['images']} | {c['boxes']} | {c['clipped']} | {c['slivers']} | "
                     f"{'; '.join(c['sources'])} |" for split, c in summary.items())
    return f"""# trees: tree crowns in aerial photographs

Real RGB aerial images (NEON Airborne Observation Platform, 10 cm/pixel) with hand-labelled tree-crown boxes,
taken from the data folder of the PyPI package [deepforest](https://pypi.org/project/deepforest/)
{DEEPFOREST_VERSION} (`deepforest/data/`), MIT licence, copyright (c) 2019 Ben Weinstein: see `LICENSE`.
One class, `tree` (deepforest's labels `Tree`, `Alive` and `Dead` are all tree crowns).

| split | images | boxes | clipped boxes | dropped slivers | source images (whole, never shared between splits) |
|---|---|---|---|---|---|
{rows}

* Tiles: {tile}x{tile} px JPEG (quality {quality}), neighbours overlapping by at least {overlap} px; a source image no
  larger than a tile is one tile of its own size. Label files: YOLO txt (`class cx cy w h`, normalised).
* Clipping rule: a box cut by a tile border is kept, clipped to the tile, when at least {min_visible:.0%} of its
  area and at least {min_side:g} px of both its width and height remain inside the tile; smaller remnants
  (slivers) are dropped. Largest box side: {largest_side:g} px. {coverage}
* Split: each source image goes whole into one split, so no validation pixel is ever seen in training.
* The demo (`yolov9 demo`) trains at `imgsz {DEMO_IMGSZ}` (each tile resized to {DEMO_IMGSZ} px).

Rebuild (bit-identical on the same OpenCV version):

```
pip download --no-deps deepforest=={DEEPFOREST_VERSION} -d /tmp/deepforest
yolov9 dataset trees --out datasets/trees --overwrite \\
    --source /tmp/deepforest/deepforest-{DEEPFOREST_VERSION}-py3-none-any.whl
```
"""
