"""Tiny pure-Python wheels and a PEP 503 index of them, made in a test's folder: pip resolves them offline."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from pathlib import Path


def make_wheel(folder: Path, name: str, version: str, requires: Iterable[str] = ()) -> Path:
    """A wheel with metadata only: enough for pip to resolve, download and hash-check it."""
    dist = f"{name.replace('-', '_')}-{version}"
    info = {"METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
            "WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    info["RECORD"] = "".join(f"{dist}.dist-info/{file},,\n" for file in [*info, "RECORD"])
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for file, text in info.items():
            wheel.writestr(f"{dist}.dist-info/{file}", text)
    return path


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def simple_index(folder: Path, wheels: Iterable[Path]) -> str:
    """A file:// PEP 503 index listing `wheels` with their sha256, as PyPI lists its files."""
    for wheel in wheels:
        project = folder / wheel.name.split("-")[0].replace("_", "-")
        project.mkdir(parents=True, exist_ok=True)
        link = f'<a href="{wheel.as_uri()}#sha256={sha256(wheel).removeprefix("sha256:")}">{wheel.name}</a>\n'
        with (project / "index.html").open("a") as page:
            page.write(link)
    return folder.as_uri()
