import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli_path() -> str:
    "The installed `anomaly-tutor` console script (next to the running Python), else from PATH."
    exe = Path(sys.executable).parent/'anomaly-tutor'
    return str(exe) if exe.exists() else (shutil.which('anomaly-tutor') or 'anomaly-tutor')


@pytest.fixture
def run_cli():
    "Run the installed console script; return the CompletedProcess (text mode)."
    def _run(*args, timeout=300):
        return subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    return _run


@pytest.fixture
def data(tmp_path):
    "Two fake MVTec-layout categories: `widget` (RGB, 32 px) and `gear` (grayscale, 40 px, one defect kind)."
    from anomaly_tutor.data import write_fake_category
    root = tmp_path/'data'
    write_fake_category(root, 'widget', size=32, n_train=6, n_good=3, defects={'scratch': 2, 'dent': 2}, seed=1)
    write_fake_category(root, 'gear', size=40, n_train=5, n_good=2, defects={'crack': 3}, mode='L', seed=2)
    return root


@pytest.fixture(scope='module')
def one_thread():
    "Small models and tensors: one torch thread is fastest and steady on a shared machine; restored afterwards."
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def reproduce_smoke(run_cli):
    "`anomaly-tutor reproduce PAPER --profile smoke` on one fake category: checks the run and the results contract."
    def _run(paper, data, category, out, seed=2):
        from anomaly_tutor.training import METRIC_KEYS, RESULT_KEYS
        res = run_cli('reproduce', paper, '--profile', 'smoke', '--data-root', data, '--category', category,
                      '--out', out, '--seed', seed, '--device', 'cpu', '--quiet')
        assert res.returncode == 0, res.stderr
        r = json.loads((Path(out)/'results.json').read_text())
        assert set(RESULT_KEYS) <= set(r)
        assert (r['paper'], r['category'], r['profile'], r['seed']) == (paper, category, 'smoke', seed)
        assert all(0 <= r[k] <= 1 for k in METRIC_KEYS)
        return r
    return _run
