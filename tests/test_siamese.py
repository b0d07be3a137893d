"""Siamese U-Net end to end: `anomaly-tutor reproduce siamese` on any MVTec-layout folder, same seed, resume in stage 2."""
import json
from pathlib import Path

import papermill as pm
import pytest


NB = Path(__file__).resolve().parent.parent/'nbs'/'repro'/'64_siamese.ipynb'
METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def _run(tmp_path, data, name, **params):
    out = tmp_path/name
    pm.execute_notebook(str(NB), str(tmp_path/f'{name}.ipynb'), kernel_name='python3', progress_bar=False, cwd=str(tmp_path),
                        parameters=dict(profile='smoke', category='widget', data_root=str(data), out_dir=str(out),
                                        device='cpu', seed=0, floors=False, **params))
    return out


def test_cli_reproduce_siamese_on_any_mvtec_folder(data, tmp_path, reproduce_smoke):
    out = tmp_path/'run'
    r = reproduce_smoke('siamese', data, 'gear', out)
    assert (r['n_train'], r['n_test']) == (5, 5)
    assert (r['stage1_steps'], r['stage2_steps']) == (4, 2) and r['metrics_stage1'] is not None
    assert set(r['floors']) == {'baseline', 'patchcore'}
    for f in ('anomaly_maps.png', 'scores.png', 'levels.png', 'training.png', 'train/stage1/checkpoint.pt',
              'train/stage2/log.jsonl', '64_siamese.ipynb'):
        assert (out/f).exists(), f


def test_same_seed_same_metrics_and_resume_in_stage2(data, tmp_path):
    a = json.loads((_run(tmp_path, data, 'a', overrides={'epochs2': 2})/'results.json').read_text())
    b_out = _run(tmp_path, data, 'b', overrides={'epochs2': 2, 'stop_after': 3})   # stopped after stage 2's first epoch
    first = json.loads((b_out/'results.json').read_text())
    assert (first['stage1_steps'], first['stage2_steps']) == (4, 2)
    (b_out/'results.json').unlink()
    b = json.loads((_run(tmp_path, data, 'b', overrides={'epochs2': 2}, resume=True)/'results.json').read_text())
    assert b['stage2_steps'] == a['stage2_steps'] == 4
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]
    assert a['metrics_stage1'] == b['metrics_stage1']


def test_switches_ablation_and_bad_override(data, tmp_path):
    out = _run(tmp_path, data, 'abl', cpam='none', stage1=False, stage2=False, ablation=True,
               ablation_runs=['RD4AD', '+ CPAM'])
    r = json.loads((out/'results.json').read_text())
    assert (r['config']['cpam'], r['config']['stage1'], r['config']['stage2'], r['stage2_steps']) == ('none', False, False, 0)
    rows = json.loads((out/'ablation.json').read_text())['rows']
    assert [x['name'] for x in rows] == ['RD4AD', '+ CPAM'] and rows[0]['image_auroc'] == r['image_auroc']
    with pytest.raises(pm.PapermillExecutionError, match='unknown config key'):
        _run(tmp_path, data, 'bad', overrides={'learning_rate': 1e-3})
