"""Shared test fixtures. Official reference files live outside the repo, in ../shared/fixtures/official."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("YOLOV9_FIXTURES", REPO.parent / "shared" / "fixtures"))
OFFICIAL_FIXTURES = FIXTURES / "official"
OFFICIAL_SEG_FIXTURES = FIXTURES / "official-seg"


def _fixture_folder(folder: Path) -> Path:
    """`folder`, or a skip with the reason in a user's clone without it; in CI (YOLOV9_REQUIRE_FIXTURES=1) a
    failure."""
    if not folder.is_dir():
        message = f"official fixtures not found at {folder} (set YOLOV9_FIXTURES to their parent folder)"
        if os.environ.get("YOLOV9_REQUIRE_FIXTURES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def official_dir() -> Path:
    """Folder of checkpoints and outputs produced by the official implementation (detection)."""
    return _fixture_folder(OFFICIAL_FIXTURES)


@pytest.fixture(scope="session")
def official_seg_dir() -> Path:
    """Folder of checkpoints and outputs of the official instance-segmentation models (see its README)."""
    return _fixture_folder(OFFICIAL_SEG_FIXTURES)


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_torch_thread():
    """One intra-op thread: on 2 shared cores OpenMP spin-waiting slows multi-threaded training steps badly,
    and single-threaded CPU runs are bitwise repeatable."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
