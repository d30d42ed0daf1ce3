"""What a training run remembers between epochs (and across a resume): the per-epoch results table and the best
fitness so far. Both are checkpointable (`state_dict` / `load_state_dict`)."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence


class History:
    """One row per finished epoch (column -> float), in `columns` order; the CSV logger writes it out."""

    def __init__(self, columns: Sequence[str]):
        self.columns = list(columns)
        self.rows: list[dict[str, float]] = []

    @property
    def last(self) -> Optional[dict[str, float]]:
        return self.rows[-1] if self.rows else None

    def append(self, row: Mapping[str, float]) -> None:
        self.rows.append({c: float(row[c]) for c in self.columns})

    def state_dict(self) -> dict:
        return {"columns": list(self.columns), "rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state: Mapping) -> None:
        self.columns = list(state["columns"])
        self.rows = [dict(r) for r in state["rows"]]


class BestFitness:
    """The best fitness seen and its epoch (-1: none yet); the first epoch always counts as the best so far."""

    def __init__(self) -> None:
        self.fitness, self.epoch = 0.0, -1

    def update(self, fitness: float, epoch: int) -> bool:
        """Record epoch `epoch`'s fitness; True when it is the new best (best.pt is then written)."""
        if fitness > self.fitness or self.epoch < 0:
            self.fitness, self.epoch = max(fitness, self.fitness), epoch
            return True
        return False

    def state_dict(self) -> dict:
        return {"fitness": self.fitness, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping) -> None:
        self.fitness, self.epoch = float(state["fitness"]), int(state["epoch"])
