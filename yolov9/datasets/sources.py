"""Read the data files a Python package ships, without importing (or even installing) that package.

A `PackageData` reads `<package>/<folder>/<name>` from a wheel (.whl / .zip), from an unpacked copy of it,
or from the installed package, so heavy packages such as deepforest never become a dependency of ours.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import zipfile
from pathlib import Path
from typing import List, Optional, Union

from yolov9.errors import DatasetError

LICENSE_PATTERN = re.compile(r"(^|/)[^/]+\.dist-info/(licenses/)?LICEN[CS]E[^/]*$|(^|/)LICEN[CS]E$")


class PackageData:
    """The files of one package data folder; `hint` tells the user how to get the package when it is missing."""

    def __init__(self, package: str, folder: str, source: Optional[Union[str, Path]] = None, hint: str = ""):
        self.package, self.folder = package, folder
        self._zip: Optional[zipfile.ZipFile] = None
        self._dir: Optional[Path] = None
        self._root: Optional[Path] = None
        if source is None:
            self._dir = self._installed_dir(hint)
        elif Path(source).is_file() and zipfile.is_zipfile(source):
            self._zip = zipfile.ZipFile(source)
        elif Path(source).is_dir():
            self._root = Path(source)
            nested = self._root / package / folder
            self._dir = nested if nested.is_dir() else self._root
        else:
            raise DatasetError(f"{source}: not a wheel/zip file nor a folder holding {package}/{folder}/ files")
        self.description = str(source) if source is not None else f"installed package {package} ({self._dir})"

    def _installed_dir(self, hint: str) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise DatasetError(f"package {self.package!r} is not installed and no source was given. {hint}".strip())
        return Path(list(spec.submodule_search_locations)[0]) / self.folder

    def names(self) -> List[str]:
        """Sorted file names in the data folder."""
        if self._zip is not None:
            prefix = f"{self.package}/{self.folder}/"
            inside = (n[len(prefix):] for n in self._zip.namelist() if n.startswith(prefix))
            return sorted(name for name in inside if name and "/" not in name)
        return sorted(p.name for p in self._dir.iterdir() if p.is_file())

    def read(self, name: str) -> bytes:
        """The bytes of one data file; a missing file is a DatasetError naming where we looked."""
        try:
            if self._zip is not None:
                return self._zip.read(f"{self.package}/{self.folder}/{name}")
            return (self._dir / name).read_bytes()
        except (KeyError, FileNotFoundError):
            raise DatasetError(f"{self.description}: has no {self.package}/{self.folder}/{name}") from None

    def license_text(self) -> Optional[str]:
        """The package's licence text (from its dist-info or a LICENSE file next to the data), or None."""
        if self._zip is not None:
            members = [n for n in self._zip.namelist() if LICENSE_PATTERN.search(n)]
            return self._zip.read(members[0]).decode() if members else None
        if self._root is not None:
            candidates = sorted(self._root.glob("*.dist-info/**/LICEN[CS]E*")) + [self._root / "LICENSE"]
            found = [p for p in candidates if p.is_file()]
            return found[0].read_text() if found else None
        try:
            files = importlib.metadata.distribution(self.package).files or []
        except importlib.metadata.PackageNotFoundError:
            return None
        found = [f for f in files if LICENSE_PATTERN.search(str(f).replace("\\", "/"))]
        return found[0].read_text() if found else None
