"""The `time` budget (a default callback): epochs are re-planned from the measured epoch time and the trainer's LR
schedule follows."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from yolov9.callbacks.training import TimeBudget
from yolov9.cfg.hyp import load_hyp
from yolov9.engine.optim import lr_factor
from yolov9.engine.trainer import Trainer


def budget_trainer(minutes: float, max_epochs: int) -> tuple[Trainer, TimeBudget]:
    trainer = Trainer.__new__(Trainer)
    trainer.opt = SimpleNamespace(time=minutes, epochs=max_epochs, lr_schedule="linear")
    trainer.start_epoch, trainer.hyp = 0, load_hyp(lrf=0.01)
    trainer.optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lr_factor("linear", max_epochs, 0.01))
    budget = TimeBudget(minutes)
    budget.on_train_start(trainer)
    return trainer, budget


@pytest.mark.parametrize("elapsed_after_first,expected", [(60.0, 10), (30.0, 20), (1.0, 50)])
def test_epochs_fit_the_budget_and_never_exceed_the_bound(elapsed_after_first, expected):
    trainer, budget = budget_trainer(minutes=10, max_epochs=50)
    budget.fit(trainer, 0, elapsed_after_first)
    assert trainer.epochs == expected
    assert trainer.scheduler.lr_lambdas[0](expected) == pytest.approx(0.01)  # schedule ends at lrf at the new end


def test_budget_grows_again_when_epochs_get_faster():
    trainer, budget = budget_trainer(minutes=10, max_epochs=50)
    budget.fit(trainer, 0, 120.0)  # a slow first epoch (start-up): 5 epochs fit
    assert trainer.epochs == 5
    budget.fit(trainer, 3, 180.0)  # 45 s per epoch since: 4 + 9 more
    assert trainer.epochs == 13


def test_budget_spent_stops_after_this_epoch():
    trainer, budget = budget_trainer(minutes=1, max_epochs=50)
    budget.fit(trainer, 2, 90.0)
    assert trainer.epochs == 3
