"""Optimizer recipe: parameter groups, nominal-batch maths, warm-up and LR curves, EMA formula."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from yolov9 import build_model
from yolov9.cfg import load_hyp
from yolov9.engine.ema import ModelEMA
from _train_data import tiny_config
from yolov9.engine.optim import (apply_warmup, build_optimizer, lr_factor, nominal_accumulation, parameter_groups,
                                 scaled_weight_decay, warmup_iterations)


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(tiny_config(branches=2), nc=3)


@pytest.mark.slow
def test_groups_match_official_counts_for_yolov9_c(official_dir):
    """facts §4.3: yolov9-c has 253 biases, 255 decayed weights, 238 norm weights, in that group order.

    yolov9-c-mini has every row and module of yolov9-c (channels / 8), so the same counts.
    """
    model = build_model(official_dir / "yolov9-c-mini.yaml")
    optimizer = build_optimizer(model, "SGD", lr=0.01, momentum=0.937, weight_decay=5e-4)
    assert [len(g["params"]) for g in optimizer.param_groups] == [253, 255, 238]
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 5e-4, 0.0]
    assert all(g["nesterov"] and g["momentum"] == 0.937 for g in optimizer.param_groups)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_every_parameter_in_exactly_one_group_with_the_right_decay(name, tiny_model):
    model = tiny_model
    optimizer = build_optimizer(model, name, lr=0.01, momentum=0.9, weight_decay=1e-3)
    name_of = {id(p): n for n, p in model.named_parameters()}
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(name_of) and len(set(grouped)) == len(grouped)
    biases, decayed, norms = ([name_of[id(p)] for p in g["params"]] for g in optimizer.param_groups)
    assert all(n.endswith(".bias") for n in biases)
    assert all(n.endswith(".bn.weight") for n in norms)
    assert all(n.endswith(".weight") and ".bn." not in n for n in decayed)
    assert any(n.endswith("dfl.conv.weight") for n in decayed)  # official: the frozen DFL weight is listed too
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0, 1e-3, 0.0]


@pytest.mark.parametrize("batch, accumulate", [(1, 64), (8, 8), (16, 4), (24, 3), (32, 2), (64, 1), (256, 1)])
def test_nominal_batch_accumulation_and_decay_scaling(batch, accumulate):
    assert nominal_accumulation(batch) == accumulate
    assert scaled_weight_decay(5e-4, batch, accumulate) == pytest.approx(5e-4 * batch * accumulate / 64)


def test_accumulated_small_batches_give_the_nominal_batch_gradient():
    """Summed (x batch) losses over `accumulate` batches of 16 = one batch of 64: the recipe's accumulation."""
    torch.manual_seed(1)
    layer, x, y = nn.Linear(5, 1), torch.randn(64, 5), torch.randn(64, 1)
    accumulate = nominal_accumulation(16)
    for chunk in range(accumulate):
        xs, ys = x[chunk * 16:(chunk + 1) * 16], y[chunk * 16:(chunk + 1) * 16]
        (nn.functional.mse_loss(layer(xs), ys) * 16).backward()
    accumulated = layer.weight.grad.clone()
    layer.zero_grad()
    (nn.functional.mse_loss(layer(x), y) * 64).backward()
    torch.testing.assert_close(accumulated, layer.weight.grad)


@pytest.mark.parametrize("schedule, reference", [
    ("linear", lambda e, n, f: (1 - e / n) * (1 - f) + f),
    ("cosine", lambda e, n, f: 1 + (f - 1) * (1 - math.cos(math.pi * e / n)) / 2),
    ("flat-cosine", lambda e, n, f: 1.0 if e <= n // 2 else 1 + (f - 1) * (1 - math.cos(math.pi * (e - n // 2) / (n // 2))) / 2),
    ("fixed", lambda e, n, f: 1.0),
])
def test_lr_curves(schedule, reference):
    factor = lr_factor(schedule, 100, 0.01)
    for epoch in (0, 10, 50, 51, 75, 99, 100):
        assert factor(epoch) == pytest.approx(reference(epoch, 100, 0.01))
    if schedule != "fixed":
        assert factor(0) == pytest.approx(1.0) and factor(100) == pytest.approx(0.01)


def test_warmup_iterations():
    assert warmup_iterations(10, 3.0) == 100
    assert warmup_iterations(1000, 3.0) == 3000
    assert warmup_iterations(1000, 0.0) == -1


@pytest.mark.parametrize("iteration", [0, 1, 37, 150, 299, 300, 301, 1000])
def test_warmup_values_match_numpy_interp(iteration, tiny_model):
    hyp, batch, warmup = load_hyp(), 16, 300
    model = tiny_model
    optimizer = build_optimizer(model, "SGD", hyp.lr0, hyp.momentum, hyp.weight_decay)
    for g in optimizer.param_groups:
        g["initial_lr"] = hyp.lr0
    epoch_factor = lr_factor("linear", 10, hyp.lrf)(1)
    accumulate = apply_warmup(optimizer, iteration, warmup, epoch_factor, hyp, batch)
    xi = [0, warmup]
    assert accumulate == max(1, np.interp(iteration, xi, [1, 64 / batch]).round())
    target = hyp.lr0 * epoch_factor
    for j, group in enumerate(optimizer.param_groups):
        start = hyp.warmup_bias_lr if j == 0 else 0.0
        assert group["lr"] == pytest.approx(np.interp(iteration, xi, [start, target]))
        assert group["momentum"] == pytest.approx(np.interp(iteration, xi, [hyp.warmup_momentum, hyp.momentum]))


def test_ema_follows_the_official_formula_over_params_and_bn_buffers():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    ema = ModelEMA(model, decay=0.9999, tau=2000)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    for step in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model.train()(torch.randn(2, 3, 8, 8))  # moves BN running stats
        ema.update(model)
        d = 0.9999 * (1 - math.exp(-step / 2000))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                expected[k] = d * expected[k] + (1 - d) * v
    for k, v in ema.ema.state_dict().items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(v, expected[k], rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(v, torch.tensor(0))  # integer counters are not averaged
    assert ema.updates == 5 and not any(p.requires_grad for p in ema.ema.parameters())


@pytest.mark.parametrize("epochs, closed", [(1, 0), (4, 0), (15, 3), (25, 5), (50, 10), (74, 14), (75, 15),
                                            (500, 15)])
def test_close_mosaic_never_covers_more_than_a_fifth_of_the_run(epochs, closed):
    from yolov9.engine.train_options import TrainOptions

    options = TrainOptions(epochs=epochs)
    assert options.close_mosaic_epochs() == closed <= epochs / 5
    assert TrainOptions(epochs=epochs, close_mosaic=15).close_mosaic_epochs() == 15  # given: used as is


def test_auto_recipe_is_official_for_long_runs_and_short_run_below_100_epochs():
    from yolov9.engine.train_options import TrainOptions

    official = load_hyp("scratch-high")
    assert TrainOptions(epochs=100, batch=16).hyperparameters() == official
    assert TrainOptions(epochs=500, optimizer="SGD", hyp="scratch-high").hyperparameters() == official
    assert TrainOptions(epochs=15, optimizer="SGD", hyp="scratch-high").hyperparameters() == official
    short = TrainOptions(epochs=99, batch=16).hyperparameters()
    changed = {k for k, v in short.to_dict().items() if v != official.to_dict()[k]}
    assert changed == {"scale", "mixup", "copy_paste", "nbs"}
    assert (short.scale, short.mixup, short.copy_paste, short.nbs) == (0.5, 0.0, 0.0, 16)
    assert TrainOptions(epochs=15, batch=8, hyp_overrides={"mixup": 0.1}).hyperparameters().mixup == 0.1
    assert TrainOptions().optimizer_name == TrainOptions(optimizer="SGD").optimizer_name == "SGD"
    assert TrainOptions(optimizer="AdamW").optimizer_name == "AdamW"
