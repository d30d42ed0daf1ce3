"""The library version (one place; `yolov9.__version__` re-exports it)."""
__version__ = "0.2.0"
