"""Loaders: reproducible batches with any number of workers, rect validation batches, letterboxes, COCO == YOLO."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from test_data_factory import make_dataset
from yolov9.cli import main
from yolov9.data import build_train_loader, build_val_loader, load_data_config
from yolov9.data.loaders import EpochShuffleSampler
from yolov9.errors import DatasetError

SAHI = Path(__file__).parent / "assets" / "sahi_terrain2"


@pytest.fixture(scope="module")
def dataset_yaml(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=12)


def batches(loader, epoch: int) -> list[dict]:
    loader.dataset.set_epoch(epoch)
    return list(loader)


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["paths"] == y["paths"]
        assert torch.equal(x["images"], y["images"]) and torch.equal(x["targets"], y["targets"])


def test_train_batches_are_identical_with_0_and_2_workers(dataset_yaml):
    hyp = {"mixup": 0.5, "copy_paste": 0.5, "degrees": 5.0}
    zero = build_train_loader(dataset_yaml, 96, 4, hyp=hyp, workers=0, seed=3)
    two = build_train_loader(dataset_yaml, 96, 4, hyp=hyp, workers=2, seed=3)
    for epoch in (0, 1):
        assert_same_batches(batches(zero, epoch), batches(two, epoch))
    first, second = batches(zero, 0), batches(zero, 1)
    assert first[0]["paths"] != second[0]["paths"] or not torch.equal(first[0]["images"], second[0]["images"])
    batch = first[0]
    assert batch["images"].dtype == torch.uint8 and batch["images"].shape == (4, 3, 96, 96)
    assert batch["targets"].shape[1] == 6 and batch["targets"][:, 0].max() <= 3
    assert ((batch["targets"][:, 2:] >= 0) & (batch["targets"][:, 2:] <= 1)).all()


def test_close_mosaic_gives_letterboxed_single_images(dataset_yaml):
    loader = build_train_loader(dataset_yaml, 96, 4, hyp={"translate": 0.0, "scale": 0.0}, workers=0)
    loader.dataset.mosaic = False
    batch = batches(loader, 0)[0]
    cfg_rows = {Path(p).stem: (Path(p).parent.parent.parent / "labels" / "train" / (Path(p).stem + ".txt"))
                for p in batch["paths"]}
    for i, path in enumerate(batch["paths"]):
        expected = np.loadtxt(cfg_rows[Path(path).stem], ndmin=2)
        assert (batch["targets"][:, 0] == i).sum() == len(expected)


def test_val_batches_are_rectangular_and_letterboxes_map_back(dataset_yaml):
    batch_size, imgsz, stride, pad = 4, 128, 32, 0.5
    loader = build_val_loader(dataset_yaml, imgsz=imgsz, batch=batch_size, workers=0)
    cfg = load_data_config(dataset_yaml)
    seen = []
    for batch in loader:
        shapes = np.array([box.shape for box in batch["letterboxes"]], float)
        aspect = shapes[:, 0] / shapes[:, 1]
        relative = [1.0, 1.0]
        if aspect.max() < 1:
            relative = [aspect.max(), 1.0]
        elif aspect.min() > 1:
            relative = [1.0, 1 / aspect.min()]
        expected = [math.ceil(r * imgsz / stride + pad) * stride for r in relative]
        assert list(batch["images"].shape[2:]) == expected
        seen += list(aspect)
        for i, path in enumerate(batch["paths"]):
            box = batch["letterboxes"][i]
            (h0, w0), (gain_h, gain_w), (left, top) = box.shape, box.gain, box.pad
            _, H, W = batch["images"][i].shape
            t = batch["targets"][batch["targets"][:, 0] == i, 2:].numpy().astype(np.float64)
            x = (t[:, 0] * W - left) / gain_w / w0
            y = (t[:, 1] * H - top) / gain_h / h0
            truth = np.loadtxt(Path(path.replace("/images/", "/labels/")).with_suffix(".txt"), ndmin=2)
            np.testing.assert_allclose(np.stack((x, y), 1), truth[:, 1:3], atol=1.0 / min(h0, w0))
    assert seen == sorted(seen) and len(seen) == len(cfg["val"])


def test_distributed_sampler_partitions_one_permutation(dataset_yaml):
    dataset = build_train_loader(dataset_yaml, 64, 4, workers=0).dataset
    parts = [list(EpochShuffleSampler(dataset, rank=r, world_size=3)) for r in range(3)]
    assert sorted(sum(parts, [])) == list(range(len(dataset)))


def test_ram_cache_gives_the_same_batches(dataset_yaml, capsys):
    plain = build_train_loader(dataset_yaml, 96, 4, workers=0, seed=5)
    cached = build_train_loader(dataset_yaml, 96, 4, workers=0, seed=5, cache="ram")
    assert "caching 12 images in RAM" in capsys.readouterr().out
    assert_same_batches(batches(plain, 2), batches(cached, 2))


def val_samples(data) -> list[tuple]:
    loader = build_val_loader(data, imgsz=160, batch=2, workers=0)
    return [(b["paths"], b["images"], b["targets"], b["letterboxes"]) for b in loader]


def assert_same_samples(a, b) -> None:
    assert len(a) == len(b)
    for (pa, ia, ta, ra), (pb, ib, tb, rb) in zip(a, b):
        assert [Path(p).name for p in pa] == [Path(p).name for p in pb] and ra == rb
        assert torch.equal(ia, ib)
        torch.testing.assert_close(ta, tb, atol=1e-6, rtol=0)


def test_coco_json_and_yolo_txt_give_identical_samples(dataset_yaml):
    root = dataset_yaml.parent
    coco_yaml = root / "coco.yaml"
    coco_yaml.write_text(f"path: {root}\nval: annotations/instances_val.json\n")
    cfg = load_data_config(coco_yaml)
    assert cfg["names"] == ["a", "b", "c"]
    assert_same_samples(val_samples(dataset_yaml), val_samples(coco_yaml))


def test_real_sahi_coco_set_matches_its_yolo_conversion(tmp_path):
    """The one-image COCO set shipped in sahi 0.12.8; the YOLO txt is written from pycocotools' reading of it."""
    root = tmp_path / "sahi"
    shutil.copytree(SAHI, root)
    coco = COCO(str(root / "terrain2_coco.json"))
    image = coco.loadImgs(coco.getImgIds())[0]
    (root / "images").mkdir()
    (root / "labels").mkdir()
    shutil.copy(root / "terrain2.png", root / "images" / "terrain2.png")
    lines = [f"0 {(x + w / 2) / image['width']} {(y + h / 2) / image['height']} {w / image['width']} "
             f"{h / image['height']}" for x, y, w, h in (a["bbox"] for a in coco.loadAnns(coco.getAnnIds()))]
    (root / "labels" / "terrain2.txt").write_text("\n".join(lines) + "\n")
    (root / "yolo.yaml").write_text(f"path: {root}\nval: images\nnames: [car]\n")
    (root / "coco.yaml").write_text(f"path: {root}\nval: terrain2_coco.json\n")
    yolo, from_coco = val_samples(root / "yolo.yaml"), val_samples(root / "coco.yaml")
    assert len(yolo[0][2]) == len(coco.getAnnIds()) == 5
    assert_same_samples(yolo, from_coco)


def test_cli_check_show_convert(dataset_yaml, tmp_path, capsys):
    assert main(["data", "check", str(dataset_yaml)]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "instances" in out
    png = tmp_path / "show.png"
    assert main(["data", "show", str(dataset_yaml), "--n", "4", "--imgsz", "64", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    converted = tmp_path / "converted"
    json_file = dataset_yaml.parent / "annotations" / "instances_val.json"
    assert main(["data", "convert", str(json_file), "--from", "coco", "--to", "yolo", "--out", str(converted)]) == 0
    assert_same_samples(val_samples(dataset_yaml), val_samples(converted / "data.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: nowhere\n")
    assert main(["data", "check", str(broken)]) == 2


def test_a_file_broken_after_the_scan_does_not_stop_training(tmp_path):
    yaml = make_dataset(tmp_path, n=6, coco=False)
    train = build_train_loader(yaml, 64, 6, workers=0)
    val = build_val_loader(yaml, imgsz=64, batch=6, workers=0)
    broken = Path(train.dataset.files[2])
    broken.write_bytes(b"broken")
    with pytest.warns(UserWarning, match=f"{broken.name}: cannot decode image"):
        assert len(batches(train, 0)[0]["images"]) == 6
    (tmp_path / "images" / "val" / "val_002.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="val_002.png: cannot decode image"):
        list(val)


def test_per_image_metadata_is_held_in_flat_numpy_arrays(dataset_yaml):
    """No per-image Python objects (lists of str/arrays) that forked workers would copy on read."""
    dataset = build_train_loader(dataset_yaml, 64, 4, workers=0).dataset
    for name, value in vars(dataset).items():
        assert not isinstance(value, (list, tuple)) or len(value) < 4, name
    assert dataset.files.dtype.kind == "U" and dataset.labels.dtype == np.float32
    assert dataset.offsets[-1] == len(dataset.labels) and len(dataset.offsets) == len(dataset.files) + 1


def test_mosaic_partners_come_from_the_same_shuffled_batch(dataset_yaml):
    dataset = build_train_loader(dataset_yaml, 64, 4, workers=0, seed=2).dataset
    dataset.set_epoch(3)
    order = dataset.shuffled_order()
    for position, index in enumerate(order):
        group = set(order[position // 4 * 4:position // 4 * 4 + 4].tolist())
        assert set(dataset.partner_indices(int(index), np.random.default_rng(position), 8)) <= group
    uniform = build_train_loader(dataset_yaml, 64, 4, workers=0, partner_group=0).dataset
    drawn = {i for i in uniform.partner_indices(0, np.random.default_rng(0), 200)}
    assert drawn == set(range(len(uniform)))
