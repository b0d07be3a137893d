"""MAAE end to end: `anomaly-tutor reproduce maae --category all` trains one model on every category and writes one
results.json per category and a summary.json; same seed, same metrics; an interrupted run resumes; both paradigms."""
import json
from pathlib import Path

import papermill as pm
import pytest


NB = Path(__file__).resolve().parent.parent/'nbs'/'repro'/'62_maae.ipynb'
METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def _run(tmp_path, data, name, **params):
    out = tmp_path/name
    pm.execute_notebook(str(NB), str(tmp_path/f'{name}.ipynb'), kernel_name='python3', progress_bar=False, cwd=str(tmp_path),
                        parameters=dict(dict(profile='smoke', category='all', data_root=str(data), out_dir=str(out),
                                             device='cpu', seed=0, floors=False), **params))
    return out


def _metrics(out, cat): return [json.loads((out/cat/'results.json').read_text())[k] for k in METRICS]


def test_cli_unified_run_writes_every_category_and_a_summary(data, tmp_path, run_cli):
    from anomaly_tutor.training import METRIC_KEYS, RESULT_KEYS
    out = tmp_path/'run'
    res = run_cli('reproduce', 'maae', '--profile', 'smoke', '--data-root', data, '--category', 'all', '--out', out,
                  '--device', 'cpu', '--quiet')
    assert res.returncode == 0, res.stderr
    for cat, n_train in (('gear', 5), ('widget', 6)):
        r = json.loads((out/cat/'results.json').read_text())
        assert set(RESULT_KEYS) <= set(r) and all(0 <= r[k] <= 1 for k in METRIC_KEYS)
        assert (r['paper'], r['category'], r['paradigm'], r['n_train'], r['n_train_all']) == ('maae', cat, 'unified', n_train, 11)
        assert r['categories'] == ['gear', 'widget'] and set(r['floors']) == {'baseline', 'patchcore'}
    s = json.loads((out/'summary.json').read_text())
    assert s['categories'] == ['gear', 'widget'] and s['category'] == 'all'
    assert s['image_auroc'] == pytest.approx(sum(json.loads((out/c/'results.json').read_text())['image_auroc']
                                                 for c in ('gear', 'widget')) / 2)
    for f in ('training.png', 'noise.png', 'anomaly_maps.png', 'train/checkpoint.pt', '62_maae.ipynb'):
        assert (out/f).exists(), f
    assert 'gear' in res.stdout and 'widget' in res.stdout        # the printed table has a row per category
    again = run_cli('reproduce', 'maae', '--profile', 'smoke', '--data-root', data, '--category', 'all', '--out', out,
                    '--device', 'cpu', '--quiet', '--resume')
    assert again.returncode == 0 and 'nothing to resume' in again.stdout + again.stderr


def test_same_seed_same_metrics_and_resume(data, tmp_path):
    a = _run(tmp_path, data, 'a')
    b = _run(tmp_path, data, 'b', overrides={'stop_after': 1})      # stopped after epoch 1 of 2
    for p in [*b.glob('*/results.json'), b/'summary.json']: p.unlink()
    b = _run(tmp_path, data, 'b', resume=True)
    for cat in ('gear', 'widget'): assert _metrics(a, cat) == _metrics(b, cat)


def test_comma_list_both_paradigms_and_bad_input(data, tmp_path):
    out = _run(tmp_path, data, 'both', category='widget,gear', paradigm='both')
    r = json.loads((out/'widget'/'results.json').read_text())
    assert r['categories'] == ['widget', 'gear'] and set(r['separate']) >= set(METRICS)
    assert (out/'separate'/'gear'/'checkpoint.pt').exists()
    s = json.loads((out/'summary.json').read_text())
    assert set(s['separate_mean']) == set(METRICS)
    with pytest.raises(pm.PapermillExecutionError, match='unknown config key'):
        _run(tmp_path, data, 'bad', overrides={'learning_rate': 1e-3})
    with pytest.raises(pm.PapermillExecutionError, match='paradigm must be'):
        _run(tmp_path, data, 'bad2', paradigm='joint')


def test_cli_one_category_keeps_the_unified_layout(data, tmp_path, run_cli):
    out = tmp_path/'one'
    res = run_cli('reproduce', 'maae', '--profile', 'smoke', '--data-root', data, '--category', 'gear', '--out', out,
                  '--device', 'cpu', '--quiet')
    assert res.returncode == 0, res.stderr
    r = json.loads((out/'gear'/'results.json').read_text())
    assert (r['categories'], r['n_train_all']) == (['gear'], 5) and (out/'summary.json').exists()
    assert 'gear' in res.stdout
