"""One trainer for every task and any number of head branches: the official recipe, EMA, exact resume, DDP.

`train(model, data=..., **options)` runs epochs of: warm-up / accumulate / clip / step / EMA per batch, LR step,
validation of the EMA model (metrics and per-branch val loss), atomic checkpoints. Logging, plots and the time
budget are callbacks (yolov9.callbacks); the task (yolov9.tasks) supplies the loss, loader options and metrics.
"""
from __future__ import annotations

import math
import random
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from tqdm import tqdm

from yolov9.callbacks import Callbacks
from yolov9.callbacks.training import ConsoleLogger, CSVLogger, TensorBoardLogger, TimeBudget, TrainingPlots
from yolov9.cfg.hyp import as_hyperparameters
from yolov9.data import build_train_loader, build_val_loader, load_data_config
from yolov9.engine import distributed as dist_utils
from yolov9.engine.ema import ModelEMA
from yolov9.engine.history import BestFitness, History
from yolov9.engine.optim import (apply_warmup, build_optimizer, lr_factor, nominal_accumulation, scaled_weight_decay,
                                 warmup_iterations)
from yolov9.engine.recipe import describe
from yolov9.engine.run_dir import increment_path, write_yaml
from yolov9.engine.train_options import TrainOptions
from yolov9.engine.train_state import GlobalRNG, copy_file_atomic, find_last_checkpoint, seed_everything, select_device
from yolov9.engine.validator import Validator
from yolov9.errors import ConfigError, YOLOv9Error, warn
from yolov9.io.checkpoint import read_checkpoint, save_checkpoint, strip_optimizer_state
from yolov9.models import DetectionModel, build_model
from yolov9.tasks import task_of


def train(model: Optional[DetectionModel] = None, data: Optional[str] = None,
          callbacks: Optional[Callbacks] = None, **options: Any) -> dict:
    """Train `model` on the dataset YAML `data`; returns {"model": best EMA model, "save_dir", "metrics", ...}.

    `resume=True` (latest last.pt under `project`) or `resume="path/last.pt"` continues an interrupted run
    exactly; model and data then come from the checkpoint.
    """
    return Trainer(model, TrainOptions.from_kwargs(data=data, **options), callbacks).run()


def adapt_to_classes(model: DetectionModel, names: list[str], seed: int = 0) -> DetectionModel:
    """The model with the dataset's classes: rebuilt for another class count (new tensors drawn with `seed`),
    keeping every tensor that fits."""
    if model.nc == len(names):
        model.names = list(names)
        return model
    adapted = build_model(model.yaml, names=names, seed=seed)
    own, old = adapted.state_dict(), model.state_dict()
    fitting = {k: v for k, v in old.items() if k in own and v.shape == own[k].shape}
    adapted.load_state_dict(fitting, strict=False)
    print(f"model nc {model.nc} -> {len(names)} (dataset classes); kept {len(fitting)}/{len(own)} tensors")
    return adapted


def freeze_layers(model: nn.Module, freeze: Any) -> list[str]:
    """Stop gradients of layers `range(freeze)` (int) or the listed layer indices; returns the frozen names."""
    layers = range(freeze) if isinstance(freeze, int) else [int(i) for i in freeze]
    prefixes = tuple(f"model.{i}." for i in layers)
    frozen = [name for name, p in model.named_parameters() if name.startswith(prefixes)]
    for name, p in model.named_parameters():
        if name.startswith(prefixes):
            p.requires_grad_(False)
    return frozen


class Trainer:
    """The state of one run; `run()` trains and returns the results dict.

    Checkpointable parts (composed by `state_dict` / `load_state_dict`, saved in last.pt): the optimizer, the
    LR scheduler, the AMP scaler, the EMA, the global RNG, the history (results table) and the best fitness.
    Callbacks receive the trainer; what they may read is documented in docs/train.md.
    """

    def __init__(self, model: Optional[DetectionModel], opt: TrainOptions, callbacks: Optional[Callbacks] = None):
        self.checkpoint: Optional[dict] = None
        if opt.resume:
            path = find_last_checkpoint(opt.project) if opt.resume is True else Path(opt.resume)
            self.checkpoint = read_checkpoint(path)
            saved = dict(self.checkpoint["train_args"])
            if self.checkpoint["epoch"] is not None and self.checkpoint["epoch"] + 1 >= saved.get("epochs", 0):
                raise YOLOv9Error(f"{path}: this run finished all {saved.get('epochs')} epochs; nothing to resume")
            if not self.checkpoint.get("trainer") or self.checkpoint.get("optimizer") is None:
                raise YOLOv9Error(f"{path}: has no optimizer / trainer state (a released or stripped file, or one "
                                  "from an older yolov9); start a new run from it with --weights")
            saved.update(resume=str(path), device=opt.device if opt.device is not None else saved.get("device"))
            opt = TrainOptions(**saved)
            model = build_model(self.checkpoint["config"], names=self.checkpoint["names"])
            model.load_state_dict(self.checkpoint["model"])
        if model is None or opt.data is None:
            raise ConfigError("train() needs a model and data=<dataset YAML> (or resume=<last.pt>)")
        self.opt = opt
        self.device = select_device(opt.device)
        self.context = dist_utils.init_distributed(self.device)
        self.device = dist_utils.local_device(self.device, self.context)
        self.main = self.context.is_main
        if opt.time and self.context.world_size > 1:
            raise ConfigError("time= (a training budget) is for single-process runs; use epochs= under torchrun")
        if opt.batch % self.context.world_size:
            raise ConfigError(f"batch {opt.batch} is not a multiple of the {self.context.world_size} processes")
        seed_everything(opt.seed + 1 + self.context.rank, opt.deterministic)
        self.hyp = as_hyperparameters(self.checkpoint["hyp"]) if self.checkpoint else opt.hyperparameters()
        self.data = load_data_config(opt.data)
        self.names = ["item"] if opt.single_cls else list(self.data["names"])
        self.model = adapt_to_classes(model, self.names, opt.seed).to(self.device)
        self.model.hyp = self.hyp.to_dict()
        if opt.weights and not self.checkpoint:
            from yolov9.io.transfer import load_pretrained

            load_pretrained(self.model, opt.weights, verbose=self.main)
        freeze_layers(self.model, opt.freeze)
        self.task = task_of(self.model)
        stride = max(int(self.model.stride.max()), 32)
        if opt.imgsz % stride:
            rounded = math.ceil(opt.imgsz / stride) * stride
            warn(f"imgsz {opt.imgsz} is not a multiple of the model stride {stride}; training at {rounded}")
            opt.imgsz = rounded
        if self.checkpoint:
            self.save_dir = Path(opt.resume).parent.parent
        else:
            self.save_dir = increment_path(Path(opt.project) / opt.name, opt.exist_ok) if self.main else Path(opt.project)
        self.weights_dir = self.save_dir / "weights"

        self.batch_size = opt.batch // self.context.world_size
        self.accumulate = nominal_accumulation(opt.batch, self.hyp.nbs)
        weight_decay = scaled_weight_decay(self.hyp.weight_decay, opt.batch, self.accumulate, self.hyp.nbs)
        self.optimizer = build_optimizer(self.model, opt.optimizer_name, self.hyp.lr0, self.hyp.momentum, weight_decay)
        self.lf = lr_factor(opt.lr_schedule, opt.epochs, self.hyp.lrf)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lf)
        self.use_amp = opt.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.ema = ModelEMA(self.model, opt.ema_decay, opt.ema_tau) if self.main else None
        self.criterion = self.task.loss(self.model, self.hyp, opt)
        self.loss_names = tuple(self.criterion.item_names)
        self.train_model = dist_utils.wrap_model(self.model, self.device, self.context, opt.sync_bn)
        self.loader = build_train_loader(self.data, opt.imgsz, self.batch_size, self.hyp, opt.workers, opt.seed,
                                         self.context.rank, self.context.world_size, opt.cache, opt.single_cls,
                                         strict=opt.strict, **self.task.loader_options(opt))
        self.train_labels = self.loader.dataset.labels
        self.mosaic_enabled = self.loader.dataset.mosaic
        self.callbacks = self.default_callbacks()
        for event, functions in (callbacks.handlers if callbacks else {}).items():
            for fn in functions:
                self.callbacks.add(event, fn)
        self.val_loader = None
        self.validator = self.make_validator() if self.main and opt.val else None
        self.history = History(self.history_columns())
        self.best = BestFitness()
        self.rng = GlobalRNG()
        self.start_epoch, self.epoch, self.last_opt_step, self.bad_steps = 0, 0, -1, 0
        self.batch: dict = {}
        self.batch_index = 0
        self.train_items = torch.zeros(len(self.loss_names))
        self.lrs: list[float] = []
        self.metrics: dict[str, Any] = {}
        if self.checkpoint:
            self.resume_from(self.checkpoint)

    @property
    def epochs(self) -> int:
        return self.opt.epochs

    def set_epochs(self, epochs: int) -> None:
        """End the run after `epochs` epochs (the time budget's re-plan): the LR schedule and close-mosaic follow."""
        self.opt.epochs = epochs
        self.lf = lr_factor(self.opt.lr_schedule, epochs, self.hyp.lrf)
        self.scheduler.lr_lambdas = [self.lf] * len(self.optimizer.param_groups)

    def default_callbacks(self) -> Callbacks:
        """Rank 0: console summary, time budget, results.csv, TensorBoard, plots (as the options ask), then the
        experiment trackers (MLflow, W&B) that the options or the environment turn on."""
        from yolov9.callbacks.trackers import experiment_loggers

        callbacks = Callbacks()
        if not self.main:
            return callbacks
        loggers = [TimeBudget(self.opt.time)] if self.opt.time else []
        loggers += [ConsoleLogger()] if self.opt.verbose else []
        loggers += [CSVLogger(), TensorBoardLogger()] + ([TrainingPlots()] if self.opt.plots else [])
        loggers += experiment_loggers(self.opt)  # last: results.csv and results.png exist when they run
        for logger in loggers:
            callbacks.add_object(logger)
        return callbacks

    def history_columns(self) -> list[str]:
        names = self.loss_names
        return (["epoch"] + [f"train/{k}_loss" for k in names] + [f"metrics/{k}" for k in self.task.metric_keys]
                + [f"val/{k}_loss" for k in names]
                + [f"val/aux{b}_{k}_loss" for b in range(self.model.branches - 1) for k in names]
                + [f"lr/pg{j}" for j in range(len(self.optimizer.param_groups))])

    def make_validator(self, plots: bool = False, verbose: bool = False) -> Validator:
        opt = self.opt
        if self.val_loader is None:
            self.val_loader = build_val_loader(self.data, imgsz=opt.imgsz, batch=opt.val_batch or self.batch_size * 2,
                                               workers=opt.workers, stride=max(int(self.model.stride.max()), 32),
                                               single_cls=opt.single_cls, strict=opt.strict,
                                               **self.task.loader_options(opt))
        return Validator(self.val_loader, self.task, self.names, self.data, criterion=self.criterion, plots=plots,
                         save_dir=self.save_dir, device=self.device, single_cls=opt.single_cls, verbose=verbose,
                         callbacks=self.callbacks)

    def state_dict(self) -> dict:
        """Everything besides the weights and the optimizer that an exact resume needs."""
        return {"scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict(), "rng": self.rng.state_dict(), "history": self.history.state_dict(),
                "best": self.best.state_dict(), "last_opt_step": self.last_opt_step}

    def load_state_dict(self, state: dict, ema_weights: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"], ema_weights)
        self.history.load_state_dict(state["history"])
        self.best.load_state_dict(state["best"])
        self.last_opt_step = int(state["last_opt_step"])

    def resume_from(self, ckpt: dict) -> None:
        """Continue exactly where the checkpoint's epoch ended (the RNG is restored when the run starts)."""
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.load_state_dict(ckpt["trainer"], ckpt["ema"])
        self.start_epoch = ckpt["epoch"] + 1
        if self.main:
            print(f"resuming {self.save_dir} from epoch {self.start_epoch + 1}/{self.opt.epochs}")

    def run(self) -> dict:
        """Train; a run that fails or is interrupted before its first checkpoint leaves no folder behind, and an
        interrupted one says how to resume (KeyboardInterrupt carrying the command)."""
        fresh = self.main and not self.checkpoint and not self.save_dir.exists()
        try:
            return self.fit()
        except BaseException as e:
            last = self.weights_dir / "last.pt"
            if fresh and not last.is_file():
                shutil.rmtree(self.save_dir, ignore_errors=True)
            if isinstance(e, KeyboardInterrupt) and last.is_file():
                raise KeyboardInterrupt(f"resume with: yolov9 train --resume {last}") from None
            raise

    def fit(self) -> dict:
        opt = self.opt
        if self.main:
            self.weights_dir.mkdir(parents=True, exist_ok=True)
            write_yaml(self.save_dir / "args.yaml", opt.to_dict())
            write_yaml(self.save_dir / "hyp.yaml", self.hyp.to_dict())
            print(f"training {self.model.yaml.get('yaml_file', 'model')} ({self.model.branches} head branch(es)) "
                  f"on {self.device} for {opt.epochs} epochs, batch {opt.batch} x accumulate {self.accumulate} "
                  f"({describe(opt.hyp, opt.optimizer, opt.epochs)}); "
                  f"results in {self.save_dir}")
        if self.checkpoint:
            self.rng.load_state_dict(self.checkpoint["trainer"]["rng"])
        self.callbacks.run("on_train_start", self)
        stop = False
        epoch = self.start_epoch
        while epoch < self.epochs and not stop:  # the time budget may move the end while training
            self.epoch = epoch
            self.callbacks.run("on_train_epoch_start", self)
            self.train_items = self.train_epoch(epoch)
            self.lrs = [g["lr"] for g in self.optimizer.param_groups]
            self.callbacks.run("on_train_epoch_end", self)
            if self.main:
                self.metrics = self.validator(self.ema.ema) if self.validator else {}
                self.record(epoch)
                self.callbacks.run("on_fit_epoch_end", self)
            self.scheduler.step()
            if self.main:
                self.save(epoch)
                stop = self.should_stop(epoch)
            stop = dist_utils.broadcast_flag(stop, self.context)
            epoch += 1
        result = self.finish() if self.main else {"model": None, "save_dir": self.save_dir}
        dist_utils.shutdown(self.context)
        return result

    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over the training set; returns the mean loss items."""
        opt, hyp = self.opt, self.hyp
        dataset = self.loader.dataset
        closed = opt.close_mosaic_epochs()
        dataset.mosaic = self.mosaic_enabled and not (closed > 0 and epoch >= opt.epochs - closed)
        dataset.set_epoch(epoch)
        self.train_model.train()
        nb = len(self.loader)
        warmup = warmup_iterations(nb, hyp.warmup_epochs)
        mean_items = torch.zeros(len(self.loss_names), device=self.device)
        accumulate = self.accumulate
        self.optimizer.zero_grad()
        bar = tqdm(self.loader, total=nb, disable=not (self.main and opt.verbose), leave=True,
                   bar_format="{l_bar}{bar:10}{r_bar}")
        for self.batch_index, self.batch in enumerate(bar):
            i, ni = self.batch_index, self.batch_index + nb * epoch
            images = self.batch["images"].to(self.device, non_blocking=True).float() / 255
            if ni <= warmup:
                accumulate = apply_warmup(self.optimizer, ni, warmup, self.lf(epoch), hyp, opt.batch)
            if opt.multi_scale:
                images = self.random_scale(images)
            with torch.autocast(device_type=self.device.type, enabled=self.use_amp):
                outputs = self.train_model(images)
                loss_inputs = [a.to(self.device) for a in self.task.loss_arguments(self.batch)]
                loss, items = self.criterion(outputs, *loss_inputs)
            if not torch.isfinite(loss):
                self.bad_step(f"loss is {loss.item()}", epoch, i)
                continue
            self.scaler.scale(loss * self.context.world_size).backward()
            if ni - self.last_opt_step >= accumulate:
                self.optimizer_step(epoch, i)
                self.last_opt_step = ni
            mean_items = (mean_items * i + items) / (i + 1)
            if self.main and opt.verbose:
                bar.set_description(self.progress(epoch, mean_items, len(loss_inputs[0]), images.shape[-1]))
            self.callbacks.run("on_train_batch_end", self)
        return mean_items

    def optimizer_step(self, epoch: int, i: int) -> None:
        """Unscale, clip the gradient norm, step, update the EMA; a non-finite gradient skips the step."""
        self.scaler.unscale_(self.optimizer)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.opt.max_grad_norm)
        if not self.use_amp and not torch.isfinite(norm):
            self.optimizer.zero_grad()
            self.bad_step(f"gradient norm is {norm.item()}", epoch, i)
            return
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad()
        self.bad_steps = 0
        if self.ema is not None:
            self.ema.update(self.model)

    def bad_step(self, reason: str, epoch: int, i: int) -> None:
        """Skip a non-finite step with a warning; too many in a row stop training with advice."""
        self.optimizer.zero_grad()
        self.bad_steps += 1
        warnings.warn(f"epoch {epoch + 1} batch {i}: {reason}; step skipped", RuntimeWarning, stacklevel=2)
        if self.bad_steps >= self.opt.max_bad_steps:
            raise YOLOv9Error(f"training diverged: {self.bad_steps} consecutive non-finite steps (last: {reason}, "
                              f"epoch {epoch + 1}, batch {i}). Try a lower lr0, --no-amp, or check the labels; "
                              f"resume from {self.weights_dir / 'last.pt'}")

    def random_scale(self, images: torch.Tensor) -> torch.Tensor:
        """Multi-scale: resize the batch to a random multiple of the max stride in [0.5, 1.5] x imgsz."""
        stride = int(self.model.stride.max())
        size = random.randrange(int(self.opt.imgsz * 0.5), int(self.opt.imgsz * 1.5) + stride) // stride * stride
        scale = size / max(images.shape[2:])
        if scale == 1:
            return images
        shape = [math.ceil(x * scale / stride) * stride for x in images.shape[2:]]
        return nn.functional.interpolate(images, size=shape, mode="bilinear", align_corners=False)

    def progress(self, epoch: int, items: torch.Tensor, instances: int, size: int) -> str:
        memory = f"{torch.cuda.memory_reserved() / 1e9:.3g}G" if self.device.type == "cuda" else "cpu"
        losses = " ".join(f"{name} {v:.4g}" for name, v in zip(self.loss_names, items.tolist()))
        return f"{epoch + 1}/{self.opt.epochs} {memory} {losses} inst {instances} size {size}"

    def record(self, epoch: int) -> None:
        """This epoch's row of the history (losses, metrics, per-branch val loss, lrs) and the best fitness."""
        metrics, names = self.metrics, self.loss_names
        self.best.update(float(metrics.get("fitness", 0.0)), epoch)
        row = {"epoch": epoch, **{f"train/{k}_loss": v for k, v in zip(names, self.train_items.tolist())}}
        row.update({f"metrics/{k}": float(metrics.get(k, 0.0)) for k in self.task.metric_keys})
        val_loss = torch.as_tensor(metrics.get("val_loss", torch.zeros(self.model.branches, len(names))))
        val_loss = val_loss.reshape(-1, len(names))
        row.update({f"val/{k}_loss": float(v) for k, v in zip(names, val_loss[-1])})
        row.update({f"val/aux{b}_{k}_loss": float(v) for b in range(len(val_loss) - 1)
                    for k, v in zip(names, val_loss[b])})
        row.update({f"lr/pg{j}": lr for j, lr in enumerate(self.lrs)})
        self.history.append(row)

    def should_stop(self, epoch: int) -> bool:
        stop = self.opt.patience > 0 and epoch - self.best.epoch >= self.opt.patience
        if stop:
            print(f"early stopping: no improvement for {self.opt.patience} epochs; best epoch {self.best.epoch + 1}")
        return stop

    def save(self, epoch: int) -> None:
        """last.pt every epoch (atomic), best.pt when fitness improved, epoch<N>.pt every save_period."""
        last = self.weights_dir / "last.pt"
        save_checkpoint(last, self.model, ema=self.ema, optimizer=self.optimizer, epoch=epoch,
                        best_fitness=self.best.fitness, train_args=self.opt.to_dict(), trainer=self.state_dict())
        if self.best.epoch == epoch:
            copy_file_atomic(last, self.weights_dir / "best.pt")
        if self.opt.save_period > 0 and (epoch + 1) % self.opt.save_period == 0:
            copy_file_atomic(last, self.weights_dir / f"epoch{epoch + 1}.pt")
        self.callbacks.run("on_model_save", self)

    def finish(self) -> dict:
        """Strip last.pt and best.pt (EMA only, fp16), validate best.pt, fire on_train_end; returns the best model."""
        from yolov9.io.checkpoint import load

        for name in ("last.pt", "best.pt"):
            if (self.weights_dir / name).is_file():
                strip_optimizer_state(self.weights_dir / name)
        best_path = self.weights_dir / "best.pt"
        best = load(best_path if best_path.is_file() else self.weights_dir / "last.pt")
        if self.opt.val:
            print(f"validating {best_path}")
            self.metrics = self.make_validator(plots=self.opt.plots, verbose=self.opt.verbose)(best.to(self.device))
            best.cpu()
        self.callbacks.run("on_train_end", self)
        if self.opt.verbose:
            print(f"results: {self.save_dir}")
        return {"model": best, "save_dir": self.save_dir, "metrics": self.metrics, "best_fitness": self.best.fitness,
                "best_epoch": self.best.epoch, "results": list(self.history.rows)}
