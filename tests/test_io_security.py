"""Crafted checkpoints are refused by the restricted unpickler, and their payloads never run."""
from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import yolov9
from yolov9.errors import CheckpointError
from yolov9.io.official import read_official, unpickle_restricted
from yolov9.io.unpickler import UnsafeCheckpointError


class Reduce:
    """Pickles as `callable(*args)`: the classic `__reduce__` payload."""

    def __init__(self, callable_, *args):
        self.callable, self.args = callable_, args

    def __reduce__(self):
        return self.callable, self.args


class StorageRef:
    """Pickles as a persistent id (how torch refers to a storage record in the archive)."""

    def __init__(self, saved_id):
        self.saved_id = saved_id


class _ArchivePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.saved_id if isinstance(obj, StorageRef) else None


def write_archive(path: Path, obj, records: dict[str, bytes] | None = None) -> Path:
    """A torch zip archive (data.pkl + data/<key> records) holding `obj`, pickled with protocol 2 like torch."""
    buffer = io.BytesIO()
    _ArchivePickler(buffer, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/version", "3\n")
        for key, data in (records or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def storage(key: str = "0", numel: int = 4, storage_type=torch.FloatStorage) -> StorageRef:
    return StorageRef(("storage", storage_type, key, "cpu", numel))


def tensor(storage_ref, size=(4,), stride=(1,), hooks=None):
    hooks = collections.OrderedDict() if hooks is None else hooks
    return Reduce(torch._utils._rebuild_tensor_v2, storage_ref, 0, size, stride, False, hooks)


FLOATS = {"0": np.arange(4, dtype=np.float32).tobytes()}


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "payload-ran"
    yield path
    assert not path.exists(), "the payload ran"


def refused(path: Path, *words: str) -> str:
    """The restricted unpickler refuses `path` naming the file and `words`; `yolov9.load` refuses it too."""
    with pytest.raises(UnsafeCheckpointError) as info:
        read_official(path)
    with pytest.raises(CheckpointError):
        yolov9.load(path)
    message = str(info.value)
    assert str(path) in message and "refused" in message
    for word in words:
        assert word in message
    return message


def test_control_archive_is_readable(tmp_path):
    """The crafting helper makes valid archives: the benign version of the gadgets below loads."""
    path = write_archive(tmp_path / "benign.pt", {"t": tensor(storage())}, FLOATS)
    assert torch.equal(unpickle_restricted(path)["t"], torch.arange(4.0))


def test_os_system_payload_is_refused_and_does_not_run(tmp_path, marker):
    payload = {"model": Reduce(os.system, f"touch {marker}")}
    path = write_archive(tmp_path / "evil.pt", payload)
    refused(path, "system")
    # Control: an ordinary unpickler would have run it.
    pickle.loads(zipfile.ZipFile(path).read("archive/data.pkl"))
    assert marker.exists()
    marker.unlink()


def test_exec_payload(tmp_path, marker):
    path = write_archive(tmp_path / "evil.pt", {"model": Reduce(builtins.exec, f"open({str(marker)!r}, 'w')")})
    refused(path, "exec")


def test_subprocess_payload(tmp_path, marker):
    path = write_archive(tmp_path / "evil.pt", {"model": Reduce(subprocess.Popen, ["touch", str(marker)])})
    refused(path, "Popen")


def test_eval_nested_inside_allowed_containers(tmp_path, marker):
    inner = collections.OrderedDict(weight=tensor(storage()), hook=Reduce(builtins.eval, f"open({str(marker)!r}, 'w')"))
    path = write_archive(tmp_path / "evil.pt", {"model": {"layers": [inner]}}, FLOATS)
    refused(path, "eval")


def test_getattr_gadget(tmp_path, marker):
    gadget = Reduce(getattr, Reduce(collections.OrderedDict), "update")
    refused(write_archive(tmp_path / "evil.pt", {"model": gadget}), "getattr")


def test_torch_load_gadget(tmp_path):
    refused(write_archive(tmp_path / "evil.pt", {"model": Reduce(torch.load, "other.pt")}), "torch")


def test_storage_with_bogus_type(tmp_path, marker):
    """A persistent id whose 'storage type' is an allowed-but-wrong object never becomes a storage."""
    path = write_archive(tmp_path / "evil.pt", {"t": tensor(storage(storage_type=collections.OrderedDict))}, FLOATS)
    with pytest.raises(CheckpointError, match="evil.pt"):
        yolov9.load(path)


def test_tensor_rebuilt_from_a_non_storage(tmp_path):
    fake = Reduce(collections.OrderedDict)
    refused(write_archive(tmp_path / "evil.pt", {"t": tensor(fake)}), "not a storage")


def test_tensor_larger_than_its_storage(tmp_path):
    path = write_archive(tmp_path / "evil.pt", {"t": tensor(storage(), size=(1000,))}, FLOATS)
    refused(path, "does not fit")


def test_tensor_with_backward_hooks(tmp_path):
    hooks = Reduce(collections.OrderedDict)
    path = write_archive(tmp_path / "evil.pt", {"t": tensor(storage(), hooks={"h": hooks})}, FLOATS)
    refused(path, "hooks")


def test_ordered_dict_with_arguments(tmp_path):
    refused(write_archive(tmp_path / "evil.pt", {"model": Reduce(collections.OrderedDict, [("a", 1)])}),
            "OrderedDict")


def test_official_class_called_with_arguments(tmp_path):
    """Stand-ins for `models.*` accept pickled state only; calling one with arguments is refused."""
    argument = b"yolov9-c.yaml"
    data = (pickle.PROTO + b"\x02" + pickle.GLOBAL + b"models.yolo\nDetectionModel\n" + pickle.SHORT_BINUNICODE
            + bytes([len(argument)]) + argument + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/version", "3\n")
    refused(path, "models.yolo.DetectionModel")


def test_numpy_object_array(tmp_path):
    array = np.array([1, "x"], dtype=object)
    refused(write_archive(tmp_path / "evil.pt", {"best_fitness": array}), "numpy")


def test_not_a_checkpoint_and_truncated_files(tmp_path, official_dir):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt: not a PyTorch checkpoint"):
        yolov9.load(text)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((official_dir / "gelan-t.pt").read_bytes()[:1_000_000])
    with pytest.raises(CheckpointError, match="truncated.pt: not a PyTorch checkpoint"):
        yolov9.load(truncated)
    with pytest.raises(CheckpointError, match="missing.pt: file not found"):
        yolov9.load(tmp_path / "missing.pt")


def test_malformed_module_state(tmp_path):
    """A stand-in whose `_parameters` is not a dict is reported, not crashed on."""
    state = pickle.dumps({"_parameters": [1, 2], "yaml": {"nc": 1, "backbone": [], "head": []}, "nc": 1},
                         protocol=2)[2:-1]  # without PROTO and STOP
    data = (pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.SHORT_BINUNICODE + b"\x05model" + pickle.GLOBAL
            + b"models.yolo\nDetectionModel\n" + pickle.EMPTY_TUPLE + pickle.NEWOBJ + state + pickle.BUILD
            + pickle.SETITEM + pickle.STOP)
    path = tmp_path / "odd.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/version", "3\n")
    with pytest.raises(CheckpointError, match="odd.pt.*`_parameters` is a list, not a dict"):
        yolov9.load(path)
