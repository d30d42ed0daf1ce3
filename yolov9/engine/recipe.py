"""The `auto` training recipe (the default) and the close-mosaic rule.

- Long runs (`epochs >= SHORT_RUN_EPOCHS`): the official recipe, scratch-high.yaml, SGD (Nesterov), nominal batch
  64, mosaic off for the last 15 epochs: exactly what `--optimizer SGD --hyp scratch-high` gives.
- Short runs: short-run.yaml (scratch-high without the zoom / mixup / copy-paste of 500-epoch runs) with an
  optimizer step on every batch (`nbs` = batch); SGD, the official optimizer.
- close-mosaic, unless given: `min(15, int(CLOSE_MOSAIC_FRACTION * epochs))` epochs, so that it never covers more
  than a fifth of a run (the official 15 from 75 epochs on; 15 epochs: 3, 25: 5, 50: 10).
"""
from __future__ import annotations

from typing import Any, Optional

AUTO = "auto"
SHORT_RUN_EPOCHS = 100
OFFICIAL_CLOSE_MOSAIC = 15
CLOSE_MOSAIC_FRACTION = 0.2
OFFICIAL_OPTIMIZER = "SGD"
SHORT_RUN_HYP = "short-run"


def is_short_run(epochs: int) -> bool:
    return epochs < SHORT_RUN_EPOCHS


def close_mosaic_epochs(close_mosaic: Optional[int], epochs: int) -> int:
    """Epochs at the end of the run without mosaic: the option when given, else the rule above."""
    if close_mosaic is not None:
        return close_mosaic
    return min(OFFICIAL_CLOSE_MOSAIC, int(CLOSE_MOSAIC_FRACTION * epochs))


def optimizer_name(optimizer: str) -> str:
    """The optimizer an option names (`auto`: SGD, in long and short runs alike)."""
    return OFFICIAL_OPTIMIZER if optimizer == AUTO else optimizer


def auto_hyp(epochs: int, batch: int) -> tuple[Optional[str], dict[str, Any]]:
    """(hyperparameter file, overrides) of the `auto` recipe: (None = scratch-high, {}) for a long run."""
    if is_short_run(epochs):
        return SHORT_RUN_HYP, {"nbs": batch}
    return None, {}


def describe(hyp: Any, optimizer: str, epochs: int) -> str:
    """The recipe a run uses, for its first line (e.g. 'recipe auto: short run (< 100 epochs), short-run.yaml')."""
    if hyp in (None, AUTO):
        kind = (f"short run (< {SHORT_RUN_EPOCHS} epochs), {SHORT_RUN_HYP}.yaml with a step per batch"
                if is_short_run(epochs) else "the official scratch-high.yaml")
        return f"recipe auto: {kind}, {optimizer_name(optimizer)}"
    return f"hyp {hyp}, {optimizer_name(optimizer)}"
