"""A restricted unpickler for official YOLOv9 checkpoints: it materialises data and never runs code from the file.

Official files are whole pickled modules (`models.yolo.DetectionModel`, `models.common.Conv`, torch.nn layers).
Every global the pickle names goes through `RestrictedUnpickler.find_class`:

* `models.*`, `utils.*` and torch.nn layer classes become `InertModule` stand-ins: plain objects that only
  receive their pickled `__dict__` (no constructor, no methods of the real class ever run);
* tensors and storages are rebuilt through argument-checked wrappers of torch's own rebuild functions;
* `OrderedDict`, `set`, `frozenset`, numpy scalars/arrays (no object dtype), `pathlib` paths (as plain strings),
  torch dtypes and `torch.Size` are allowed, each through a wrapper that checks its arguments;
* `getattr(<stand-in class>, 'public_name')`, how protocol-2 pickles name a method (official segmentation heads
  keep `self.detect = Detect.forward`), becomes an `InertReference`: a name, never looked up, never callable.
  `getattr` on anything else is refused.

Any other global (`os.system`, `builtins.eval`, `subprocess.Popen`, ...) and any other use of `getattr` is
refused before anything is called, with an `UnsafeCheckpointError` naming it.
"""
from __future__ import annotations

import codecs
import collections
import pickle
import types
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Callable

import numpy as np
import torch

from yolov9.errors import CheckpointError

STANDIN_PREFIXES = ("models.", "utils.")
TORCH_NN_MODULES = frozenset(f"torch.nn.modules.{m}" for m in (
    "container", "conv", "batchnorm", "activation", "pooling", "upsampling", "linear", "dropout", "padding",
    "normalization", "flatten", "module"))
NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")


class UnsafeCheckpointError(CheckpointError):
    """The pickle names a global outside the allow-list or calls an allowed one with unexpected arguments."""


class InertModule:
    """Stand-in for a pickled module class: holds the pickled attributes, has no behaviour.

    `official_global` is the 'module.Name' the pickle asked for (e.g. 'models.common.RepNCSPELAN4').
    """

    official_global = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> "InertModule":
        if args or kwargs:
            raise UnsafeCheckpointError(f"{cls.official_global} called with arguments; only pickled state is accepted")
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise UnsafeCheckpointError(f"{self.official_global}: pickled state must be a dict of attributes")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<inert {self.official_global}>"


class InertReference:
    """Stand-in for a function or attribute the pickle names as `getattr(<official class>, name)`: data only."""

    def __init__(self, official_global: str):
        self.official_global = official_global

    def __repr__(self) -> str:
        return f"<inert reference {self.official_global}>"


def _inert_getattr(owner: Any, name: Any, *default: Any) -> InertReference:
    """`getattr` as protocol-2 pickles use it for methods: only on a stand-in class and a public identifier."""
    if default or not (isinstance(owner, type) and issubclass(owner, InertModule) and owner.official_global):
        raise UnsafeCheckpointError("getattr is only accepted on a stand-in of an official class, "
                                    f"not on {type(owner).__name__}")
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise UnsafeCheckpointError(f"getattr of {name!r} on {owner.official_global}: only public names are accepted")
    return InertReference(f"{owner.official_global}.{name}")


def _standin(module: str, name: str, cache: dict) -> type:
    key = f"{module}.{name}"
    if key not in cache:
        cache[key] = type(name, (InertModule,), {"official_global": key, "__module__": __name__})
    return cache[key]


def _check_hooks(hooks: Any, what: str) -> None:
    if hooks is not None and not (isinstance(hooks, dict) and not hooks):
        raise UnsafeCheckpointError(f"{what} carries backward hooks; refused")


def _int_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, torch.Size)) and all(type(v) is int and v >= 0 for v in value)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any,
                    metadata: Any = None) -> torch.Tensor:
    """Checked `torch._utils._rebuild_tensor_v2`: a real storage from the archive, integer geometry, no hooks."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnsafeCheckpointError(f"tensor rebuilt from a {type(storage).__name__}, not a storage of the archive")
    geometry_ok = _int_tuple(size) and _int_tuple(stride) and len(size) == len(stride)
    if type(offset) is not int or offset < 0 or not geometry_ok:
        raise UnsafeCheckpointError("tensor with malformed offset/size/stride")
    if not isinstance(requires_grad, bool):
        raise UnsafeCheckpointError("tensor with a non-boolean requires_grad")
    _check_hooks(hooks, "tensor")
    if metadata is not None and not (isinstance(metadata, dict) and not metadata):
        raise UnsafeCheckpointError("tensor with unexpected metadata")
    try:
        return torch._utils._rebuild_tensor_v2(storage, offset, tuple(size), tuple(stride), requires_grad,
                                               collections.OrderedDict())
    except RuntimeError as e:
        raise UnsafeCheckpointError(f"tensor does not fit its storage ({e})") from None


def _torch_size(dims: Any = ()) -> torch.Size:
    """`torch.Size(tuple of ints)`, e.g. the input shape an official head caches after an eval forward."""
    if not _int_tuple(dims):
        raise UnsafeCheckpointError("torch.Size built from something other than non-negative integers")
    return torch.Size(dims)


def _rebuild_parameter(data: Any, requires_grad: Any, hooks: Any) -> torch.nn.Parameter:
    """Checked `torch._utils._rebuild_parameter`."""
    if type(data) is not torch.Tensor or not isinstance(requires_grad, bool):
        raise UnsafeCheckpointError("parameter rebuilt from something other than a tensor")
    _check_hooks(hooks, "parameter")
    return torch.nn.Parameter(data, requires_grad)


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    """`OrderedDict()` as pickles write it; items arrive later through SETITEMS."""
    if args:
        raise UnsafeCheckpointError("collections.OrderedDict called with arguments")
    return collections.OrderedDict()


def _plain_set(kind: type) -> Callable[..., Any]:
    def build(items: Any = ()) -> Any:
        if not isinstance(items, (list, tuple)):
            raise UnsafeCheckpointError(f"{kind.__name__} built from a {type(items).__name__}")
        return kind(items)
    return build


def _path(kind: type) -> Callable[..., str]:
    """pathlib paths become plain strings (pure path arithmetic, no file system access)."""
    def build(*parts: Any) -> str:
        if not all(isinstance(p, str) for p in parts):
            raise UnsafeCheckpointError("pathlib path built from non-strings")
        return str(kind(*parts))
    return build


def _latin1_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """`_codecs.encode(str, 'latin1')`: how protocol-2 pickles store bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError("_codecs.encode is only accepted for latin1 text")
    return codecs.encode(text, "latin1")


class _NdarrayToken:
    """What the pickle's `numpy.ndarray` global resolves to; only `_reconstruct` accepts it."""


def _numpy_dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    if not isinstance(spec, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise UnsafeCheckpointError("numpy.dtype with unexpected arguments")
    dtype = np.dtype(spec, align=align)
    if dtype.hasobject or dtype.fields is not None:
        raise UnsafeCheckpointError(f"numpy dtype {spec!r} (object or structured) refused")
    return dtype


def _numpy_reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    if subtype is not _NdarrayToken or not _int_tuple(shape) or dtype_code not in (b"b", "b"):
        raise UnsafeCheckpointError("numpy array reconstruction with unexpected arguments")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype("b"))


def _numpy_scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise UnsafeCheckpointError("numpy scalar with unexpected arguments")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _plain_set(set),
    ("__builtin__", "set"): _plain_set(set),
    ("builtins", "frozenset"): _plain_set(frozenset),
    ("__builtin__", "frozenset"): _plain_set(frozenset),
    ("pathlib", "PosixPath"): _path(PurePosixPath),
    ("pathlib", "PurePosixPath"): _path(PurePosixPath),
    ("pathlib", "WindowsPath"): _path(PureWindowsPath),
    ("pathlib", "PureWindowsPath"): _path(PureWindowsPath),
    ("_codecs", "encode"): _latin1_encode,
    ("torch", "Size"): _torch_size,
    ("builtins", "getattr"): _inert_getattr,
    ("__builtin__", "getattr"): _inert_getattr,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy", "ndarray"): _NdarrayToken,
    **{(core, "_reconstruct"): _numpy_reconstruct for core in NUMPY_CORE},
    **{(core, "scalar"): _numpy_scalar for core in NUMPY_CORE},
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose `find_class` resolves only the allow-list above (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._standins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module.startswith(STANDIN_PREFIXES) or (module in TORCH_NN_MODULES and name[:1].isupper()):
            return _standin(module, name, self._standins)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise UnsafeCheckpointError(f"refused global {module}.{name}: not on the allow-list of inert types")


def _load(*args: Any, **kwargs: Any) -> Any:
    raise UnsafeCheckpointError("legacy (pre-zip) torch checkpoints are not supported")


# The module object handed to `torch.load(pickle_module=...)`: torch wraps `Unpickler` and supplies the
# archive's storages through its own `persistent_load`.
restricted_pickle = types.SimpleNamespace(Unpickler=RestrictedUnpickler, load=_load, __name__=__name__)
