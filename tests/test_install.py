"""The package installs and reproduces from anywhere: a wheel carries the repro notebooks (single source: nbs/repro)."""
import json, os, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest

from conftest import ROOT

SOURCES = ('pyproject.toml', 'setup.py', 'MANIFEST.in', 'README.md', 'anomaly_tutor', 'nbs/repro')


def _pip(*args, cwd=None):
    res = subprocess.run([sys.executable, '-m', 'pip', *map(str, args)], capture_output=True, text=True, cwd=cwd,
                         timeout=600, env={**os.environ, 'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "A wheel built offline (no isolation, no dependencies) from a copy of the clone's sources."
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'
    for name in SOURCES:
        p, dst = ROOT/name, src/name
        if p.is_dir(): shutil.copytree(p, dst, ignore=shutil.ignore_patterns('__pycache__', '*.pyc', '_repro'))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst)
    _pip('wheel', '--no-deps', '--no-build-isolation', '--no-index', '-w', tmp/'dist', src)
    (whl,) = (tmp/'dist').glob('anomaly_tutor-*.whl')
    return whl


def test_wheel_carries_the_repro_notebooks(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(n.split('/')[-1] for n in names if n.startswith('anomaly_tutor/_repro/'))
    assert shipped == sorted(p.name for p in (ROOT/'nbs'/'repro').glob('*.ipynb')) and '69_baseline.ipynb' in shipped
    with zipfile.ZipFile(wheel) as z:
        assert z.read('anomaly_tutor/_repro/69_baseline.ipynb') == (ROOT/'nbs'/'repro'/'69_baseline.ipynb').read_bytes()
    assert not any(n.startswith('nbs/') for n in names)  # the copy is inside the package, nothing else leaks


def test_installed_wheel_reproduces_outside_the_clone(wheel, data, tmp_path):
    site = tmp_path/'site'
    _pip('install', '--no-deps', '--no-index', '--target', site, wheel)
    elsewhere = tmp_path/'elsewhere'
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('ANOMALY_TUTOR_NBS', 'IN_TEST')}
    env.update(PYTHONPATH=str(site), PYTHONUNBUFFERED='1')
    where = subprocess.run([sys.executable, '-c', 'from anomaly_tutor.runner import repro_dir; print(repro_dir())'],
                           capture_output=True, text=True, cwd=elsewhere, env=env, timeout=120)
    assert Path(where.stdout.strip()) == site/'anomaly_tutor'/'_repro', where.stderr
    res = subprocess.run([str(site/'bin'/'anomaly-tutor'), 'reproduce', 'baseline', '--profile', 'smoke',
                          '--data-root', str(data), '--category', 'widget', '--out', 'run', '--device', 'cpu', '--quiet'],
                         capture_output=True, text=True, cwd=elsewhere, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads((elsewhere/'run'/'results.json').read_text())
    assert (r['paper'], r['category'], r['profile']) == ('baseline', 'widget', 'smoke')
    assert (elsewhere/'run'/'69_baseline.ipynb').exists()
