"""`anomaly-tutor reproduce` end to end: papermill runs of the baseline's repro notebook through the console script."""
import json
from pathlib import Path

import pytest

from anomaly_tutor.training import RESULT_KEYS

from conftest import ROOT

METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def _results(run: Path) -> dict:
    return json.loads((run/'results.json').read_text())


def test_reproduce_one_category(data, tmp_path, run_cli):
    out = tmp_path/'run'
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', out, '--seed', '3', '--device', 'cpu', '--quiet')
    assert res.returncode == 0, res.stderr
    r = _results(out)
    assert set(RESULT_KEYS) <= set(r)
    assert (r['paper'], r['category'], r['profile'], r['seed'], r['image_size']) == ('baseline', 'widget', 'smoke', 3, 64)
    assert (r['n_train'], r['n_test']) == (6, 7)
    assert all(0 <= r[k] <= 1 for k in METRICS)
    assert {'torch', 'timm', 'anomaly_tutor'} <= set(r['versions'])
    assert (out/'69_baseline.ipynb').exists() and (out/'anomaly_maps.png').exists() and (out/'curves.png').exists()
    nb = json.loads((out/'69_baseline.ipynb').read_text())
    injected = [c for c in nb['cells'] if 'injected-parameters' in c['metadata'].get('tags', [])]
    assert injected and "seed = 3" in ''.join(injected[0]['source'])
    assert 'widget' in res.stdout and 'baseline' in res.stdout  # the metrics table


def test_reproduce_never_overwrites_and_is_deterministic(data, tmp_path, run_cli):
    out = tmp_path/'run'
    args = ('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'gear', '--out', out, '--quiet')
    assert run_cli(*args).returncode == 0
    first = (out/'results.json').read_bytes()
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert (out/'results.json').read_bytes() == first
    assert 'run-2' in res.stdout
    a, b = _results(out), _results(tmp_path/'run-2')
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]


def test_reproduce_all_categories(data, tmp_path, run_cli):
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--out', tmp_path/'o', '--quiet')
    assert res.returncode == 0, res.stderr
    assert _results(tmp_path/'o'/'gear')['category'] == 'gear'
    assert _results(tmp_path/'o'/'widget')['category'] == 'widget'


def test_failing_notebook_names_the_cell(data, tmp_path, run_cli, monkeypatch):
    "A cell that raises (data errors are refused before the notebook, see test_bad_input.py): exit 1, cell named, notebook kept."
    nb = json.loads((ROOT/'nbs'/'repro'/'69_baseline.ipynb').read_text())
    nb['cells'].insert(6, {'cell_type': 'code', 'execution_count': None, 'id': 'b0b0b0b0', 'metadata': {}, 'outputs': [],
                           'source': ["raise RuntimeError('the fit went wrong')"]})
    (tmp_path/'nbs'/'repro').mkdir(parents=True)
    (tmp_path/'nbs'/'repro'/'69_baseline.ipynb').write_text(json.dumps(nb))
    monkeypatch.setenv('ANOMALY_TUTOR_NBS', str(tmp_path/'nbs'))
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', tmp_path/'bad', '--quiet')
    assert res.returncode == 1
    assert 'failed in cell' in res.stderr and 'RuntimeError: the fit went wrong' in res.stderr
    assert 'Traceback' not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (tmp_path/'bad'/'69_baseline.ipynb').exists()


def test_reproduce_on_factory_default(tmp_path, run_cli, monkeypatch):
    monkeypatch.setenv('ANOMALY_TUTOR_CACHE', str(tmp_path/'cache'))
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--category', 'pill', '--out', tmp_path/'pill', '--quiet')
    assert res.returncode == 0, res.stderr
    r = _results(tmp_path/'pill')
    assert r['category'] == 'pill' and Path(r['data_root']).is_relative_to(tmp_path/'cache')


def test_reproduce_errors(data, tmp_path, run_cli):
    res = run_cli('reproduce', 'nope', '--profile', 'smoke', '--data-root', data)   # (a paper still to come: test_bad_input)
    assert res.returncode == 2 and "unknown paper 'nope'" in res.stderr
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'bottle')
    assert res.returncode == 2 and 'Available: gear, widget' in res.stderr
    res = run_cli('reproduce', 'baseline', '--profile', 'paper', '--category', 'pill')
    assert res.returncode == 2 and '--data-root' in res.stderr
