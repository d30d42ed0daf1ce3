"""Every training option with its default (the official recipe); the CLI and the Python API share this list."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from yolov9.cfg.hyp import Hyperparameters, load_hyp
from yolov9.engine.recipe import AUTO, auto_hyp, close_mosaic_epochs, optimizer_name
from yolov9.errors import ConfigError


@dataclass
class TrainOptions:
    """Options of `train()`; hyperparameter names (lr0, mosaic, ...) are accepted too and go to `hyp_overrides`."""

    data: Optional[str] = None
    epochs: int = 100
    time: Optional[float] = None      # budget in minutes: epochs become an upper bound, the LR schedule fits it
    imgsz: int = 640
    batch: int = 16
    device: Optional[str] = None
    workers: int = 2
    hyp: Optional[Union[str, dict]] = AUTO  # auto: by run length (engine/recipe.py); a file, name or mapping
    hyp_overrides: dict = field(default_factory=dict)
    optimizer: str = AUTO             # auto (SGD) | SGD (Nesterov) | Adam | AdamW
    lr_schedule: str = "linear"       # linear | cosine | flat-cosine | fixed
    amp: bool = True                  # mixed precision on CUDA (never on CPU)
    close_mosaic: Optional[int] = None  # mosaic off for the last N epochs (None: min(15, 20% of epochs))
    freeze: Union[int, list] = 0      # first N layers, or a list of layer indices
    single_cls: bool = False
    overlap_mask: bool = True         # segmentation: one mask map per image (official default); False: per instance
    multi_scale: bool = False         # random image size in [0.5, 1.5] x imgsz per batch
    seed: int = 0
    deterministic: bool = True
    patience: int = 100               # epochs without fitness improvement before stopping
    save_period: int = -1             # also keep weights/epoch<N>.pt every N epochs
    project: str = "runs/train"
    name: str = "exp"
    exist_ok: bool = False
    resume: Union[bool, str] = False
    weights: Optional[str] = None     # starting weights (ours or official) copied by name and shape
    val: bool = True
    plots: bool = True
    sync_bn: bool = False
    cache: Optional[str] = None       # None | "ram"
    strict: bool = False              # any dataset problem (bad image, bad label row) is an error
    max_grad_norm: float = 10.0
    ema_decay: float = 0.9999
    ema_tau: float = 2000.0
    max_bad_steps: int = 20           # consecutive non-finite losses / gradients before giving up
    val_batch: Optional[int] = None   # default: 2 x batch
    verbose: bool = True
    mlflow: bool = False              # log to MLflow (also on when MLFLOW_TRACKING_URI is set and mlflow installed)
    wandb: bool = False               # log to W&B, offline unless configured (also on when WANDB_API_KEY or _MODE set)

    def __post_init__(self) -> None:
        """Refuse values no run can use, with the option's name (instead of a deep ZeroDivisionError)."""
        at_least = {"epochs": 1, "batch": 1, "imgsz": 32, "workers": 0, "close_mosaic": 0, "patience": 0,
                    "max_bad_steps": 1}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is None and name == "close_mosaic":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.val_batch is not None and self.val_batch < 1:
            raise ConfigError(f"val_batch must be >= 1, got {self.val_batch}")
        if self.time is not None and not self.time > 0:
            raise ConfigError(f"time (minutes) must be > 0, got {self.time}")

    @classmethod
    def from_kwargs(cls, **options: Any) -> "TrainOptions":
        """Options by name; hyperparameter names become overrides; unknown names are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        hyp_keys = set(Hyperparameters.names())
        values, overrides = {}, dict(options.pop("hyp_overrides", None) or {})
        for key, value in options.items():
            if key in known:
                values[key] = value
            elif key in hyp_keys:
                overrides[key] = value
            else:
                raise ConfigError(f"unknown training option {key!r}; options: {', '.join(sorted(known))}; "
                                  f"hyperparameters: {', '.join(sorted(hyp_keys))}")
        return cls(**values, hyp_overrides=overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hyperparameters(self) -> Hyperparameters:
        """The run's hyperparameters, resolved once: the recipe (`hyp`: auto, file, bundled name or mapping), then
        `hyp_overrides`."""
        if self.hyp in (None, AUTO):
            name, recipe = auto_hyp(self.epochs, self.batch)
            return load_hyp(name, **{**recipe, **self.hyp_overrides})
        return load_hyp(self.hyp, **self.hyp_overrides)

    @property
    def optimizer_name(self) -> str:
        return optimizer_name(self.optimizer)

    def close_mosaic_epochs(self) -> int:
        """Epochs at the end without mosaic (follows `epochs` when a time budget re-plans the run)."""
        return close_mosaic_epochs(self.close_mosaic, self.epochs)
