"""The callbacks every training run registers by default (rank 0): the console summary, results.csv,
TensorBoard, the training plots and the `time` budget. Each reads the Trainer it is given (duck-typed:
`epoch`, `epochs`, `history`, `metrics`, `save_dir`, `opt`, `batch`, `batch_index`, `set_epochs`)."""
from __future__ import annotations

import csv
import io
import time
from typing import Any

from yolov9.io.atomic import atomic_write_bytes
from yolov9.plots.training import plot_labels, plot_results

BATCH_PLOTS = 3  # train_batch0..2.jpg of the first epoch


class TimeBudget:
    """Fit the run into `opt.time` minutes: after every epoch the number of epochs that still fit is measured
    (never more than the `epochs` bound) and the trainer re-plans its LR schedule and close-mosaic to end there."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.started, self.bound = 0.0, 0

    def on_train_start(self, trainer: Any) -> None:
        self.started, self.bound = time.time(), trainer.epochs

    def on_fit_epoch_end(self, trainer: Any) -> None:
        self.fit(trainer, trainer.epoch, time.time() - self.started)

    def fit(self, trainer: Any, epoch: int, elapsed: float) -> None:
        """Re-plan after `epoch` (0-based), `elapsed` seconds since this run (or resume) started."""
        per_epoch = elapsed / (epoch + 1 - trainer.start_epoch)
        fitting = epoch + 1 + int((self.seconds - elapsed) // per_epoch)
        epochs = min(max(fitting, epoch + 1), self.bound)
        if epochs != trainer.epochs:
            trainer.set_epochs(epochs)


class ConsoleLogger:
    """One line per epoch: time, mAP, validation loss, and the time the remaining epochs will take (ETA)."""

    def __init__(self) -> None:
        self.started = self.epoch_started = 0.0

    def on_train_start(self, trainer: Any) -> None:
        self.started = time.time()

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.epoch_started = time.time()

    def on_fit_epoch_end(self, trainer: Any) -> None:
        row, now = trainer.history.last, time.time()
        val_loss = " ".join(f"{row[f'val/{k}_loss']:.4g}" for k in trainer.loss_names)
        per_epoch = (now - self.started) / (trainer.epoch + 1 - trainer.start_epoch)
        eta = per_epoch * (trainer.epochs - trainer.epoch - 1) / 60
        masks = f" mask mAP50-95 {row['metrics/mask/mAP50-95']:.4f}" if "metrics/mask/mAP50-95" in row else ""
        print(f"epoch {trainer.epoch + 1}/{trainer.epochs} ({now - self.epoch_started:.1f}s, ETA {eta:.1f} min): "
              f"mAP50 {row['metrics/mAP50']:.4f} mAP50-95 {row['metrics/mAP50-95']:.4f}{masks} val loss {val_loss}")


class CSVLogger:
    """results.csv: the whole history rewritten atomically after every epoch (6 significant digits)."""

    def on_fit_epoch_end(self, trainer: Any) -> None:
        history = trainer.history
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=history.columns, lineterminator="\n")
        writer.writeheader()
        for row in history.rows:
            writer.writerow({c: f"{row[c]:.6g}" for c in history.columns})
        atomic_write_bytes(trainer.save_dir / "results.csv", buffer.getvalue().encode())


class TensorBoardLogger:
    """Every results.csv column as a TensorBoard scalar (when the `tensorboard` package is installed)."""

    def __init__(self) -> None:
        self.writer = None

    def on_train_start(self, trainer: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self.writer = SummaryWriter(str(trainer.save_dir))

    def on_fit_epoch_end(self, trainer: Any) -> None:
        if self.writer is not None:
            for key, value in trainer.history.last.items():
                self.writer.add_scalar(key, value, trainer.epoch)

    def on_train_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()


class TrainingPlots:
    """labels.png (label statistics), train_batch0-2.jpg (first batches with their boxes), results.png."""

    def on_train_start(self, trainer: Any) -> None:
        if trainer.start_epoch == 0:
            plot_labels(trainer.train_labels, trainer.names, trainer.save_dir / "labels.png")

    def on_train_batch_end(self, trainer: Any) -> None:
        if trainer.epoch == 0 and trainer.batch_index < BATCH_PLOTS:
            trainer.task.plot_batch(trainer.batch, trainer.save_dir / f"train_batch{trainer.batch_index}.jpg")

    def on_train_end(self, trainer: Any) -> None:
        if trainer.history.rows:
            plot_results(trainer.history.rows, trainer.save_dir / "results.png")
