"""Dataset YAML in the official form: `path`, `train`, `val`, optional `test`, `names` (list or dict).

A split is an image folder, a .txt list of image paths, a COCO `instances_*.json`, or a list of these.
YOLO labels sit where the last `images` path component is replaced by `labels`.
"""
from __future__ import annotations

import difflib
import json
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import yaml
from PIL import Image

from yolov9.cfg import read_yaml
from yolov9.errors import ConfigError, DatasetError
from yolov9.io.atomic import atomic_write_bytes

IMAGE_SUFFIXES = (".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpeg", ".mpg", ".wmv", ".webm", ".gif", ".ts")
SPLITS = ("train", "val", "test")
# Images above this many pixels are refused before decoding (about 300 MB as 8-bit RGB); PIL's header read is lazy.
MAX_IMAGE_PIXELS = 100_000_000
KNOWN_KEYS = ("path", *SPLITS, "names", "nc", "download")  # `download`: official files have it; ignored here


def label_path(image: Union[str, Path]) -> Path:
    """`.../images/x/a.jpg` -> `.../labels/x/a.txt` (the last `images` component is swapped)."""
    parts = list(Path(image).parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def coco_image_folder(json_file: Path, root: Path) -> Path:
    """Image folder of a COCO json: `<root>/images/<split>`, `<root>/<split>` or the json's own folder."""
    split = json_file.stem.replace("instances_", "")
    for folder in (root / "images" / split, root / split, json_file.parent.parent / "images" / split,
                   json_file.parent.parent / split):
        if folder.is_dir():
            return folder
    return json_file.parent


def _resolve_split(entry: Any, root: Path, key: str, source: str, image_ids: dict
                   ) -> tuple[list[Path], list[Path]]:
    """(image files, COCO json files) of one split entry; COCO image ids go into `image_ids` (path -> id)."""
    entries = entry if isinstance(entry, (list, tuple)) else [entry]
    images: list[Path] = []
    coco: list[Path] = []
    for item in entries:
        path = Path(str(item)).expanduser()
        path = path if path.is_absolute() else root / path
        if path.is_dir():
            images += _images_in(path)
        elif path.suffix == ".txt" and path.is_file():
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            images += [(Path(ln) if Path(ln).is_absolute() else path.parent / ln) for ln in lines]
        elif path.suffix == ".json" and path.is_file():
            coco.append(path)
            folder = coco_image_folder(path, root)
            for image in coco_images(path):
                images.append(folder / image["file_name"])
                image_ids[str(images[-1])] = image["id"]
        else:
            raise DatasetError(f"{source}: key {key!r}: {path} is not an image folder, a .txt list or a .json file")
    return images, coco


def coco_images(json_file: Path) -> list[dict]:
    """The `images` records (file_name, id, ...) of a COCO json, in file order."""
    images = read_json(json_file).get("images")
    if not isinstance(images, list) or not all(isinstance(i, dict) and "file_name" in i and "id" in i
                                                for i in images):
        raise DatasetError(f"{json_file}: `images` must be a list of records with `file_name` and `id`")
    return images


def coco_category_ids(json_file: Path) -> list:
    """The COCO category ids of a json, sorted: class index k is category id `coco_category_ids(f)[k]`."""
    return sorted(c["id"] for c in read_json(json_file)["categories"])


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def _names(data: Mapping, coco: list[Path], source: str) -> list[str]:
    names = data.get("names")
    if names is None and coco:
        categories = sorted(read_json(coco[0])["categories"], key=lambda c: c["id"])
        names = [c["name"] for c in categories]
    if names is None:
        raise ConfigError(f"{source}: missing key 'names' (a list of class names, or a dict id -> name)")
    if isinstance(names, Mapping):
        ids = sorted(int(k) for k in names)
        if ids != list(range(len(ids))):
            raise ConfigError(f"{source}: key 'names': ids must be 0..{len(ids) - 1}, got {ids}")
        names = [names[k] if k in names else names[str(k)] for k in ids]
    names = [str(n) for n in names]
    if "nc" in data and int(data["nc"]) != len(names):
        raise ConfigError(f"{source}: nc={data['nc']} but 'names' lists {len(names)} classes")
    return names


def load_data_config(data: Union[str, Path, Mapping[str, Any]]) -> dict:
    """Read a dataset YAML (or dict) into {path, train, val, test, names, nc, yaml_file, coco, image_ids,
    category_ids}.

    train/val/test are lists of image files (empty when the split is absent); `coco` maps a split to its
    COCO json files (empty list for YOLO txt splits). For COCO json splits `image_ids` maps each image path (str)
    to its COCO image id and `category_ids` lists the COCO category id of each class index (None for YOLO txt
    datasets, whose category ids are the class indices).
    """
    if isinstance(data, Mapping):
        raw, source, base = dict(data), "data config", Path.cwd()
    else:
        raw, source, base = read_yaml(data), str(data), Path(data).resolve().parent
    unknown = [key for key in raw if key not in KNOWN_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), KNOWN_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(KNOWN_KEYS)}"
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}{hint}")
    root = Path(str(raw.get("path", ""))).expanduser()
    root = root if root.is_absolute() else (base / root).resolve()
    config: dict[str, Any] = {"path": root, "yaml_file": None if isinstance(data, Mapping) else str(data), "coco": {},
                              "image_ids": {}}
    if "train" not in raw and "val" not in raw:
        raise ConfigError(f"{source}: needs at least one of the keys 'train' and 'val'")
    for split in SPLITS:
        if raw.get(split) in (None, ""):
            config[split], config["coco"][split] = [], []
            continue
        config[split], config["coco"][split] = _resolve_split(raw[split], root, split, source, config["image_ids"])
    all_coco = [p for files in config["coco"].values() for p in files]
    config["names"] = _names(raw, all_coco, source)
    config["category_ids"] = coco_category_ids(all_coco[0]) if all_coco else None
    config["nc"] = len(config["names"])
    return config


def write_data_yaml(path: Union[str, Path], names: Sequence[str], splits: Mapping[str, str], root: str = ".",
                    header: str = "") -> dict:
    """Write a dataset YAML in the official form (`path`, the splits, `names` as a dict id -> name), atomically.

    `root` is the dataset folder as written in `path` ("." = the YAML's own folder)."""
    config = {"path": root, **splits, "names": {i: str(name) for i, name in enumerate(names)}}
    text = (header + "\n" if header else "") + yaml.safe_dump(config, sort_keys=False)
    atomic_write_bytes(path, text.encode())
    return config


def image_problem(path: Union[str, Path]) -> str:
    """Why an image file cannot be used ("" when it can): an unreadable header, or more than MAX_IMAGE_PIXELS
    pixels. Only the header is read, so a huge image is refused before it is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        return f"more than {MAX_IMAGE_PIXELS:,} pixels (MAX_IMAGE_PIXELS); refused before decoding"
    except (OSError, ValueError):
        return "not a readable image"
    if w * h > MAX_IMAGE_PIXELS:
        return f"{w}x{h} = {w * h:,} pixels is above MAX_IMAGE_PIXELS ({MAX_IMAGE_PIXELS:,}); refused before decoding"
    return ""
