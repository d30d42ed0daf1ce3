"""Data pipeline: dataset configs, label scan + validation + cache, transforms, loaders."""
from yolov9.data.config import load_data_config
from yolov9.data.loaders import build_train_loader, build_val_loader

__all__ = ["load_data_config", "build_train_loader", "build_val_loader"]
