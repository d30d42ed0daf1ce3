"""MLflow and W&B loggers with the real packages, offline: one 2-epoch tiny training run (`yolov9 train --mlflow
--wandb`) in a child process cut off from the network, then what was logged is read back with each package's own
reader (MLflow's client on the local store; `wandb leet inspect` on the offline run) and compared with
results.csv, hyp.yaml and the weight files. A run without the flags logs nothing and imports neither package."""
from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _train_data import tiny_config, write_dataset
from yolov9.callbacks.trackers import experiment_loggers
from yolov9.engine.train_options import TrainOptions
from yolov9.errors import YOLOv9Error

pytestmark = pytest.mark.skipif(not (importlib.util.find_spec("mlflow") and importlib.util.find_spec("wandb")),
                                reason="the loggers extra (pip install 'yolov9[loggers]') is not installed")

TRACKER_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_API_KEY", "WANDB_MODE", "WANDB_DIR",
                     "WANDB_PROJECT", "WANDB_BASE_URL")
# MLflow turns its usage telemetry off by itself under these; the child must behave as on a user's machine
TEST_MARKERS = ("PYTEST_CURRENT_TEST", "CI", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")

# Run in the child: records every attempt to reach another host (name look-up or an internet socket) made from
# Python until it exits; sets up a trainer without the flags (its loggers, and which tracker packages that imported),
# then runs `yolov9 train --mlflow --wandb`.
CHILD = r"""
import atexit, json, socket, sys
attempts, result = [], {}
atexit.register(lambda: print("RESULT " + json.dumps({"attempts": attempts, **result})))  # last: after the packages'
def audit(event, args):
    if event == "socket.getaddrinfo" or (event == "socket.connect" and args[0].family != socket.AF_UNIX):
        attempts.append(f"{event} {args[0] if event == 'socket.getaddrinfo' else args[1]}")
sys.addaudithook(audit)
import torch
torch.set_num_threads(1)
from yolov9.cli import main
from yolov9.engine.trainer import Trainer
from yolov9.engine.train_options import TrainOptions
from yolov9.models import build_model
model, plain, argv = json.loads(sys.argv[1])
trainer = Trainer(build_model(model), TrainOptions.from_kwargs(**plain))
loggers = sorted({type(fn.__self__).__name__ for fns in trainer.callbacks.handlers.values() for fn in fns})
imported = sorted(m for m in ("mlflow", "wandb") if m in sys.modules)
result.update(plain_loggers=loggers, plain_imported=imported, exit_code=main(argv))
"""


def network_cut_off() -> list[str]:
    """`unshare -rn` (a new network namespace with only loopback) when this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("loggers")
    data = write_dataset(root / "squares", n_images=8, size=96)
    model = root / "tiny.yaml"
    model.write_text(yaml.safe_dump(tiny_config(2)))
    argv = ["train", "--model", str(model), "--data", str(data), "--epochs", "2", "--imgsz", "64", "--batch", "4",
            "--workers", "0", "--quiet", "--project", str(root / "runs"), "--mlflow", "--wandb"]
    plain = dict(data=str(data), imgsz=64, batch=4, workers=0, verbose=False, project=str(root / "plain"))
    env = {k: v for k, v in os.environ.items() if k not in TRACKER_VARIABLES + TEST_MARKERS}
    env.update({f"WANDB_{kind}_DIR": str(root / f"wandb-{kind.lower()}") for kind in ("CACHE", "CONFIG", "DATA")})
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1]))
    child = subprocess.run(network_cut_off() + [sys.executable, "-c", CHILD, json.dumps([str(model), plain, argv])],
                           cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-4000:]
    result = json.loads(child.stdout.split("RESULT ", 1)[1])
    assert result["exit_code"] == 0
    return {"root": root, "run": root / "runs" / "exp", "env": env, **result}


def results_csv(run: Path) -> list[dict[str, float]]:
    return [{k: float(v) for k, v in row.items()} for row in csv.DictReader((run / "results.csv").open())]


def assert_per_epoch(logged: dict[str, list[tuple[int, float]]], rows: list[dict[str, float]]) -> None:
    """Every results.csv column was logged once per epoch at step = epoch, with the CSV's value (6 digits)."""
    assert len(rows) == 2 and set(logged) == set(rows[0])
    for column, points in logged.items():
        assert [step for step, _ in points] == [0, 1], column
        assert [value for _, value in points] == pytest.approx([row[column] for row in rows], rel=1e-5), column


def test_no_network_and_nothing_without_the_flags(runs):
    assert runs["attempts"] == []
    assert "CSVLogger" in runs["plain_loggers"]
    assert not {"MLflowLogger", "WandbLogger"} & set(runs["plain_loggers"])
    assert runs["plain_imported"] == []  # `import yolov9` and a trainer without the flags import neither package
    assert not {"mlruns", "mlflow.db", "wandb"} & {p.name for p in runs["root"].iterdir()}  # nothing in the cwd


def test_mlflow_run_read_back_from_the_local_store(runs, tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = runs["run"]
    client = MlflowClient(tracking_uri=f"sqlite:///{(run_dir.parent / 'mlflow.db').as_posix()}")
    (run,) = client.search_runs([client.get_experiment_by_name("runs").experiment_id])
    assert run.info.run_name == "exp" and run.info.status == "FINISHED"
    hyp = yaml.safe_load((run_dir / "hyp.yaml").read_text())
    assert run.data.params["lr0"] == str(hyp["lr0"]) and run.data.params["mosaic"] == str(hyp["mosaic"])
    assert run.data.params["epochs"] == "2" and run.data.params["mlflow"] == "True"
    rows = results_csv(run_dir)
    history = {key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)] for key in rows[0]}
    assert_per_epoch(history, rows)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"results.csv", "results.png", "weights"}
    best = client.download_artifacts(run.info.run_id, "weights/best.pt", str(tmp_path))
    assert Path(best).read_bytes() == (run_dir / "weights" / "best.pt").read_bytes()
    assert {a.path for a in client.list_artifacts(run.info.run_id, "weights")} == {"weights/best.pt", "weights/last.pt"}


def wandb_records(run_dir: Path, env: dict) -> list[dict]:
    """The records of an offline W&B run as W&B's own reader prints them (`wandb leet inspect --json`), offline."""
    out = subprocess.run(network_cut_off() + [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_dir)],
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_wandb_offline_run_read_back_with_wandbs_reader(runs):
    run_dir = runs["run"]
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    records = wandb_records(offline, runs["env"])
    by_type = {kind: [r[kind] for r in records if r["type"] == kind] for kind in {r["type"] for r in records}}
    assert by_type["exit"] == [{"exit_code": 0, "runtime": by_type["exit"][0]["runtime"]}]  # the run finished
    (run,) = by_type["run"]
    assert run["display_name"] == "exp" and run["project"] == "runs"
    config, hyp = run["config"]["update"], yaml.safe_load((run_dir / "hyp.yaml").read_text())
    assert config["lr0"] == hyp["lr0"] and config["mosaic"] == hyp["mosaic"]
    assert config["epochs"] == 2 and config["wandb"] is True
    rows = results_csv(run_dir)
    items = [h["item"] for h in by_type["history"]]
    assert_per_epoch({key: [(item["_step"], item[key]) for item in items] for key in rows[0]}, rows)
    (artifact,) = by_type["artifact"]
    assert artifact["type"] == "model"
    files = {entry["path"]: entry for entry in artifact["manifest"]["contents"]}
    assert set(files) == {"weights/best.pt", "weights/last.pt", "results.csv", "results.png"}
    for name, entry in files.items():  # W&B's digest: base64 of the file's MD5
        content = (run_dir / name).read_bytes()
        assert entry["digest"] == base64.b64encode(hashlib.md5(content).digest()).decode()
        assert int(entry["size"]) == len(content)


def test_configured_trackers_turn_on_without_the_flags(monkeypatch):
    for name in TRACKER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert experiment_loggers(TrainOptions()) == []
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///never-opened.db")
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert [type(logger).__name__ for logger in experiment_loggers(TrainOptions())] == ["MLflowLogger", "WandbLogger"]


@pytest.mark.parametrize("option, pip", [("mlflow", "mlflow-skinny"), ("wandb", "wandb")])
def test_a_flag_without_its_package_names_the_pip_command(monkeypatch, option, pip):
    monkeypatch.setitem(sys.modules, option, None)  # what an absent package looks like to import
    with pytest.raises(YOLOv9Error, match=f"--{option} .*pip install {pip}"):
        experiment_loggers(TrainOptions(**{option: True}))


def test_mlflow_metric_names_are_names_mlflow_accepts():
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_metric_name

    from yolov9.callbacks.mlflow_logger import metric_name

    for allowed in ("metrics/mAP50-95", "val/aux0_box_loss", "lr/pg0", "metrics/mask/mAP50"):
        assert metric_name(allowed) == allowed
    with pytest.raises(MlflowException):
        _validate_metric_name("metrics/mAP50(M)")
    assert metric_name("metrics/mAP50(M)") == "metrics/mAP50_M_"
    _validate_metric_name(metric_name("metrics/mAP50(M)"))
