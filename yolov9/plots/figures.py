"""The one matplotlib set-up (headless Agg backend, imported on first use) and the atomic PNG save."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

from yolov9.io.atomic import atomic_write_bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Union[str, Path], dpi: int = 120) -> Path:
    """Write `fig` as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
