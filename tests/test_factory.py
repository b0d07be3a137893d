"""The offline factory dataset (nbs/01_factory.ipynb): determinism, exact masks, layout, reuse and refusal."""
import inspect, json, time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from anomaly_tutor import factory as F

SMALL = dict(size=48, n_train=3, n_test_good=2, n_test_defect=5, progress=False)
TEXTURE_KINDS = [(c, k) for c, v in F.FACTORY_CATEGORIES.items() for k in v['defects']]


def _files(root: Path) -> dict:
    "Relative path -> bytes of every file under `root`."
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def factory_a(tmp_path_factory):
    "All categories, seed 0, small counts; made once for the module."
    out = tmp_path_factory.mktemp('a')/'factory'
    summary = F.make_factory(out, **SMALL)
    return out, summary


# --- the catalogue -------------------------------------------------------------------------------------------------

def test_catalogue_kinds_and_defaults():
    cats = F.FACTORY_CATEGORIES
    assert sum(v['kind'] == 'texture' for v in cats.values()) >= 3
    assert sum(v['kind'] == 'object' for v in cats.values()) >= 3
    assert all(len(v['defects']) >= 3 for v in cats.values())
    assert len({k for v in cats.values() for k in v['defects']}) >= 5
    assert set(F.CATEGORIES) == set(cats)
    assert F.DEFAULT_SIZE == 128
    sig = inspect.signature(F.make_factory).parameters
    assert {k: sig[k].default for k in ('size', 'categories', 'seed', 'n_train', 'n_test_good', 'n_test_defect', 'progress')} == \
        dict(size=128, categories=None, seed=0, n_train=100, n_test_good=30, n_test_defect=30, progress=True)
    assert list(inspect.signature(F.ensure_factory).parameters) == list(sig)


def test_forbidden_generators_absent():
    "The test defects must not reuse the book's training-time synthesis (Perlin, CutPaste, NSA/Poisson, rectangles)."
    src = Path(F.__file__).read_text().lower()
    for word in ('perlin', 'seamlessclone', 'cv2.rectangle', 'cutpaste('):
        assert word not in src, word


# --- exact ground truth --------------------------------------------------------------------------------------------

@pytest.mark.parametrize('cat,kind', TEXTURE_KINDS)
def test_mask_is_exactly_the_changed_pixels(cat, kind):
    size = 64
    for i in range(3):
        normal, defective, mask = F.render_pair(cat, kind, np.random.default_rng(100 + i), size)
        assert normal.shape == defective.shape == (size, size, 3) and mask.shape == (size, size)
        assert normal.dtype == defective.dtype == np.uint8 and mask.dtype == bool
        np.testing.assert_array_equal(mask, (normal != defective).any(-1))
        assert mask.sum() >= F.min_defect_px(size)
        assert mask.sum() <= F.MAX_DEFECT_FRAC * size * size
        assert ndimage.label(mask)[1] <= 8  # solid pieces, not speckle
        # the twin is exactly the normal image of that scene
        np.testing.assert_array_equal(normal, F.render_normal(cat, np.random.default_rng(100 + i), size))


@pytest.mark.parametrize('cat', [c for c, v in F.FACTORY_CATEGORIES.items() if v['kind'] == 'object'])
def test_object_surface_defects_lie_on_the_object(cat):
    size = 64
    for kind in set(F.FACTORY_CATEGORIES[cat]['defects']) & set(F.SURFACE_DEFECTS):
        for i in range(3):
            _, _, mask = F.render_pair(cat, kind, np.random.default_rng(7 + i), size)
            sc = F.CATEGORIES[cat].scene(np.random.default_rng(7 + i), size)
            support = F.downsample2(F.CATEGORIES[cat].render(sc)[1]) > 0
            assert not (mask & ~ndimage.binary_dilation(support)).any(), (cat, kind, i)


def test_compose_defect_drops_faint_changes_and_pushes_weak_ones():
    normal = np.full((6, 6, 3), 200.)
    defective = normal.copy()
    defective[1:4, 1:4] -= 50; defective[2, 2] = 199.5; defective[5, 5] += 1.0
    n8, d8, m = F.compose_defect(normal, defective)
    assert m.sum() == 9 and not m[5, 5] and m[2, 2]
    assert (d8[5, 5] == n8[5, 5]).all() and int(n8[2, 2, 0]) - int(d8[2, 2, 0]) == 4


def test_unknown_kind_and_category():
    with pytest.raises(ValueError, match='valid categories: brick'): F.render_normal('bolt', np.random.default_rng(0))
    with pytest.raises(ValueError, match='its kinds'): F.render_pair('grass', 'print_error', np.random.default_rng(0))


# --- layout and counts on disk -------------------------------------------------------------------------------------

def test_layout_and_counts(factory_a):
    out, summary = factory_a
    assert sorted(p.name for p in out.iterdir()) == sorted([*F.FACTORY_CATEGORIES, 'factory.json'])
    for cat, info in F.FACTORY_CATEGORIES.items():
        root = out/cat
        assert sorted(p.name for p in (root/'train'/'good').iterdir()) == ['000.png', '001.png', '002.png']
        assert sorted(p.name for p in (root/'test'/'good').iterdir()) == ['000.png', '001.png']
        kinds = info['defects']
        expect = {k: len(range(j, SMALL['n_test_defect'], len(kinds))) for j, k in enumerate(kinds)}
        got = {p.name: len(list(p.iterdir())) for p in (root/'test').iterdir() if p.name != 'good'}
        assert got == {k: n for k, n in expect.items() if n}
        assert summary[cat]['counts'] == {'train/good': 3, 'test/good': 2, **{f'test/{k}': n for k, n in got.items()}}
        assert summary[cat]['kind'] == info['kind'] and summary[cat]['seconds'] > 0
        for img_path in (root/'test').rglob('*.png'):
            im = Image.open(img_path)
            assert im.mode == 'RGB' and im.size == (48, 48)
            if img_path.parent.name == 'good': continue
            mk = Image.open(root/'ground_truth'/img_path.parent.name/f'{img_path.stem}_mask.png')
            assert mk.mode == 'L' and mk.size == im.size
            vals = np.unique(np.asarray(mk))
            assert list(vals) == [0, 255]
        n_masks = len(list((root/'ground_truth').rglob('*_mask.png')))
        assert n_masks == SMALL['n_test_defect']
        for p in (root/'train'/'good').iterdir(): assert Image.open(p).mode == 'RGB'
    rec = json.loads((out/'factory.json').read_text())
    assert rec['complete'] is True and rec['params']['size'] == 48 and rec['params']['seed'] == 0
    assert rec['params']['categories'] == list(F.FACTORY_CATEGORIES)
    assert 'anomaly_tutor_version' in rec


def test_masks_on_disk_match_image_vs_twin(factory_a):
    "The written defective image and mask agree with a fresh render of that sample's twin."
    out, _ = factory_a
    for cat in ('brick', 'chip'):
        kind, stem = F.defect_plan(cat, 1)[0]
        n, d, m = F.render_pair(cat, kind, F.sample_rng(0, cat, 'test_defect', 0), 48)
        np.testing.assert_array_equal(np.asarray(Image.open(out/cat/'test'/kind/f'{stem}.png')), d)
        np.testing.assert_array_equal(np.asarray(Image.open(out/cat/'ground_truth'/kind/f'{stem}_mask.png')) > 0, m)


# --- determinism ---------------------------------------------------------------------------------------------------

def test_same_seed_is_byte_identical(factory_a, tmp_path):
    out, _ = factory_a
    F.make_factory(tmp_path/'b', **SMALL)
    a, b = _files(out), _files(tmp_path/'b')
    assert a.keys() == b.keys() and len(a) > 50
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]][:5]


def test_other_seed_differs(factory_a, tmp_path):
    out, _ = factory_a
    F.make_factory(tmp_path/'c', categories=['gravel', 'washer'], seed=1, **{**SMALL, 'n_test_defect': 2})
    c = _files(tmp_path/'c')
    pngs = [k for k in c if k.endswith('.png') and 'ground_truth' not in k]
    assert pngs and all(c[k] != (out/k).read_bytes() for k in pngs)


def test_category_independent_of_the_others(factory_a, tmp_path):
    out, _ = factory_a
    F.make_factory(tmp_path/'d', categories=['pill'], **SMALL)
    d = _files(tmp_path/'d'/'pill')
    assert d == _files(out/'pill')


def test_image_independent_of_counts(factory_a):
    out, _ = factory_a
    img = F.render_normal('gravel', F.sample_rng(0, 'gravel', 'train', 2), 48)
    np.testing.assert_array_equal(np.asarray(Image.open(out/'gravel'/'train'/'good'/'002.png')), img)


# --- parameters, reuse and refusal ---------------------------------------------------------------------------------

def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match='valid categories: brick, grass, gravel, pill, washer, chip'):
        F.make_factory(tmp_path/'x', categories=['pill', 'bolt'], **SMALL)
    with pytest.raises(ValueError, match='size >= 32'):
        F.make_factory(tmp_path/'x', categories=['pill'], **{**SMALL, 'size': 31})
    assert not (tmp_path/'x').exists()
    s = F.make_factory(tmp_path/'y', categories='brick', **{**SMALL, 'size': 32})
    assert Image.open(tmp_path/'y'/'brick'/'train'/'good'/'000.png').size == (32, 32) and list(s) == ['brick']


def test_ensure_factory_reuses(tmp_path):
    out = tmp_path/'f'
    s1 = F.ensure_factory(out, categories=['washer', 'grass'], **SMALL)
    assert s1['washer']['seconds'] > 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob('*')}
    t0 = time.perf_counter()
    s2 = F.ensure_factory(out, categories=['grass', 'washer'], **SMALL)  # same parameters, other order
    assert time.perf_counter() - t0 < 1.0
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*')} == before
    assert {c: v['counts'] for c, v in s2.items()} == {c: v['counts'] for c, v in s1.items()}
    assert all(v['seconds'] == 0 for v in s2.values())


def test_ensure_factory_refuses_and_regenerates(tmp_path):
    other = tmp_path/'other'; other.mkdir(); (other/'notes.txt').write_text('mine')
    with pytest.raises(FileExistsError, match='not a factory dataset.*Delete it'):
        F.ensure_factory(other, categories=['pill'], **SMALL)
    with pytest.raises(FileExistsError):
        F.make_factory(other, categories=['pill'], **SMALL)
    assert (other/'notes.txt').read_text() == 'mine' and len(list(other.iterdir())) == 1

    out = tmp_path/'f'
    F.ensure_factory(out, categories=['pill'], **SMALL)
    with pytest.raises(FileExistsError, match='other parameters'):
        F.ensure_factory(out, categories=['pill'], **{**SMALL, 'seed': 3})
    # an explicit make_factory regenerates a factory folder, removing categories it no longer has
    F.make_factory(out, categories=['chip'], **SMALL)
    assert sorted(p.name for p in out.iterdir()) == ['chip', 'factory.json']
    # an interrupted generation (complete: false) is not reused but redone
    rec = json.loads((out/'factory.json').read_text()); rec['complete'] = False
    (out/'factory.json').write_text(json.dumps(rec))
    s = F.ensure_factory(out, categories=['chip'], **SMALL)
    assert s['chip']['seconds'] > 0 and json.loads((out/'factory.json').read_text())['complete'] is True
    # an empty existing folder is fine
    (tmp_path/'empty').mkdir()
    assert list(F.ensure_factory(tmp_path/'empty', categories=['grass'], **SMALL)) == ['grass']
