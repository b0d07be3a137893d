"""Every reproduction notebook runs under papermill in the smoke profile, and its `parameters` cell works.

This is what CI relies on for the papers: the `parameters` tag must survive `nbdev-clean`, the defaults in that cell
are the smoke profile, and values injected by papermill override them."""
import ast, json
from pathlib import Path

import papermill as pm
import pytest

from anomaly_tutor.data import write_fake_category

REPRO = Path(__file__).resolve().parent.parent/'nbs'/'repro'
NOTEBOOKS = sorted(REPRO.glob('[0-9]*.ipynb'))
REQUIRED = {'profile', 'category', 'data_root', 'out_dir', 'device', 'seed'}


def _parameters_cell(nb_path: Path) -> dict:
    cells = [c for c in json.loads(nb_path.read_text())['cells'] if 'parameters' in c['metadata'].get('tags', [])]
    assert len(cells) == 1, f"{nb_path.name}: expected one cell tagged 'parameters', found {len(cells)}"
    tree = ast.parse(''.join(cells[0]['source']))
    return {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}


def test_there_are_repro_notebooks():
    assert any(p.name == '69_baseline.ipynb' for p in NOTEBOOKS)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_defaults_are_smoke(nb):
    params = _parameters_cell(nb)
    assert REQUIRED <= set(params), f'{nb.name}: parameters cell misses {REQUIRED - set(params)}'
    assert params['profile'] == 'smoke' and params['seed'] == 0


def test_missing_parameters_cell_is_detected(tmp_path):
    nb = json.loads(NOTEBOOKS[0].read_text())
    for c in nb['cells']: c['metadata'].pop('tags', None)
    broken = tmp_path/'broken.ipynb'; broken.write_text(json.dumps(nb))
    with pytest.raises(AssertionError, match="one cell tagged 'parameters'"): _parameters_cell(broken)


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_smoke_run_with_injected_parameters(nb, tmp_path):
    data = tmp_path/'data'
    write_fake_category(data, 'widget', size=32, n_train=6, n_good=3, defects={'scratch': 3})
    out = tmp_path/'run'
    pm.execute_notebook(str(nb), str(tmp_path/nb.name), kernel_name='python3', progress_bar=False, cwd=str(tmp_path),
                        parameters=dict(profile='smoke', category='widget', data_root=str(data), out_dir=str(out),
                                        device='cpu', seed=7))
    unified = nb.name in ('62_maae.ipynb', '63_mala.ipynb')  # one model for the categories named: <out>/<category>/
    res = json.loads((out/'widget'/'results.json' if unified else out/'results.json').read_text())
    assert (res['seed'], res['category'], res['profile'], res['device']) == (7, 'widget', 'smoke', 'cpu')
