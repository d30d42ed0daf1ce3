"""Dataset YAML: splits as folders, .txt lists or lists of both; names as list or dict; label paths."""
from __future__ import annotations

from pathlib import Path

import pytest

from test_data_factory import make_dataset
from yolov9.data import load_data_config
from yolov9.data.config import label_path
from yolov9.errors import ConfigError, DatasetError


def test_label_path_swaps_the_last_images_component():
    assert label_path("/d/images/x/images/train/a.b.jpg") == Path("/d/images/x/labels/train/a.b.txt")


def test_split_forms_and_dict_names(tmp_path):
    make_dataset(tmp_path, n=3, coco=False)
    (tmp_path / "list.txt").write_text("images/train/train_000.png\n\n" + str(tmp_path / "images/val/val_001.png") + "\n")
    (tmp_path / "d.yaml").write_text("path: .\ntrain: [images/train, list.txt]\nval: list.txt\n"
                                     "names: {0: a, 2: c, 1: b}\n")
    cfg = load_data_config(tmp_path / "d.yaml")
    assert cfg["names"] == ["a", "b", "c"] and cfg["nc"] == 3 and cfg["test"] == []
    assert [p.name for p in cfg["train"]] == ["train_000.png", "train_001.png", "train_002.png", "train_000.png",
                                              "val_001.png"]
    assert cfg["val"] == [tmp_path / "images/train/train_000.png", tmp_path / "images/val/val_001.png"]


@pytest.mark.parametrize("text,error,message", [
    ("val: images/val\nnames: [a]\nnc: 2\n", ConfigError, "nc=2 but 'names' lists 1 classes"),
    ("val: images/val\nnames: {0: a, 2: b}\n", ConfigError, r"ids must be 0..1, got \[0, 2\]"),
    ("val: missing_dir\nnames: [a]\n", DatasetError, "key 'val': .*missing_dir is not an image folder"),
    ("names: [a]\n", ConfigError, "needs at least one of the keys 'train' and 'val'"),
])
def test_config_errors_name_the_file_and_key(tmp_path, text, error, message):
    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(error, match=r"bad.yaml: .*" + message):
        load_data_config(tmp_path / "bad.yaml")


def test_coco_json_without_image_size_names_the_file(tmp_path):
    import json

    from yolov9.data.formats import read_coco
    from yolov9.errors import DatasetError

    path = tmp_path / "instances_val.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}], "categories": [{"id": 1, "name": "a"}],
                                "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}]}))
    with pytest.raises(DatasetError, match="instances_val.json: not a COCO detection json .*width"):
        read_coco(path)
