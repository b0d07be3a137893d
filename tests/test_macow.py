"""MACoW end to end: `anomaly-tutor reproduce macow` on any MVTec-layout folder, the ablation grid, resume."""
import json
from pathlib import Path

import papermill as pm
import pytest


NB = Path(__file__).resolve().parent.parent/'nbs'/'repro'/'60_macow.ipynb'
METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def test_cli_reproduce_macow_on_any_mvtec_folder(data, tmp_path, reproduce_smoke):
    out = tmp_path/'run'
    r = reproduce_smoke('macow', data, 'gear', out)
    assert (r['n_train'], r['n_test']) == (5, 5)
    assert r['config']['weighting'] == 'msdw' and r['config']['attention'] == 'sspcbma'
    for f in ('anomaly_maps.png', 'curves.png', 'training.png', 'train/checkpoint.pt', 'train/log.jsonl', '60_macow.ipynb'):
        assert (out/f).exists(), f
    log = [json.loads(l) for l in (out/'train'/'log.jsonl').read_text().splitlines()]
    assert len(log) == r['train_steps'] and {'beta_perlin', 'alpha_nsa_focal', 'L_mask', 'sspcab'} <= set(log[0])


def _run(tmp_path, data, name, **params):
    out = tmp_path/name
    pm.execute_notebook(str(NB), str(tmp_path/f'{name}.ipynb'), kernel_name='python3', progress_bar=False, cwd=str(tmp_path),
                        parameters=dict(profile='smoke', category='widget', data_root=str(data), out_dir=str(out),
                                        device='cpu', seed=0, **params))
    return out


def test_ablation_switches_and_grid(data, tmp_path):
    out = _run(tmp_path, data, 'abl', weighting='static', attention='none', synthesizers=['perlin', 'mask'],
               overrides={'epochs': 1, 'steps_per_epoch': 1}, ablation=True)
    r = json.loads((out/'results.json').read_text())
    assert (r['config']['weighting'], r['config']['attention'], r['config']['synthesizers']) == ('static', 'none', ['perlin', 'mask'])
    assert r['train_steps'] == 1
    rows = json.loads((out/'ablation.json').read_text())['rows']
    assert [(x['weighting'], x['attention']) for x in rows] == [(w, a) for w in ('static', 'multi_loss', 'msdw')
                                                                 for a in ('none', 'sspcab', 'sspcbma')]
    assert all(0 <= x[k] <= 1 for x in rows for k in ('image_auroc', 'pixel_auroc', 'aupro', 'pixel_ap'))


def test_same_seed_same_metrics_and_resume(data, tmp_path):
    a = json.loads((_run(tmp_path, data, 'a')/'results.json').read_text())
    b_out = _run(tmp_path, data, 'b', overrides={'stop_after': 1})   # a run stopped after its first epoch
    (b_out/'results.json').unlink()
    b = json.loads((_run(tmp_path, data, 'b', resume=True)/'results.json').read_text())
    assert b['train_steps'] == a['train_steps'] == 4
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]
    with pytest.raises(pm.PapermillExecutionError, match='lr differ'):
        (b_out/'results.json').unlink()
        _run(tmp_path, data, 'b', overrides={'lr': 0.5}, resume=True)


def test_wrong_override_is_a_clear_error(data, tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match='unknown config key'):
        _run(tmp_path, data, 'bad', overrides={'learning_rate': 1e-3})
