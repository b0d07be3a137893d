"""`anomaly-tutor reproduce patchcore` end to end (smoke profile, fake data): the results contract, the figures, both
floors in the comparison table, and the same metrics from the same seed."""
import json

from anomaly_tutor.training import RESULT_KEYS

METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def test_reproduce_patchcore_smoke(data, tmp_path, run_cli):
    runs = []
    for i in range(2):
        out = tmp_path/f'run{i}'
        res = run_cli('reproduce', 'patchcore', '--profile', 'smoke', '--data-root', data, '--category', 'gear',
                      '--out', out, '--seed', 3, '--quiet')
        assert res.returncode == 0, res.stderr[-2000:]
        runs.append(json.loads((out/'results.json').read_text()))
    r = runs[0]
    assert set(RESULT_KEYS) <= set(r)
    assert (r['paper'], r['category'], r['profile'], r['seed'], r['image_size']) == ('patchcore', 'gear', 'smoke', 3, 64)
    assert all(0 <= r[k] <= 1 for k in METRICS)
    assert r['memory_bank'][1] == 152 and r['paper_reported']['image_auroc'] == 0.99
    assert {k: runs[1][k] for k in METRICS} == {k: r[k] for k in METRICS}
    assert (out/'anomaly_maps.png').exists() and (out/'curves.png').exists()
    nb = json.loads((out/'68_patchcore.ipynb').read_text())
    table = [o for c in nb['cells'] for o in c.get('outputs', []) if 'baseline (same data)' in json.dumps(o)]
    assert table, 'the comparison table with the baseline floor is missing'
