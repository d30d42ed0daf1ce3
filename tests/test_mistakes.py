"""Mistakes a new user makes, each answered with one clear line (exit status 2) or handled, and nothing the user
had is changed: every file that existed before a command is byte-identical after it.

The cases are data (MISTAKES); docs/mistakes.md is generated from them (`python tests/test_mistakes.py` rewrites
it, and a test checks it is current). The CLI cases run through `yolov9.cli.main` in ONE subprocess (a fresh
interpreter, as a user's shell would start), the cases that need their own process (interrupt, missing extra,
the clone's folder on the path) in their own.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from _train_data import tiny_config, write_dataset

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "mistakes.md"


@dataclass(frozen=True)
class Mistake:
    item: str          # the hardening issue's item number
    mistake: str       # what the user did
    argv: tuple        # CLI arguments; {w} is the workspace folder
    code: int          # expected exit status
    says: str          # regex the output (stdout + stderr) must match
    answer: str        # what yolov9 does, for the docs table


MISTAKES = (
    Mistake("1", "`val` a checkpoint trained at 64 px without `--imgsz`",
            ("val", "{w}/m64.pt", "--data", "{w}/data.yaml", "--workers", "0", "--project", "{w}/runs/val"), 0,
            r"imgsz 64: the size .*m64\.pt was trained", "runs at the checkpoint's training size and prints it"),
    Mistake("1", "`detect` with a checkpoint trained at 64 px without `--imgsz`",
            ("detect", "--weights", "{w}/m64.pt", "--source", "{w}/images", "--project", "{w}/runs/detect"), 0,
            r"imgsz 64: the size", "runs at the checkpoint's training size and prints it"),
    Mistake("2", "`export --nms` of a model whose sample input gives no detection above `--conf`",
            ("export", "--weights", "{w}/m64.pt", "--imgsz", "64", "--nms", "--file", "{w}/nms.onnx"), 0,
            r"compared [1-9]\d* detections", "checks the in-graph NMS on detections it really finds and says how many"),
    Mistake("3", "a typo in a data.yaml key (`trian:`)", ("data", "check", "{w}/typo.yaml"), 2,
            r"typo\.yaml: unknown key 'trian' \(did you mean 'train'\?\)", "names the key and the closest known one"),
    Mistake("4", "`export --file` naming the input checkpoint",
            ("export", "--weights", "{w}/m64.pt", "--imgsz", "64", "--file", "{w}/m64.pt"), 2,
            r"m64\.pt: the output would replace the input", "refuses"),
    Mistake("4", "`export` without `--file`", ("export", "--weights", "{w}/m64.pt", "--imgsz", "64"), 0,
            r"exported .*m64-64\.onnx", "writes a name that says the size and variant (`m64-64.onnx`)"),
    Mistake("4", "`export --dynamic` of the same checkpoint",
            ("export", "--weights", "{w}/m64.pt", "--imgsz", "64", "--dynamic"), 0, r"exported .*m64-64-dynamic\.onnx",
            "a distinct name (`-dynamic`, `-nms`, `-fp16`, `-int8`): the plain export is kept"),
    Mistake("4", "`export` again onto an existing file", ("export", "--weights", "{w}/m64.pt", "--imgsz", "64"), 2,
            r"m64-64\.onnx: already exists; .*--force", "refuses without `--force`"),
    Mistake("4", "`val` twice with `--save-json`",
            ("val", "{w}/m64.pt", "--data", "{w}/data.yaml", "--workers", "0", "--save-json", "--project",
             "{w}/runs/val"), 0, r"Saved \d+ predictions to .*runs/val/exp2/predictions\.json",
            "numbered run folders (exp, exp2, ...): nothing is overwritten"),
    Mistake("4", "`convert` onto an existing file", ("convert", "{w}/m64.pt", "{w}/keep.txt"), 2,
            r"keep\.txt: already exists", "refuses without `--force`"),
    Mistake("4", "`data convert --out` into a non-empty folder",
            ("data", "convert", "{w}/coco.json", "--out", "{w}/images"), 2, r"images: already exists",
            "refuses without `--force`"),
    Mistake("4", "`strip a.pt a.pt`", ("strip", "{w}/m64.pt", "{w}/m64.pt"), 2,
            r"the output would replace the input", "refuses"),
    Mistake("5", "files written atomically under umask 022",
            ("convert", "{w}/m64.pt", "{w}/converted.pt"), 0, r"wrote .*converted\.pt",
            "get the umask's permissions (0644), like a normal write"),
    Mistake("6", "`train` on a dataset that fails to load",
            ("train", "--model", "gelan-t", "--data", "{w}/empty.yaml", "--project", "{w}/runs/failed"), 2,
            r"empty split", "one line; no empty run folder is left behind"),
    Mistake("6", "`detect` on a source that does not exist",
            ("detect", "--weights", "{w}/m64.pt", "--source", "{w}/nothing", "--project", "{w}/runs/nodetect"), 2,
            r"source .*nothing.* is not an image", "one line; no empty run folder is left behind"),
    Mistake("7", "`train --imgsz 40` (not a multiple of the stride)",
            ("train", "--model", "{w}/tiny.yaml", "--data", "{w}/data.yaml", "--imgsz", "40", "--epochs", "1",
             "--batch", "4", "--workers", "0", "--no-val", "--no-plots", "--quiet", "--project", "{w}/runs/train"),
            0, r"imgsz 40 is not a multiple of the model stride 32; training at 64", "rounds up with a warning"),
    Mistake("7", "`detect --imgsz 50`",
            ("detect", "--weights", "{w}/m64.pt", "--source", "{w}/images", "--imgsz", "50", "--nosave"), 0,
            r"--imgsz 50 is not a multiple of the model stride 32; using 64", "rounds up with a warning"),
    Mistake("8", "`train --batch 0`", ("train", "--data", "{w}/data.yaml", "--batch", "0"), 2,
            r"batch must be an integer >= 1, got 0", "one line"),
    Mistake("8", "`train --epochs 0`", ("train", "--data", "{w}/data.yaml", "--epochs", "0"), 2,
            r"epochs must be an integer >= 1, got 0", "one line"),
    Mistake("8", "`train --batch -2`", ("train", "--data", "{w}/data.yaml", "--batch", "-2"), 2,
            r"batch must be an integer >= 1, got -2", "one line"),
    Mistake("8", "`val --batch 0`", ("val", "{w}/m64.pt", "--data", "{w}/data.yaml", "--batch", "0"), 2,
            r"argument --batch: must be >= 1, got 0", "one line"),
    Mistake("8", "`detect --batch 0`", ("detect", "--weights", "{w}/m64.pt", "--source", "{w}/images",
                                        "--batch", "0"), 2, r"argument --batch: must be >= 1, got 0", "one line"),
    Mistake("9", "`val --device cuda` without a GPU",
            ("val", "{w}/m64.pt", "--data", "{w}/data.yaml", "--device", "cuda"), 2,
            r"device 'cuda' requested but CUDA is not available", "one line"),
    Mistake("9", "`detect --device cuda` without a GPU (also for an .onnx model)",
            ("detect", "--weights", "{w}/m64-64.onnx", "--source", "{w}/images", "--device", "cuda"), 2,
            r"device 'cuda' requested but CUDA is not available", "one line (ONNX Runtime without its CUDA "
            "provider warns that it runs on the CPU)"),
    Mistake("10", "`train --model x.onnx`", ("train", "--model", "{w}/m64-64.onnx", "--data", "{w}/data.yaml"), 2,
            r"m64-64\.onnx: an exported onnx model can predict and validate, but cannot be trained", "one line"),
    Mistake("10", "`export --weights x.onnx`", ("export", "--weights", "{w}/m64-64.onnx"), 2,
            r"an exported onnx model .* cannot be exported again", "one line"),
    Mistake("10", "`info random.pt`", ("info", "{w}/random.pt"), 2,
            r"random\.pt: not a PyTorch checkpoint", "one line"),
    Mistake("10", "`info best.pt`", ("info", "{w}/m64.pt"), 0, r"summary: detect model", "prints the layer table"),
    Mistake("12", "one unreadable image in a `detect` folder",
            ("detect", "--weights", "{w}/m64.pt", "--source", "{w}/mixed/images", "--project", "{w}/runs/mixed"), 0,
            r"(?=[\s\S]*broken\.jpg: not a readable image; skipped)[\s\S]*1 unreadable image\(s\) skipped",
            "skips it with a warning and a count"),
    Mistake("12", "`data check` with a corrupt image", ("data", "check", "{w}/mixed.yaml"), 0,
            r"^(?!.*BytesIO)(?![\s\S]*broken\.jpg[\s\S]*broken\.jpg)[\s\S]*broken\.jpg: error: ",
            "reports it once, with a readable reason"),
    Mistake("14", "`train --strict` (as README says)",
            ("train", "--model", "{w}/tiny.yaml", "--data", "{w}/mixed.yaml", "--strict", "--project",
             "{w}/runs/strict"), 2, r"problem\(s\) in strict mode", "exists: any dataset problem is an error"),
)

SEPARATE = (
    Mistake("11", "`export` with only `pip install -e .` (no onnx)",
            ("export", "--weights", "{w}/m64.pt", "--imgsz", "64", "--file", "{w}/noonnx.onnx"), 2,
            r'pip install "yolov9\[export\]"', "names the extra to install"),
    Mistake("11", "`detect --weights best.onnx` without onnxruntime",
            ("detect", "--weights", "{w}/m64-64.onnx", "--source", "{w}/images"), 2,
            r'pip install "yolov9\[export\]"', "names the extra to install"),
    Mistake("13", "Ctrl-C during training", (), 130, r"interrupted; resume with: yolov9 train --resume .*last\.pt",
            "says how to resume, with the exact command"),
    Mistake("15", "running Python in the folder that contains the clone", (), 0, r"/yolov9/__init__\.py$",
            "imports the package, not the clone's folder: the editable install (`make install`, README) puts the "
            "clone on the path, so Python finds the real package before the folder"),
)


def render_doc() -> str:
    rows = "\n".join(f"| {m.item} | {m.mistake} | {m.answer} |" for m in MISTAKES + SEPARATE)
    return ("# Mistakes covered\n\nGenerated from `tests/test_mistakes.py` (run `python tests/test_mistakes.py` after "
            "changing its cases). Every case is a test: the answer is asserted, and every file that existed before "
            "is byte-identical afterwards.\n\n| # | mistake | what yolov9 does |\n|---|---|---|\n" + rows + "\n")


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def workspace(root: Path) -> Path:
    """Tiny dataset, a checkpoint trained (nominally) at 64 px, broken files and configs for the cases."""
    import yaml

    from yolov9 import build_model
    from yolov9.io.checkpoint import save_checkpoint

    data = write_dataset(root, n_images=4, size=64)
    yaml.safe_dump(tiny_config(1), open(root / "tiny.yaml", "w"))
    model = build_model(tiny_config(1), names=["red", "green"])
    save_checkpoint(root / "m64.pt", model, train_args={"imgsz": 64})
    (root / "typo.yaml").write_text(data.read_text().replace("train:", "trian:"))
    (root / "empty.yaml").write_text(f"path: {root}\ntrain: nothing_here.txt\nval: images\nnames: [red, green]\n")
    (root / "nothing_here.txt").write_text("")
    (root / "keep.txt").write_text("keep me\n")
    (root / "random.pt").write_bytes(os.urandom(512))
    (root / "coco.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    mixed = root / "mixed" / "images"
    mixed.mkdir(parents=True)
    for name in ("im0.png", "im1.png"):
        (mixed / name).write_bytes((root / "images" / name).read_bytes())
    (mixed / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "mixed.yaml").write_text(f"path: {root / 'mixed'}\ntrain: images\nval: images\nnames: [red, green]\n")
    return root


DRIVER = """
import contextlib, hashlib, io, json, os, pathlib, sys
os.umask(0o022)
from yolov9.cli import main

def snapshot():
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in pathlib.Path('.').rglob('*') if p.is_file()}

out = []
for argv in json.loads(sys.argv[1]):
    before = snapshot()
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    after = snapshot()
    changed = [p for p, digest in before.items() if after.get(p) != digest]
    out.append({"code": code, "output": stdout.getvalue() + stderr.getvalue(), "changed": changed})
print("RESULTS" + json.dumps(out))
"""


def run_driver(argvs: list, cwd: Path, extra_env: dict = None) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argvs)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert "RESULTS" in done.stdout, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULTS", 1)[1])


def fill(argv: tuple, root: Path) -> list[str]:
    return [a.replace("{w}", str(root)) for a in argv]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every CLI case in order, in one fresh interpreter that snapshots the workspace around each case."""
    root = workspace(tmp_path_factory.mktemp("mistakes"))
    return root, run_driver([fill(m.argv, root) for m in MISTAKES], root)


@pytest.mark.parametrize("index", range(len(MISTAKES)), ids=[f"{m.item}: {m.mistake}" for m in MISTAKES])
def test_mistake(outcomes, index):
    root, results = outcomes
    mistake, result = MISTAKES[index], results[index]
    assert result["code"] == mistake.code, result["output"][-2000:]
    assert re.search(mistake.says, result["output"], re.S | re.M), result["output"][-2000:]
    assert not result["changed"], f"pre-existing files changed: {result['changed']}"


def test_no_empty_run_folders_and_umask(outcomes):
    root, _ = outcomes
    assert not (root / "runs" / "failed").exists() and not (root / "runs" / "nodetect").exists()
    assert (root / "converted.pt").stat().st_mode & 0o777 == 0o644


def test_train_help_explains_every_option():
    from yolov9.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    missing = [a.option_strings[-1] for a in train._actions if a.option_strings and not a.help]
    assert not missing, missing


def test_missing_extra_names_it(tmp_path):
    """onnx / onnxruntime made unimportable (as after a plain `pip install -e .`)."""
    root = workspace(tmp_path)
    (root / "block").mkdir()
    (root / "block" / "sitecustomize.py").write_text(
        "import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('onnx', 'onnxruntime'):\n"
        "            raise ImportError(f'No module named {name!r}')\nsys.meta_path.insert(0, Block())\n")
    from yolov9.export.exporter import export

    export(root / "m64.pt", imgsz=64, file=root / "m64-64.onnx", verbose=False)
    before = snapshot(root)
    results = run_driver([fill(m.argv, root) for m in SEPARATE[:2]], root, {"PYTHONPATH": str(root / "block")})
    for mistake, result in zip(SEPARATE[:2], results):
        assert result["code"] == mistake.code and re.search(mistake.says, result["output"]), result["output"]
    assert all(snapshot(root).get(p) == digest for p, digest in before.items())


def test_interrupt_says_how_to_resume(tmp_path):
    root = workspace(tmp_path)
    argv = ["train", "--model", str(root / "tiny.yaml"), "--data", str(root / "data.yaml"), "--imgsz", "64",
            "--epochs", "50", "--batch", "4", "--workers", "0", "--no-val", "--no-plots", "--quiet", "--project",
            str(root / "runs")]
    # SIG_DFL in the child: a shell's background job inherits SIGINT ignored, and Python then never raises
    # KeyboardInterrupt (the run would finish all its epochs)
    process = subprocess.Popen([sys.executable, "-m", "yolov9.cli", *argv], cwd=root, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    last = root / "runs" / "exp" / "weights" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    mistake = SEPARATE[2]
    assert process.returncode == mistake.code and re.search(mistake.says, stderr), stderr[-2000:]
    assert str(last) in stderr


def test_the_folder_containing_the_clone_imports_the_package(tmp_path):
    """The clone's folder named `yolov9` in the working folder no longer shadows the package (a namespace package
    that has none of its names)."""
    (tmp_path / "yolov9").symlink_to(REPO)
    done = subprocess.run([sys.executable, "-c", "import yolov9; print(yolov9.__file__); yolov9.YOLOv9"],
                          cwd=tmp_path, capture_output=True, text=True)
    mistake = SEPARATE[3]
    assert done.returncode == mistake.code and re.search(mistake.says, done.stdout.strip()), done.stderr


def test_docs_table_is_generated_from_these_cases():
    assert DOC.read_text() == render_doc(), "run `python tests/test_mistakes.py` to regenerate docs/mistakes.md"


if __name__ == "__main__":
    DOC.write_text(render_doc())
    print(f"wrote {DOC}")
