"""Configs as data: bundled model architectures (`models/*.yaml`), training recipes (`hyp/*.yaml`), and the
typed `Hyperparameters` they resolve into."""
from yolov9.cfg.files import HYP_DIR, MODELS_DIR, PathOrDict, is_model_config, load_model_config, read_yaml
from yolov9.cfg.hyp import Hyperparameters, load_hyp

__all__ = ["HYP_DIR", "MODELS_DIR", "Hyperparameters", "PathOrDict", "is_model_config", "load_hyp",
           "load_model_config", "read_yaml"]
