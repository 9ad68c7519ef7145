"""Packaging hook: the synthetic citizens of ``seeds/`` go into the wheel as package data.

``seeds/`` stays the one source (people and tests read it there); an installed Thiqa has no
checkout beside it, so the build copies the files into ``service/seeds/`` of the wheel, where
``service.services.seeds`` finds them. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: What an installed Thiqa needs from seeds/: the citizens and the note that they are fictional.
SHIPPED = ("citizens.json", "README.md")


class BuildWithSeeds(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "service" / "seeds"
        target.mkdir(parents=True, exist_ok=True)
        for name in SHIPPED:
            shutil.copyfile(ROOT / "seeds" / name, target / name)


setup(cmdclass={"build_py": BuildWithSeeds})
