"""One trainer for GELAN and YOLOv9 (any number of head branches): the official recipe, EMA, exact resume, DDP.

`train(model, data=..., **options)` runs epochs of: warm-up / accumulate / clip / step / EMA per batch, LR step,
validation of the EMA model (mAP and per-branch val loss), atomic checkpoints, results.csv and plots.
"""
from __future__ import annotations

import math
import random
import time
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn
from tqdm import tqdm

from yolov9.cfg import load_hyp
from yolov9.data import build_train_loader, build_val_loader, load_data_config
from yolov9.engine import distributed as dist_utils
from yolov9.engine.ema import ModelEMA
from yolov9.engine.optim import (apply_warmup, build_optimizer, lr_factor, nominal_accumulation, scaled_weight_decay,
                                 warmup_iterations)
from yolov9.engine.plots import plot_labels, plot_results, save_batch_plot
from yolov9.engine.run_dir import ResultsTable, make_run_dir, write_yaml
from yolov9.engine.train_options import TrainOptions
from yolov9.engine.train_state import (copy_file_atomic, find_last_checkpoint, restore_rng_state, rng_state,
                                       seed_everything, select_device)
from yolov9.errors import ConfigError, YOLOv9Error
from yolov9.io.checkpoint import read_checkpoint, save_checkpoint, strip_optimizer_state
from yolov9.loss import DetectionLoss
from yolov9.models import DetectionModel, build_model

LOSS_ITEMS = ("box", "cls", "dfl")
BATCH_PLOTS = 3


def train(model: Optional[DetectionModel] = None, data: Optional[str] = None, **options: Any) -> dict:
    """Train `model` on the dataset YAML `data`; returns {"model": best EMA model, "save_dir", "metrics", ...}.

    `resume=True` (latest last.pt under `project`) or `resume="path/last.pt"` continues an interrupted run
    exactly; model and data then come from the checkpoint.
    """
    return Trainer(model, TrainOptions.from_kwargs(data=data, **options)).run()


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
    """Holds the state of one run; `run()` trains and returns the results dict."""

    def __init__(self, model: Optional[DetectionModel], opt: TrainOptions):
        self.checkpoint: Optional[dict] = None
        if opt.resume:
            path = find_last_checkpoint(opt.project) if opt.resume is True else Path(opt.resume)
            self.checkpoint = read_checkpoint(path)
            saved = dict(self.checkpoint["train_args"])
            saved.update(resume=str(path), device=opt.device if opt.device is not None else saved.get("device"))
            opt = TrainOptions(**saved)
            model = build_model(self.checkpoint["config"], names=self.checkpoint["names"])
            model.load_state_dict(self.checkpoint["model"])
            self.save_dir = path.parent.parent
        if model is None or opt.data is None:
            raise ConfigError("train() needs a model and data=<dataset YAML> (or resume=<last.pt>)")
        self.opt = opt
        self.device = select_device(opt.device)
        self.context = dist_utils.init_distributed(self.device)
        self.device = dist_utils.local_device(self.device, self.context)
        self.main = self.context.is_main
        seed_everything(opt.seed + 1 + self.context.rank, opt.deterministic)
        self.hyp = load_hyp(self.checkpoint["hyp"]) if self.checkpoint else load_hyp(opt.hyp, **opt.hyp_overrides)
        self.data = load_data_config(opt.data)
        names = ["item"] if opt.single_cls else list(self.data["names"])
        self.model = adapt_to_classes(model, names, opt.seed).to(self.device)
        self.model.hyp = self.hyp
        if opt.weights and not self.checkpoint:
            from yolov9.io.transfer import load_pretrained

            load_pretrained(self.model, opt.weights, verbose=self.main)
        freeze_layers(self.model, opt.freeze)
        if not self.checkpoint:
            self.save_dir = make_run_dir(opt.project, opt.name, opt.exist_ok) if self.main else Path(opt.project)
        self.weights_dir = self.save_dir / "weights"

    def _setup(self) -> None:
        opt, hyp, ctx = self.opt, self.hyp, self.context
        if opt.time and ctx.world_size > 1:
            raise ConfigError("time= (a training budget) is for single-process runs; use epochs= under torchrun")
        if opt.batch % ctx.world_size:
            raise ConfigError(f"batch {opt.batch} is not a multiple of the {ctx.world_size} processes")
        self.batch = opt.batch // ctx.world_size
        self.accumulate = nominal_accumulation(opt.batch, hyp["nbs"])
        weight_decay = scaled_weight_decay(hyp["weight_decay"], opt.batch, self.accumulate, hyp["nbs"])
        self.optimizer = build_optimizer(self.model, opt.optimizer, hyp["lr0"], hyp["momentum"], weight_decay)
        self.lf = lr_factor(opt.lr_schedule, opt.epochs, hyp["lrf"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lf)
        self.use_amp = opt.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.ema = ModelEMA(self.model, opt.ema_decay, opt.ema_tau) if self.main else None
        self.criterion = DetectionLoss(self.model, hyp)
        self.train_model = dist_utils.wrap_model(self.model, self.device, ctx, opt.sync_bn)
        self.loader = build_train_loader(self.data, opt.imgsz, self.batch, hyp, opt.workers, opt.seed, ctx.rank,
                                         ctx.world_size, opt.cache, opt.single_cls)
        self.mosaic_enabled = self.loader.dataset.mosaic
        self.validator = self._make_validator() if self.main and opt.val else None
        self.start_epoch, self.best_fitness, self.best_epoch, self.last_opt_step = 0, 0.0, -1, -1
        self.bad_steps = 0
        columns = (["epoch"] + [f"train/{k}_loss" for k in LOSS_ITEMS]
                   + [f"metrics/{k}" for k in ("precision", "recall", "mAP50", "mAP50-95", "fitness")]
                   + [f"val/{k}_loss" for k in LOSS_ITEMS]
                   + [f"val/aux{b}_{k}_loss" for b in range(self.model.branches - 1) for k in LOSS_ITEMS]
                   + [f"lr/pg{j}" for j in range(3)])
        self.results = ResultsTable(self.save_dir / "results.csv", columns)
        if self.checkpoint:
            self._restore(self.checkpoint)
        self.tensorboard = self._tensorboard() if self.main else None

    def _make_validator(self, plots: bool = False, verbose: bool = False):
        from yolov9.eval.validator import Validator

        opt = self.opt
        if not hasattr(self, "val_loader"):
            self.val_loader = build_val_loader(self.data, imgsz=opt.imgsz, batch=opt.val_batch or self.batch * 2,
                                               workers=opt.workers, stride=max(int(self.model.stride.max()), 32),
                                               single_cls=opt.single_cls)
        return Validator(self.val_loader, self.model.names, criterion=self.criterion, plots=plots,
                         save_dir=self.save_dir, device=self.device, single_cls=opt.single_cls, verbose=verbose)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.save_dir))

    def _restore(self, ckpt: dict) -> None:
        """Continue exactly where the checkpoint's epoch ended."""
        extra = ckpt["extra"]
        if ckpt["epoch"] + 1 >= self.opt.epochs:
            raise YOLOv9Error(f"{self.opt.resume}: this run finished all {self.opt.epochs} epochs; nothing to resume")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        self.scaler.load_state_dict(extra["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(extra["ema"], ckpt["ema"])
        self.start_epoch, self.best_fitness = ckpt["epoch"] + 1, float(ckpt["best_fitness"] or 0.0)
        self.best_epoch, self.last_opt_step = int(extra["best_epoch"]), int(extra["last_opt_step"])
        self.results.load(self.start_epoch)
        self.rng_to_restore = extra["rng"]
        if self.main:
            print(f"resuming {self.save_dir} from epoch {self.start_epoch + 1}/{self.opt.epochs}")

    def run(self) -> dict:
        self._setup()
        opt = self.opt
        if self.main:
            write_yaml(self.save_dir / "args.yaml", opt.to_dict())
            write_yaml(self.save_dir / "hyp.yaml", self.hyp)
            if opt.plots and not self.checkpoint:
                plot_labels(self.loader.dataset.labels, self.model.names, self.save_dir / "labels.png")
            print(f"training {self.model.yaml.get('yaml_file', 'model')} ({self.model.branches} head branch(es)) "
                  f"on {self.device} for {opt.epochs} epochs, batch {opt.batch} x accumulate {self.accumulate}; "
                  f"results in {self.save_dir}")
        if self.checkpoint:
            restore_rng_state(self.rng_to_restore)
        metrics: dict = {}
        stop = False
        run_started = time.time()
        self.max_epochs = opt.epochs
        for epoch in range(self.start_epoch, opt.epochs):
            if epoch >= opt.epochs:  # shortened by the time budget
                break
            started = time.time()
            train_items = self.train_epoch(epoch)
            self.epoch_lrs = [g["lr"] for g in self.optimizer.param_groups]
            if self.main:
                metrics = self.validate() if self.validator else {}
            if opt.time:
                self.fit_time_budget(epoch, time.time() - run_started)
            self.scheduler.step()
            if self.main:
                stop = self.end_epoch(epoch, train_items, metrics, time.time() - started)
            stop = dist_utils.broadcast_flag(stop, self.context)
            if stop:
                break
        result = self.finish(metrics) if self.main else {"model": None, "save_dir": self.save_dir}
        dist_utils.shutdown(self.context)
        return result

    def fit_time_budget(self, epoch: int, elapsed: float) -> None:
        """Fit the run to the epochs that fit in `time` minutes (never more than `epochs`), keeping the full LR
        schedule and close-mosaic relative to the new end. Epoch time (training + validation) is measured so far."""
        per_epoch = elapsed / (epoch + 1 - self.start_epoch)
        fitting = epoch + 1 + int((self.opt.time * 60 - elapsed) // per_epoch)
        epochs = min(max(fitting, epoch + 1), self.max_epochs)
        if epochs != self.opt.epochs:
            self.opt.epochs = epochs
            self.lf = lr_factor(self.opt.lr_schedule, self.opt.epochs, self.hyp["lrf"])
            self.scheduler.lr_lambdas = [self.lf] * len(self.optimizer.param_groups)

    def train_epoch(self, epoch: int) -> torch.Tensor:
        """One pass over the training set; returns the mean (box, cls, dfl) loss items."""
        opt, hyp = self.opt, self.hyp
        dataset = self.loader.dataset
        dataset.mosaic = self.mosaic_enabled and not (opt.close_mosaic > 0 and epoch >= opt.epochs - opt.close_mosaic)
        dataset.set_epoch(epoch)
        self.train_model.train()
        nb = len(self.loader)
        warmup = warmup_iterations(nb, hyp["warmup_epochs"])
        mean_items = torch.zeros(3, device=self.device)
        accumulate = self.accumulate
        self.optimizer.zero_grad()
        bar = tqdm(self.loader, total=nb, disable=not (self.main and opt.verbose), leave=True,
                   bar_format="{l_bar}{bar:10}{r_bar}")
        for i, batch in enumerate(bar):
            ni = i + nb * epoch
            images = batch["images"].to(self.device, non_blocking=True).float() / 255
            targets = batch["targets"].to(self.device)
            if ni <= warmup:
                accumulate = apply_warmup(self.optimizer, ni, warmup, self.lf(epoch), hyp, opt.batch)
            if opt.multi_scale:
                images = self.random_scale(images)
            with torch.autocast(device_type=self.device.type, enabled=self.use_amp):
                outputs = self.train_model(images)
                loss, items = self.criterion(outputs, targets)
            if not torch.isfinite(loss):
                self.bad_step(f"loss is {loss.item()}", epoch, i)
                continue
            self.scaler.scale(loss * self.context.world_size).backward()
            if ni - self.last_opt_step >= accumulate:
                self.optimizer_step(epoch, i)
                self.last_opt_step = ni
            mean_items = (mean_items * i + items) / (i + 1)
            if self.main and opt.verbose:
                bar.set_description(self.progress(epoch, mean_items, len(targets), images.shape[-1]))
            if self.main and opt.plots and epoch == 0 and i < BATCH_PLOTS:
                save_batch_plot(batch["images"], batch["targets"], self.save_dir / f"train_batch{i}.jpg")
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
        losses = " ".join(f"{name} {v:.4g}" for name, v in zip(LOSS_ITEMS, items.tolist()))
        return f"{epoch + 1}/{self.opt.epochs} {memory} {losses} inst {instances} size {size}"

    def validate(self) -> dict:
        return self.validator(self.ema.ema)

    def end_epoch(self, epoch: int, items: torch.Tensor, metrics: dict, seconds: float) -> bool:
        """Log, checkpoint (last / best / periodic) and decide early stopping; rank 0 only."""
        fitness = float(metrics.get("fitness", 0.0))
        if fitness > self.best_fitness or self.best_epoch < 0:
            self.best_fitness, self.best_epoch = max(fitness, self.best_fitness), epoch
        row = {"epoch": epoch, **{f"train/{k}_loss": v for k, v in zip(LOSS_ITEMS, items.tolist())}}
        row.update({f"metrics/{k}": float(metrics.get(k, 0.0))
                    for k in ("precision", "recall", "mAP50", "mAP50-95", "fitness")})
        val_loss = torch.as_tensor(metrics.get("val_loss", torch.zeros(self.model.branches, 3))).reshape(-1, 3)
        row.update({f"val/{k}_loss": float(v) for k, v in zip(LOSS_ITEMS, val_loss[-1])})
        row.update({f"val/aux{b}_{k}_loss": float(v) for b in range(len(val_loss) - 1)
                    for k, v in zip(LOSS_ITEMS, val_loss[b])})
        row.update({f"lr/pg{j}": lr for j, lr in enumerate(self.epoch_lrs)})
        self.results.append(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                self.tensorboard.add_scalar(key, value, epoch)
        self.save(epoch)
        if self.opt.verbose:
            print(f"epoch {epoch + 1}/{self.opt.epochs} ({seconds:.1f}s): mAP50 {row['metrics/mAP50']:.4f} "
                  f"mAP50-95 {row['metrics/mAP50-95']:.4f} val loss " + " ".join(f"{v:.4g}" for v in val_loss[-1].tolist()))
        stop = self.opt.patience > 0 and epoch - self.best_epoch >= self.opt.patience
        if stop:
            print(f"early stopping: no improvement for {self.opt.patience} epochs; best epoch {self.best_epoch + 1}")
        return stop

    def save(self, epoch: int) -> None:
        """last.pt every epoch (atomic), best.pt when fitness improved, epoch<N>.pt every save_period."""
        extra = {"scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "ema": self.ema.state_dict(), "rng": rng_state(), "best_epoch": self.best_epoch,
                 "last_opt_step": self.last_opt_step}
        last = self.weights_dir / "last.pt"
        save_checkpoint(last, self.model, ema=self.ema, optimizer=self.optimizer, epoch=epoch,
                        best_fitness=self.best_fitness, train_args=self.opt.to_dict(), extra=extra)
        if self.best_epoch == epoch:
            copy_file_atomic(last, self.weights_dir / "best.pt")
        if self.opt.save_period > 0 and (epoch + 1) % self.opt.save_period == 0:
            copy_file_atomic(last, self.weights_dir / f"epoch{epoch + 1}.pt")

    def finish(self, metrics: dict) -> dict:
        """Strip last.pt and best.pt (EMA only, fp16), plot, print the summary; returns the best model."""
        from yolov9.io.checkpoint import load

        for name in ("last.pt", "best.pt"):
            if (self.weights_dir / name).is_file():
                strip_optimizer_state(self.weights_dir / name)
        if self.opt.plots and self.results.rows:
            plot_results(self.results.rows, self.save_dir / "results.png")
        if self.tensorboard is not None:
            self.tensorboard.close()
        best_path = self.weights_dir / "best.pt"
        best = load(best_path if best_path.is_file() else self.weights_dir / "last.pt")
        if self.opt.val:
            print(f"validating {best_path}")
            metrics = self._make_validator(plots=self.opt.plots, verbose=self.opt.verbose)(best.to(self.device))
            best.cpu()
        if self.opt.verbose:
            print(f"results: {self.save_dir}")
        return {"model": best, "save_dir": self.save_dir, "metrics": metrics, "best_fitness": self.best_fitness,
                "best_epoch": self.best_epoch, "results": list(self.results.rows)}
