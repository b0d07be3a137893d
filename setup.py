"""Build step: ship the repro notebooks inside the package.

`nbs/repro/*.ipynb` stays their one source. A wheel (or a plain `pip install .`) gets a copy in `anomaly_tutor/_repro/`,
which `anomaly_tutor.runner.repro_dir()` uses when there is no clone next to the package; an editable install reads
`nbs/repro/` directly, so nothing is copied there. Everything else about the build is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

REPRO = Path(__file__).resolve().parent/'nbs'/'repro'


class build_py_with_repro(build_py):
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return
        if not REPRO.is_dir(): raise FileNotFoundError(f'{REPRO} is missing: the repro notebooks cannot be packaged')
        out = Path(self.build_lib)/'anomaly_tutor'/'_repro'
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for nb in sorted(REPRO.glob('*.ipynb')): shutil.copy2(nb, out/nb.name)


setup(cmdclass={'build_py': build_py_with_repro})
