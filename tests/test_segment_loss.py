"""SegmentationLoss against the official segmentation loss (single and dual heads, overlap and per-instance
masks), its assignment, and its behaviour over batches, mask sizes, hyperparameters and gradients."""
from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

from yolov9 import build_model
from yolov9.errors import YOLOv9Error
from yolov9.loss import DetectionLoss, SegmentationLoss

MODELS = ["gelan-c-seg-mini", "gelan-c-dseg-mini", "yolov9-c-dseg-mini"]
MODES = {"overlap": True, "no_overlap": False}
RTOL = ATOL = 1e-5  # the fixture README's suggestion (float64 vs float32 moves the official loss by <= 7.7e-6)


@functools.lru_cache(maxsize=None)
def official_case(fixtures, name: str):
    """(model, train outputs [branch](maps, coefficients, prototypes), loss reference) of one fixture model."""
    model = build_model(fixtures / f"{name}.yaml", nc=3)
    io = torch.load(fixtures / f"{name}.io.pt", weights_only=True)
    reference = torch.load(fixtures / f"{name}.loss.pt", weights_only=True)
    prefixes = ["aux_", ""] if "aux_train_mc" in io else [""]
    outputs = [([io[f"{p}train_feats_{k}"] for k in range(3)], io[f"{p}train_mc"], io[f"{p}train_proto"])
               for p in prefixes]
    return model, outputs, reference


def inputs(reference: dict, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets, masks) as the official loader gives them in `mode` (overlap: rows re-sorted by mask area)."""
    if MODES[mode]:
        return reference["targets_overlap"], reference["masks_overlap"].float()
    return reference["targets"], reference["masks"].float()


def test_item_names():
    assert SegmentationLoss.item_names == ("box", "seg", "cls", "dfl")
    assert DetectionLoss.item_names == ("box", "cls", "dfl")


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", MODELS)
def test_matches_official_loss_and_assignment(official_seg_dir, name, mode):
    model, outputs, reference = official_case(official_seg_dir, name)
    criterion = SegmentationLoss(model, overlap=MODES[mode])
    captured = []
    criterion.assigner.register_forward_hook(lambda module, args, out: captured.append(out))
    loss, items = criterion(outputs, *inputs(reference, mode))
    torch.testing.assert_close(items, reference[f"loss_items_{mode}"], rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(loss, reference[f"loss_{mode}"], rtol=RTOL, atol=ATOL)
    assert not items.requires_grad
    branches = ["aux", "main"][-len(outputs):]  # branches are assigned in config order
    assert len(captured) == len(branches)
    for assignment, branch in zip(captured, branches):
        key = f"{mode}_{branch}_target"
        assert torch.equal(assignment.fg_mask, reference[f"{mode}_{branch}_fg_mask"])
        assert int(assignment.fg_mask.sum()) == 41
        assert torch.equal(assignment.gt_index, reference[f"{key}_gt_idx"])
        assert torch.equal(assignment.labels, reference[f"{key}_labels"].long())
        torch.testing.assert_close(assignment.scores, reference[f"{key}_scores"], atol=1e-5, rtol=0)
        torch.testing.assert_close(assignment.boxes, reference[f"{key}_bboxes"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_branch_items_are_the_single_branch_losses(official_seg_dir, mode):
    model, outputs, reference = official_case(official_seg_dir, "yolov9-c-dseg-mini")
    per_branch = SegmentationLoss(model, overlap=MODES[mode]).branch_items(outputs, *inputs(reference, mode))
    assert per_branch.shape == (2, 4)
    torch.testing.assert_close(per_branch[0], reference[f"aux_only_loss_items_{mode}"], rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(per_branch[1], reference[f"main_only_loss_items_{mode}"], rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(0.25 * per_branch[0] + per_branch[1], reference[f"loss_items_{mode}"],
                               rtol=RTOL, atol=ATOL)


def two_image_batch(outputs):
    """The fixture image twice: every term is a per-image mean, so the items stay the same."""
    return [([torch.cat((m, m)) for m in maps], torch.cat((c, c)), torch.cat((p, p))) for maps, c, p in outputs]


def test_batch_of_two_with_interleaved_rows(official_seg_dir):
    model, outputs, reference = official_case(official_seg_dir, "gelan-c-dseg-mini")
    batch = two_image_batch(outputs)
    targets, masks = inputs(reference, "no_overlap")
    second = targets.clone()
    second[:, 0] = 1
    rows = torch.cat((second, targets))[[0, 5, 6, 1, 2, 7, 8, 3, 4, 9]]  # images interleaved, order kept per image
    row_masks = torch.cat((masks, masks))[[0, 5, 6, 1, 2, 7, 8, 3, 4, 9]]
    loss, items = SegmentationLoss(model, overlap=False)(batch, rows, row_masks)
    torch.testing.assert_close(items, reference["loss_items_no_overlap"], rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(loss, 2 * items.sum())
    targets, masks = inputs(reference, "overlap")
    second = targets.clone()
    second[:, 0] = 1
    _, items = SegmentationLoss(model, overlap=True)(batch, torch.cat((second, targets)), torch.cat((masks, masks)))
    torch.testing.assert_close(items, reference["loss_items_overlap"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_masks_at_another_size_are_resized_nearest(official_seg_dir, mode):
    model, outputs, reference = official_case(official_seg_dir, "gelan-c-seg-mini")
    targets, masks = inputs(reference, mode)
    large = F.interpolate(masks[None], scale_factor=4, mode="nearest")[0]  # (.., 256, 256), as downsample_ratio=1
    _, items = SegmentationLoss(model, overlap=MODES[mode])(outputs, targets, large)
    torch.testing.assert_close(items, reference[f"loss_items_{mode}"], rtol=RTOL, atol=ATOL)


def test_mask_gain_comes_from_the_hyperparameters(official_seg_dir):
    model, outputs, reference = official_case(official_seg_dir, "gelan-c-seg-mini")
    targets, masks = inputs(reference, "overlap")
    _, items = SegmentationLoss(model, hyp={"seg": 5.0, "box": 15.0})(outputs, targets, masks)
    torch.testing.assert_close(items, reference["loss_items_overlap"] * torch.tensor([2.0, 2.0, 1.0, 1.0]),
                               rtol=RTOL, atol=ATOL)


@pytest.fixture(scope="module")
def tiny_dual():
    return build_model("yolov9-t-dseg", nc=2).train()


def leaf_copy(branch):
    maps, coefficients, prototypes = branch
    return ([m.detach().clone().requires_grad_(True) for m in maps], coefficients.detach().clone().requires_grad_(True),
            prototypes.detach().clone().requires_grad_(True))


def test_gradients_reach_every_output_and_auxiliary_weight(tiny_dual):
    branch = tiny_dual(torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))[-1]
    same = [leaf_copy(branch) for _ in range(2)]  # identical auxiliary and main outputs
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.6, 0.4], [0, 0, 0.3, 0.3, 0.2, 0.3], [1, 1, 0.6, 0.5, 0.4, 0.5]])
    masks = torch.zeros(3, 16, 16)
    masks[0, 5:11, 3:13], masks[1, 3:8, 3:7], masks[2, 4:12, 6:13] = 1, 1, 1
    loss, items = SegmentationLoss(tiny_dual, overlap=False)(same, targets, masks)
    loss.backward()
    assert torch.isfinite(items).all() and (items > 0).all()
    (aux_maps, aux_coefficients, aux_prototypes), (maps, coefficients, prototypes) = same
    for aux, main in [*zip(aux_maps, maps), (aux_coefficients, coefficients), (aux_prototypes, prototypes)]:
        assert torch.isfinite(main.grad).all() and main.grad.abs().sum() > 0
        torch.testing.assert_close(aux.grad, 0.25 * main.grad, atol=1e-7, rtol=1e-5)


def test_no_boxes_and_bad_masks(tiny_dual):
    with torch.no_grad():
        outputs = tiny_dual(torch.rand(2, 3, 64, 64))
    loss, items = SegmentationLoss(tiny_dual, overlap=True)(outputs, torch.zeros(0, 6), torch.zeros(2, 16, 16))
    assert torch.isfinite(loss) and items[0] == items[1] == items[3] == 0 and items[2] > 0
    targets = torch.tensor([[0, 1, 0.5, 0.5, 0.6, 0.4]])
    with pytest.raises(YOLOv9Error, match=r"expected 2 for 2 images, got shape \(1, 16, 16\)"):
        SegmentationLoss(tiny_dual, overlap=True)(outputs, targets, torch.zeros(1, 16, 16))
    with pytest.raises(YOLOv9Error, match=r"expected 1 for 1 targets, got shape \(2, 16, 16\)"):
        SegmentationLoss(tiny_dual, overlap=False)(outputs, targets, torch.zeros(2, 16, 16))
