"""DetectionLoss against the official loss values, and its behaviour over branches, hyperparameters and gradients."""
from __future__ import annotations

import functools

import pytest
import torch

from yolov9 import build_model
from yolov9.cfg import load_model_config
from yolov9.errors import ConfigError, YOLOv9Error
from yolov9.loss import DetectionLoss
from yolov9.loss.terms import class_loss, distribution_focal_loss

FIXTURE_MODELS = {"yolov9-t": ("yolov9-t", 80), "gelan-t": ("gelan-t", 80), "yolov9-c-mini": (None, 3)}


@functools.lru_cache(maxsize=None)
def official_case(official_dir, name: str):
    """(model, [branch][level] maps, targets, reference dict) of one fixture; built once (models are slow to build)."""
    config, nc = FIXTURE_MODELS[name]
    model = build_model(config or official_dir / f"{name}.yaml", nc=nc)
    io = torch.load(official_dir / f"{name}.io.pt", weights_only=True)
    reference = torch.load(official_dir / f"{name}.loss.pt", weights_only=True)
    maps = [io[f"train_feats_{k}"] for k in range(6) if f"train_feats_{k}" in io]
    outputs = [maps[i:i + 3] for i in range(0, len(maps), 3)]
    return model, outputs, reference["targets"], reference


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_matches_official_loss(official_dir, name):
    model, outputs, targets, reference = official_case(official_dir, name)
    criterion = DetectionLoss(model)
    captured = []
    criterion.assigner.register_forward_hook(lambda module, args, out: captured.append(out))
    loss, items = criterion(outputs, targets)
    assert loss.item() == pytest.approx(reference["loss"].item(), rel=1e-4)
    assert torch.allclose(items, reference["loss_items"], rtol=1e-4, atol=0)
    assert not items.requires_grad
    labels, boxes, scores, fg, _ = captured[-1]  # the main branch is assigned last
    assert torch.equal(fg, reference["main_fg_mask"])
    assert torch.equal(labels, reference["main_target_labels"])
    assert torch.allclose(boxes, reference["main_target_bboxes"], atol=1e-5)
    assert torch.allclose(scores, reference["main_target_scores"], atol=1e-5)


def test_branch_items_combine_to_the_items(official_dir):
    model, outputs, targets, reference = official_case(official_dir, "yolov9-t")
    criterion = DetectionLoss(model)
    per_branch = criterion.branch_items(outputs, targets)
    assert per_branch.shape == (2, 3)
    assert torch.allclose(0.25 * per_branch[0] + per_branch[1], reference["loss_items"], rtol=1e-4)


def test_hyperparameters_drive_gains_weights_and_assigner(official_dir):
    model, outputs, targets, reference = official_case(official_dir, "yolov9-t")
    base = DetectionLoss(model).branch_items(outputs, targets)
    doubled = DetectionLoss(model, hyp={"box": 15.0, "cls": 1.0, "dfl": 3.0}).branch_items(outputs, targets)
    assert torch.allclose(doubled, 2 * base)
    _, main_only = DetectionLoss(model, hyp={"aux_weight": 0.0})(outputs, targets)
    assert torch.allclose(main_only, base[1])
    model.hyp = {"tal_topk": 3, "tal_alpha": 1.0, "tal_beta": 2.0}
    try:
        assigner = DetectionLoss(model).assigner
    finally:
        model.hyp = None
    assert (assigner.topk, assigner.alpha, assigner.beta) == (3, 1.0, 2.0)
    with pytest.raises(ConfigError, match="label_smoothing"):
        DetectionLoss(model, hyp={"label_smoothing": 0.1})


@functools.lru_cache(maxsize=None)
def tiny_gelan(branches: int, nc: int = 2):
    """gelan-t with its head inputs repeated `branches` times (DDetect / DualDDetect / TripleDDetect)."""
    config = load_model_config("gelan-t")
    sources, _, _, args = config["head"][-1]
    head_type = {1: "DDetect", 2: "DualDDetect", 3: "TripleDDetect"}[branches]
    config["head"][-1] = [sources * branches, 1, head_type, args]
    return build_model(config, nc=nc)


def random_maps(branches: int, nc: int = 2, batch: int = 2, size: int = 64, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    level = [torch.randn(batch, 64 + nc, size // s, size // s, generator=generator) for s in (8, 16, 32)]
    return [[m.clone().requires_grad_(True) for m in level] for _ in range(branches)]


TARGETS = torch.tensor([[0, 1, 0.5, 0.5, 0.6, 0.4], [0, 0, 0.2, 0.3, 0.1, 0.2], [1, 1, 0.7, 0.6, 0.3, 0.5]])


@pytest.mark.parametrize("branches", [1, 2, 3])
def test_auxiliary_branches_get_quarter_gradients(branches):
    model = tiny_gelan(branches)
    outputs = random_maps(branches)  # identical maps in every branch
    loss, items = DetectionLoss(model)(outputs, TARGETS)
    loss.backward()
    main = [m.grad for m in outputs[-1]]
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in main)
    for aux in outputs[:-1]:
        for grad, main_grad in zip((m.grad for m in aux), main):
            assert torch.allclose(grad, 0.25 * main_grad, atol=1e-7)
    assert torch.isfinite(items).all() and (items > 0).all()


def test_no_boxes_in_batch():
    model = tiny_gelan(2)
    outputs = random_maps(2)
    loss, items = DetectionLoss(model)(outputs, torch.zeros(0, 6))
    loss.backward()
    assert items[0] == 0 and items[2] == 0 and items[1] > 0
    assert all(torch.isfinite(m.grad).all() for branch in outputs for m in branch)


def test_images_without_boxes_and_target_order():
    model = tiny_gelan(1)
    criterion = DetectionLoss(model)
    targets = TARGETS[[2, 0, 1]]  # rows of different images interleaved; image 2 of 3 has no boxes
    _, items = criterion(random_maps(1, batch=3), targets)
    _, sorted_items = criterion(random_maps(1, batch=3), TARGETS)
    assert torch.allclose(items, sorted_items)
    with pytest.raises(YOLOv9Error, match="image indices"):
        criterion(random_maps(1, batch=1), TARGETS)


def test_half_precision_maps_give_float32_loss():
    model = tiny_gelan(1)
    outputs = [[m.detach().half() for m in random_maps(1)[0]]]
    loss, items = DetectionLoss(model)(outputs, TARGETS)
    assert loss.dtype == torch.float32 and torch.isfinite(items).all()


def test_loss_terms_gradcheck():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 16, dtype=torch.float64, generator=generator, requires_grad=True)
    target = torch.rand(3, 4, dtype=torch.float64, generator=generator) * 14.98
    assert torch.autograd.gradcheck(lambda x: distribution_focal_loss(x, target), (logits,))
    class_logits = torch.randn(2, 5, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    scores = torch.rand(2, 5, 3, dtype=torch.float64, generator=generator)
    for gamma in (0.0, 1.5):
        assert torch.autograd.gradcheck(lambda x: class_loss(x, scores, 1.0, gamma), (class_logits,))


def test_distribution_focal_loss_minimum_is_at_the_target():
    # logits = log of the two-bin distribution around the target: the loss is the entropy of that distribution
    target = torch.tensor([[3.25, 0.0, 7.5, 14.99]])
    left = target.long()
    probs = torch.zeros(1, 4, 16)
    probs.scatter_(-1, left[..., None], (left + 1 - target)[..., None])
    probs.scatter_add_(-1, left[..., None] + 1, (target - left)[..., None])
    loss = distribution_focal_loss(probs.clamp(min=1e-12).log(), target)
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum(-1).mean(-1)
    assert torch.allclose(loss, entropy, atol=1e-5)
    assert torch.allclose((probs * torch.arange(16.0)).sum(-1), target, atol=1e-5)
