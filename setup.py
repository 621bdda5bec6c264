"""Builds ogevm with its data: the Solidity sources, compiled contracts and fixture models.

They live at the top of the repository (``solidity/``, ``fixtures/``), outside the package,
where the Node.js build and the tests expect them. A wheel carries a copy with the same
layout in ``ogevm/_data/``, which is where :mod:`ogevm.resources` looks first. Editable
installs copy nothing: they read the checkout. Everything else is in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Folder -> the files of it that ship (the same globs are in MANIFEST.in for the sdist).
DATA = {
    "solidity": ("*.sol", "examples/*.sol", "package.json", "README.md"),
    "fixtures/contracts": ("*.json",),
    "fixtures/models": ("*.onnx", "llm/*.onnx"),
}


class BuildWithData(build_py):
    """``build_py`` that also copies :data:`DATA` into ``ogevm/_data``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for folder, patterns in DATA.items():
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    target = Path(self.build_lib, "ogevm", "_data", folder, source.relative_to(ROOT / folder))
                    self.mkpath(str(target.parent))
                    self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildWithData})
