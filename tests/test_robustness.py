"""What a user's machine does to files: a full disk while saving (a real size-limited tmpfs in a private mount
namespace), a 30000x30000 PNG (refused from its header, without the memory to decode it), and corrupt or
truncated model files (one line naming the file)."""
from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest
import torch

from yolov9.cli import main
from yolov9.io.checkpoint import save_checkpoint
from yolov9.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def private_mounts() -> list[str]:
    """`unshare -rm` (own user and mount namespace: tmpfs without root) when this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rm", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rm"]
    pytest.skip("unshare -rm is not permitted here: no private mount namespace for a size-limited tmpfs")


def checkpoint_bytes(config: str) -> int:
    buffer = io.BytesIO()
    torch.save(build_model(config, nc=1).state_dict(), buffer)
    return buffer.tell()


FULL_DISK_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from yolov9.errors import YOLOv9Error
    from yolov9.io.checkpoint import save_checkpoint
    from yolov9.models import build_model

    folder = Path(sys.argv[1])
    last = folder / "weights" / "last.pt"
    save_checkpoint(last, build_model("gelan-t", nc=1), epoch=0)
    before = last.read_bytes()
    try:
        save_checkpoint(last, build_model("gelan-s", nc=1), epoch=1)
        message = None
    except YOLOv9Error as e:
        message = str(e)
    print(json.dumps({"message": message, "intact": last.read_bytes() == before,
                      "files": sorted(p.name for p in last.parent.iterdir())}))
""")


def test_full_disk_keeps_the_previous_checkpoint_and_names_file_and_space(tmp_path):
    """A tmpfs that holds one gelan-t checkpoint but not a gelan-s one: the second save fails with one error naming
    last.pt, what was written and what is free; the first last.pt is byte-identical; no temp file is left."""
    small, large = checkpoint_bytes("gelan-t"), checkpoint_bytes("gelan-s")
    assert large > 2 * small
    size_kib = (small + large // 2) // 1024
    mount = tmp_path / "disk"
    mount.mkdir()
    script = tmp_path / "child.py"
    script.write_text(FULL_DISK_CHILD)
    shell = f'mount -t tmpfs -o size={size_kib}k tmpfs "$1" && exec "$2" "$3" "$1"'
    done = subprocess.run([*private_mounts(), "sh", "-c", shell, "sh", str(mount), sys.executable, str(script)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    message = result["message"]
    assert message is not None, "the save into a full tmpfs did not fail"
    assert message.startswith(f"{mount}/weights/last.pt: no space left on the device")
    assert "MiB written before it failed" in message and "MiB free in" in message
    assert "previous last.pt, if any, is intact" in message
    assert result["intact"] and result["files"] == ["last.pt"]


def huge_png(path: Path, side: int = 30000) -> None:
    """A real, valid 30000x30000 grayscale PNG (900 MB of pixels, about 1 MB on disk), written row by row."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row, parts = zlib.compressobj(1), b"\0" * (side + 1), []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))


PEAK_MEMORY_CHILD = textwrap.dedent("""
    import re, sys
    from pathlib import Path
    from yolov9.data.config import image_problem
    from yolov9.engine.sources import Source
    problem = image_problem(sys.argv[1])
    source = Source(sys.argv[1])
    frames = list(source)
    print(problem)
    peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
    print(len(frames), len(source.skipped), peak_kib // 1024)  # VmHWM: this process since exec, not the parent's
""")


def test_a_30000_pixel_square_png_is_refused_before_decoding(tmp_path):
    """The file is valid (Pillow would decode it into 900 MB); we read only its header: the image is skipped with
    the reason, and the process never holds the pixels."""
    image = tmp_path / "huge.png"
    huge_png(image)
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY_CHILD, str(image)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    problem, counts = done.stdout.strip().splitlines()[-2:]
    assert "pixels" in problem and "MAX_IMAGE_PIXELS" in problem and problem.endswith("refused before decoding")
    frames, skipped, peak_mib = map(int, counts.split())
    assert (frames, skipped) == (0, 1)
    assert peak_mib < 900, f"peak memory {peak_mib} MiB: the image was decoded"
    assert f"{image}: {problem}; skipped" in done.stderr


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint, an ONNX file and an OpenVINO IR of one tiny model, each then truncated or garbled."""
    folder = tmp_path_factory.mktemp("corrupt")
    model = build_model("gelan-t", nc=1)
    checkpoint = save_checkpoint(folder / "cut.pt", model)
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    files = {"checkpoint": checkpoint}
    pytest.importorskip("onnx")
    from yolov9.export.exporter import export

    onnx_file = Path(export(model, imgsz=64, file=folder / "cut.onnx", verbose=False))
    onnx_file.write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    files["onnx"] = onnx_file
    if _installed("openvino"):
        ir = Path(export(model, "openvino", imgsz=64, file=folder / "cut_openvino_model", verbose=False))
        xml = next(ir.glob("*.xml"))
        xml.write_text(xml.read_text()[: len(xml.read_text()) // 2])
        files["openvino"] = ir
    return files


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("kind", ["checkpoint", "onnx", "openvino"])
def test_corrupt_model_files_give_one_line_naming_them(kind, model_files, tmp_path, capsys):
    if kind not in model_files:
        pytest.skip(f"{kind} runtime not installed")
    image = ROOT / "datasets" / "trees" / "images" / "val"
    code = main(["detect", "--weights", str(model_files[kind]), "--source", str(next(image.iterdir())),
                 "--project", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert str(model_files[kind]) in err[0] or model_files[kind].name in err[0], err[0]
