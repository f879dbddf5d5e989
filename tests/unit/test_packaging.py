"""One installed package: `pip install .` puts only `copyflow` (and its console script) into
site-packages; the repository's top-level folders are its subpackages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("schemas", "plugins", "consumer", "trainer")


@pytest.mark.parametrize("name", FOLDERS)
def test_each_top_level_folder_is_a_subpackage_of_copyflow(name: str) -> None:
    link = REPO / "copyflow" / name
    assert link.is_symlink() and link.resolve() == (REPO / name).resolve()
    module = __import__(f"copyflow.{name}", fromlist=["_"])
    assert Path(module.__file__ or "").resolve().parent == (REPO / name).resolve()


def test_the_wheel_installs_only_the_copyflow_package(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build would leave (and later reuse) build/ in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in (*FOLDERS, "copyflow"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO / folder, source / folder, symlinks=True, ignore=ignore)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path), str(source)], check=True, cwd=tmp_path)
    [wheel] = tmp_path.glob("copyflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "copyflow",
        wheel.name.removesuffix("-py3-none-any.whl") + ".dist-info",
    }
    # Every module of every folder is in it, under copyflow/.
    for folder in FOLDERS:
        for source in (REPO / folder).rglob("*.py"):
            assert f"copyflow/{source.relative_to(REPO).as_posix()}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "copyflow = copyflow.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
