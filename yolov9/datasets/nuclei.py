"""The bundled "nuclei" dataset: one fluorescence-microscopy image with hand-labelled nucleus masks (instance
segmentation, one class), from the data folder of PyPI `stardist` 0.9.2 (BSD-3-Clause).

`build_nuclei(out)` reads `stardist/data/images/img2d.tif` (512 x 512, 8-bit values in uint16) and `mask2d.tif`
(its label image: 0 background, k = nucleus k) out of stardist's wheel, cuts the image at column `split_x` (left:
train, right: val; every pixel is in one split only, a nucleus crossed by the cut is cut too), tiles each part
into overlapping PNG tiles and writes each nucleus seen in a tile as a YOLO-seg polygon (`mask_outline`).
Rule for nuclei cut by a tile border or by the split: the visible part is labelled when its box is at least
`min_side` px per side (and it holds at least `min_visible` of the nucleus' pixels: 0 by default, since a mask
label shows exactly the visible part; an unlabelled visible remnant would teach the model that nuclei are
background). With min_side 4 px only remnants of a few pixels go unlabelled.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import cv2
import numpy as np

from yolov9.data.config import write_data_yaml
from yolov9.datasets.outlines import instance_outlines
from yolov9.datasets.sources import PackageData
from yolov9.datasets.tiling import MIN_SIDE, tile_origins
from yolov9.datasets.yolo_writer import prepare_output, write_sample
from yolov9.errors import DatasetError
from yolov9.io.atomic import atomic_write_bytes

STARDIST_VERSION = "0.9.2"
IMAGE, MASK = "img2d.tif", "mask2d.tif"
DOWNLOAD_HINT = (f"Get it with: pip download --no-deps stardist=={STARDIST_VERSION} -d /tmp/stardist "
                 f"and pass --source /tmp/stardist/stardist-{STARDIST_VERSION}-*.whl")
SPLIT_X = 336  # the column that cuts the fewest nuclei (2) with about a third of the image on the val side
TILE, OVERLAP, DEMO_IMGSZ = 128, 48, 192
MIN_VISIBLE = 0.0


def read_nuclei(data: PackageData) -> Tuple[np.ndarray, np.ndarray, Dict[str, str]]:
    """-> (image (H, W) uint8, instances (H, W) int64: 0 background, k = nucleus k; checked against each other,
    the sha256 of each source file)."""
    files = {name: data.read(name) for name in (IMAGE, MASK)}
    image, instances = (cv2.imdecode(np.frombuffer(files[name], np.uint8), cv2.IMREAD_UNCHANGED)
                        for name in (IMAGE, MASK))
    for name, array in ((IMAGE, image), (MASK, instances)):
        if array is None or array.ndim != 2:
            raise DatasetError(f"{data.description}: {name} is not a readable single-channel TIFF")
    if image.shape != instances.shape:
        raise DatasetError(f"{data.description}: {IMAGE} is {image.shape} but {MASK} is {instances.shape}")
    if image.max() > 255:
        raise DatasetError(f"{data.description}: {IMAGE} has values above 255 (max {image.max()}); expected 8-bit")
    digests = {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    return image.astype(np.uint8), instances.astype(np.int64), digests


def instance_boxes(instances: np.ndarray, count: int) -> Tuple[np.ndarray, np.ndarray]:
    """Label image (H, W) -> (pixel count (count,), box (count, 4) x1y1x2y2 pixel edges) of ids 0..count - 1;
    an absent id has count 0."""
    ys, xs = np.nonzero(instances)
    owner = instances[ys, xs]
    boxes = np.tile(np.array([np.inf, np.inf, -np.inf, -np.inf]), (count, 1))
    np.minimum.at(boxes[:, 0], owner, xs)
    np.minimum.at(boxes[:, 1], owner, ys)
    np.maximum.at(boxes[:, 2], owner, xs + 1)
    np.maximum.at(boxes[:, 3], owner, ys + 1)
    return np.bincount(owner, minlength=count), boxes


def visible_ids(window: np.ndarray, areas: np.ndarray, min_visible: float, min_side: float
                ) -> Tuple[np.ndarray, np.ndarray]:
    """The nucleus ids (k,) of a label-image window kept under the rule above (ascending), and whether each is
    cut (k,) bool (fewer pixels in the window than in the image)."""
    pixels, boxes = instance_boxes(window, len(areas))
    sides = boxes[:, 2:] - boxes[:, :2]
    keep = (pixels > 0) & (pixels >= min_visible * areas) & (sides >= min_side).all(1)
    keep[0] = False
    ids = np.flatnonzero(keep)
    return ids, pixels[ids] < areas[ids]


def split_windows(width: int, height: int, split_x: int, tile: int, overlap: int) -> Dict[str, list]:
    """The tile windows (x0, y0, x1, y1) of each split: columns [0, split_x) train, [split_x, width) val."""
    bounds = {"train": (0, split_x), "val": (split_x, width)}
    return {split: [(x0 + x, y, x0 + min(x + tile, x1 - x0), min(y + tile, height))
                    for y in tile_origins(height, tile, overlap) for x in tile_origins(x1 - x0, tile, overlap)]
            for split, (x0, x1) in bounds.items()}


def build_nuclei(out: Union[str, Path], source: Optional[Union[str, Path]] = None, tile: int = TILE,
                 overlap: int = OVERLAP, split_x: int = SPLIT_X, min_visible: float = MIN_VISIBLE,
                 min_side: float = MIN_SIDE, overwrite: bool = False) -> Dict:
    """Build the dataset under `out` from stardist's wheel / unpacked folder `source` (default: installed package).

    Returns a summary: per split the number of tiles, instances (polygons), nuclei cut by a border and kept, and
    nuclei of the split's region (whole or cut).
    """
    out = Path(out)
    data = PackageData("stardist", "data/images", source, hint=DOWNLOAD_HINT)
    licence = data.license_text()
    if licence is None:
        raise DatasetError(f"{data.description}: no LICENSE file found; the data must be redistributed with it")
    image, instances, digests = read_nuclei(data)
    height, width = image.shape
    if not 0 < split_x < width:
        raise DatasetError(f"nuclei: split_x must lie inside the image width {width} (got {split_x})")
    prepare_output(out, overwrite)
    areas, _ = instance_boxes(instances, int(instances.max()) + 1)
    summary = {}
    for split, windows in split_windows(width, height, split_x, tile, overlap).items():
        counts = {"images": 0, "boxes": 0, "clipped": 0, "nuclei": 0}
        for x0, y0, x1, y1 in windows:
            window = instances[y0:y1, x0:x1]
            ids, cut = visible_ids(window, areas, min_visible, min_side)
            polygons = instance_outlines(window, ids)
            tile_image = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_GRAY2BGR)
            write_sample(out, split, f"nuclei_x{x0}_y{y0}", tile_image, None,
                         np.zeros(len(ids), np.int64), polygons=polygons, suffix=".png")
            counts["images"] += 1
            counts["boxes"] += len(ids)
            counts["clipped"] += int(cut.sum())
        region = instances[:, :split_x] if split == "train" else instances[:, split_x:]
        counts["nuclei"] = int((np.bincount(region.ravel(), minlength=len(areas))[1:] > 0).sum())
        summary[split] = counts
    write_data_yaml(out / "nuclei.yaml", ["nucleus"], {split: f"images/{split}" for split in summary},
                    header=f"# Nuclei from stardist {STARDIST_VERSION} (BSD-3-Clause); see README.md. "
                           f"Rebuild: yolov9 dataset nuclei --out {out.as_posix()} --overwrite")
    atomic_write_bytes(out / "LICENSE", licence.encode())
    card = nuclei_readme(summary, (width, height), int((areas[1:] > 0).sum()), digests, tile, overlap, split_x,
                         min_visible, min_side)
    atomic_write_bytes(out / "README.md", card.encode())
    return summary


def nuclei_readme(summary: Mapping, size: Tuple[int, int], nuclei: int, digests: Mapping[str, str], tile: int,
                  overlap: int, split_x: int, min_visible: float, min_side: float) -> str:
    """The dataset card: source, licence, counts per split, tiling, clipping rule and split."""
    width, height = size
    rows = "\n".join(f"| {split} | {c['images']} | {c['boxes']} | {c['clipped']} | {c['nuclei']} | "
                     f"{'x < ' if split == 'train' else 'x >= '}{split_x} |" for split, c in summary.items())
    return f"""# nuclei: cell nuclei in a fluorescence-microscopy image (instance segmentation)

One real fluorescence-microscopy image ({width}x{height}) of cell nuclei with a hand-labelled instance mask
({nuclei} nuclei) from the 2018 Data Science Bowl (Caicedo et al., Nature Methods 16, 2019), as shipped in the data
folder of the PyPI package [stardist](https://pypi.org/project/stardist/) {STARDIST_VERSION}
(`stardist/data/images/{IMAGE}`, `{MASK}`), BSD 3-Clause licence, copyright (c) 2018-2025 Uwe Schmidt, Martin
Weigert: see `LICENSE`. One class, `nucleus`. Source files (sha256):
`{IMAGE}` `{digests[IMAGE]}`, `{MASK}` `{digests[MASK]}`.

| split | tiles | instances | instances cut by a border | nuclei in the region | region (columns) |
|---|---|---|---|---|---|
{rows}

* Split: the image is cut at column {split_x} (the column that crosses the fewest nuclei, 2); every pixel belongs to
  one split, so no validation pixel is seen in training.
* Tiles: at most {tile}x{tile} px, lossless PNG (the image's own 8-bit grey values in all three channels),
  neighbours overlapping by at least {overlap} px (more than the largest nucleus, 39 px), so every nucleus lies whole in at least one tile of
  its split (the two crossed by the split excepted).
* Labels: YOLO-seg txt, one polygon per nucleus (`class x1 y1 x2 y2 ...`, normalised): the outline of its mask
  pixels (a quarter pixel inside the pixel edges; see `yolov9/datasets/outlines.py`). A nucleus cut by a tile
  border or the split is labelled as its visible part when at least {min_visible:.0%} of its pixels and at least
  {min_side:g} px of both its box sides are visible; smaller remnants (a few pixels) are left unlabelled.
* The segmentation demo (`yolov9 demo --task segment`) trains at `imgsz {DEMO_IMGSZ}` (each tile enlarged 1.5x).

Rebuild (bit-identical labels; the PNG bytes may depend on the zlib version, the pixels do not):

```
pip download --no-deps stardist=={STARDIST_VERSION} -d /tmp/stardist
yolov9 dataset nuclei --out datasets/nuclei --overwrite --source /tmp/stardist/stardist-{STARDIST_VERSION}-*.whl
```
"""
