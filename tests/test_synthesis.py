"""Anomaly synthesis (nbs/10_synthesis.ipynb and its chapters nbs/10a..10f, nbs/11_synthesis_explorer.ipynb): the
properties every generator must keep."""
import importlib.util, re, sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from anomaly_tutor import synthesis as S
from anomaly_tutor.factory import CATEGORIES as SCENES, downsample2, render_normal

ROOT = Path(__file__).resolve().parent.parent
SIZE = 128
SEEDS = range(6)
EXACT = ['perlin', 'perlin_local', 'cutpaste', 'scar', 'mask', 'patch_blend']  # outside the mask nothing changes


@pytest.fixture(scope='module')
def data():
    "Four normal textures (brick) and objects (pill, with estimated foregrounds); the first of each is damaged."
    tex = [render_normal('brick', np.random.default_rng(s), SIZE) for s in range(4)]
    obj = [render_normal('pill', np.random.default_rng(s), SIZE) for s in range(4)]
    return dict(texture=(tex, None), object=(obj, [S.estimate_foreground(o) for o in obj]))


def call(gen, data, kind, seed, **kw):
    imgs, fgs = data[kind]
    return gen(imgs[0], np.random.default_rng(seed), others=imgs[1:], fg=None if fgs is None else fgs[0],
               others_fg=None if fgs is None else fgs[1:], anomaly=True, **kw)


GENS = S.all_generators()


# --- the package: every name of the single module it replaced is still importable from `anomaly_tutor.synthesis` -------

# `__all__` of anomaly_tutor/synthesis.py before chapter 10 was split into the `synthesis` package (issue 21, item 5)
OLD_NAMES = ['SKIMAGE_SOURCES', 'PROCEDURAL_KINDS', 'DRAEM_AUGMENTATIONS', 'as_image', 'as_mask', 'img_to_u8',
             'absdiff_max', 'merge_u8', 'Synth', 'show_synth', 'Synthesizer', 'is_same_image', 'pick_other', 'fade',
             'lattice_gradients', 'perlin_noise', 'rotate_image', 'perlin_mask', 'skimage_photo',
             'random_crop_resize', 'SkimageSource', 'fractal_noise', 'palette', 'voronoi_cells',
             'procedural_texture', 'ProceduralSource', 'find_dtd_images', 'TextureSource', 'MixedSource',
             'default_source', 'aug_gamma', 'aug_brightness', 'aug_sharpness', 'aug_hue_saturation', 'aug_solarize',
             'aug_posterize', 'aug_invert', 'aug_autocontrast', 'aug_equalize', 'aug_rotate', 'augment_texture',
             'PerlinSynthesis', 'border_pixels', 'backdrop_distance', 'largest_component', 'fill_small_holes',
             'estimate_foreground', 'adjust_colour', 'colour_jitter', 'CutPaste', 'rotate_expand', 'CutPasteScar',
             'poisson_blend', 'NSA', 'changed_mask', 'nsa_label', 'nsa_logistic_label', 'MaskSynthesis', 'integral',
             'fitting_corners', 'place_box', 'PatchBlend', 'MultiSynthesis', 'macow_synthesis', 'mala_synthesis',
             'siamese_synthesis', 'SynthBatch', 'synthesize_batch', 'all_generators', 'synthesis_gallery']


def test_every_name_of_the_old_module_is_still_exported():
    assert len(OLD_NAMES) == 70
    assert [n for n in OLD_NAMES if not hasattr(S, n)] == []
    assert set(OLD_NAMES) <= set(S.__all__) and len(S.__all__) == len(set(S.__all__))
    star = {}
    exec('from anomaly_tutor.synthesis import *', star)
    assert set(OLD_NAMES) <= set(star)


def test_package_modules_import_only_earlier_ones():
    "core < noise < sources < paste < blend < batches: a module imports from earlier modules only, never circularly."
    order = ['core', 'noise', 'sources', 'paste', 'blend', 'batches']
    pkg = ROOT/'anomaly_tutor'/'synthesis'
    for i, m in enumerate(order):
        text = (pkg/f'{m}.py').read_text()
        imported = set(re.findall(r'^from \.(\w+) import', text, re.M))
        assert imported <= set(order[:i]), (m, imported)


# --- the contract of every generator --------------------------------------------------------------------------------

@pytest.mark.parametrize('kind', ['texture', 'object'])
@pytest.mark.parametrize('name', list(GENS))
def test_binary_nonempty_mask_and_types(name, kind, data):
    for s in SEEDS:
        r = call(GENS[name], data, kind, s)
        assert r.image.shape == (SIZE, SIZE, 3) and r.image.dtype == np.float32
        assert 0 <= r.image.min() and r.image.max() <= 1
        assert r.mask.shape == (SIZE, SIZE) and r.mask.dtype == bool
        assert r.mask.any() and r.label == 1 and r.method == name
        assert not np.array_equal(r.image, S.as_image(data[kind][0][0])), 'an anomaly must change the image'


@pytest.mark.parametrize('kind', ['texture', 'object'])
@pytest.mark.parametrize('name', EXACT)
def test_outside_mask_unchanged(name, kind, data):
    normal = S.as_image(data[kind][0][0])
    for s in SEEDS:
        r = call(GENS[name], data, kind, s)
        assert np.array_equal(r.image[~r.mask], normal[~r.mask])


@pytest.mark.parametrize('kind', ['texture', 'object'])
def test_nsa_mask_covers_changed_pixels(kind, data):
    normal = S.as_image(data[kind][0][0])
    for s in range(10):
        r = call(S.NSA(), data, kind, s)
        changed = (np.abs(r.image - normal) > 2 / 255).any(-1)
        assert (changed & r.mask).sum() >= 0.95 * changed.sum()


@pytest.mark.parametrize('kind', ['texture', 'object'])
@pytest.mark.parametrize('name', list(GENS))
def test_same_seed_same_output(name, kind, data):
    a, b, c = call(GENS[name], data, kind, 11), call(GENS[name], data, kind, 11), call(GENS[name], data, kind, 12)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert not (np.array_equal(a.image, c.image) and np.array_equal(a.mask, c.mask))


@pytest.mark.parametrize('gen', [S.PerlinSynthesis(region='local'), S.MaskSynthesis(), S.PatchBlend(), S.NSA(fg_only=True)],
                         ids=['perlin_local', 'mask', 'patch_blend', 'nsa_fg_only'])
def test_object_anomalies_inside_foreground(gen, data):
    normal, fg = S.as_image(data['object'][0][0]), data['object'][1][0]
    for s in range(10):
        r = call(gen, data, 'object', s)
        assert r.mask.any() and not (r.mask & ~fg).any()
        assert np.array_equal(r.image[~fg], normal[~fg]), 'the backdrop must not change'


def test_uint8_and_float_inputs_agree(data):
    img = data['texture'][0][0]
    for g in GENS.values():
        a = g(img, np.random.default_rng(0), others=data['texture'][0][1:], anomaly=True)
        b = g(img.astype(np.float32) / 255, np.random.default_rng(0), others=data['texture'][0][1:], anomaly=True)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    with pytest.raises(ValueError, match=r'\[0, 1\]'): GENS['cutpaste'](img.astype(np.float32), np.random.default_rng(0))


# --- the Siamese rule: the patch never comes from the destination ---------------------------------------------------

def test_patch_source_never_the_destination(data):
    imgs, fgs = data['object']; d = imgs[0]
    for others in ([d], [d, d.copy()], [d, d[...].view(), d.astype(np.float32) / 255], []):
        with pytest.raises(ValueError, match='different from the destination|other normal images'):
            S.PatchBlend()(d, np.random.default_rng(0), others=others, fg=fgs[0])
    with pytest.raises(ValueError): S.NSA()(d, np.random.default_rng(0), others=[d])


def test_patch_content_comes_from_the_other_image(data):
    "Only one `other` differs from the destination: a flat source, so every blended patch is smooth."
    d, fg = data['object'][0][0], data['object'][1][0]
    flat = np.full_like(d, 90); lap = lambda a: np.abs(cv2.Laplacian(S.as_image(a), cv2.CV_32F)).sum(-1)
    for s in range(8):
        r = S.PatchBlend(n_patches=(1, 1), size=(0.15, 0.15))(d, np.random.default_rng(s), others=[d, d.copy(), flat],
                                                              fg=fg, others_fg=[fg, fg, np.ones_like(fg)])
        inner = cv2.erode(r.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert inner.any() and lap(r.image)[inner].mean() < 0.5 * lap(d)[inner].mean()


def test_pick_other_excludes_identity():
    a = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    other = a[::-1].copy()
    for s in range(20):
        o, _ = S.pick_other(a, a, [a, a.copy(), other], None, np.random.default_rng(s))
        assert np.array_equal(o, other)


# --- faithful details ---------------------------------------------------------------------------------------------

def test_perlin_noise_matches_formula():
    g = S.lattice_gradients((2, 3), np.random.default_rng(0)); H, W = 12, 18
    def ref(py, px):
        y, x = py * 2 / H, px * 3 / W; i, j = int(y), int(x); ty, tx = y - i, x - j
        n = lambda a, b: g[i + a, j + b, 0] * (ty - a) + g[i + a, j + b, 1] * (tx - b)
        f = lambda t: 6 * t ** 5 - 15 * t ** 4 + 10 * t ** 3
        lo, hi = n(0, 0) + f(ty) * (n(1, 0) - n(0, 0)), n(0, 1) + f(ty) * (n(1, 1) - n(0, 1))
        return np.sqrt(2) * (lo + f(tx) * (hi - lo))
    want = np.array([[ref(y, x) for x in range(W)] for y in range(H)])
    np.testing.assert_allclose(S.perlin_noise((H, W), (2, 3), g=g), want, atol=1e-5)


def test_perlin_scales_and_threshold(monkeypatch):
    seen = []
    real = S.perlin_noise
    spy = lambda shape, res, rng=None, g=None: seen.append(res) or real(shape, res, rng, g)
    monkeypatch.setattr(S.noise, 'perlin_noise', spy)   # where `perlin_mask` looks it up
    for s in range(300): S.perlin_mask((64, 64), np.random.default_rng(s))
    assert {r for res in seen for r in res} == {1, 2, 4, 8, 16, 32}
    assert len({res for res in seen if res[0] != res[1]}) > 0, 'resolutions are drawn per axis'


def test_perlin_beta_convention_and_skip(data):
    img = data['texture'][0][0]; white = np.full_like(img, 255); betas = []
    for s in range(30):
        r = S.PerlinSynthesis(n_aug=0)(img, np.random.default_rng(s), source=white, anomaly=True)
        I = S.as_image(img)[r.mask]; ratio = (r.image[r.mask] - 1) / (I - 1)
        assert np.ptp(ratio) < 1e-3
        betas.append(ratio.mean())
    assert 0 <= min(betas) and max(betas) < 0.8 and max(betas) > 0.5  # beta ~ U[0, 0.8): opacity 1 - beta
    labels = [S.PerlinSynthesis()(img, np.random.default_rng(s)).label for s in range(300)]
    assert 0.4 < np.mean(labels) < 0.6
    assert all(S.PerlinSynthesis(p_skip=0.0)(img, np.random.default_rng(s)).label for s in range(20))


def test_draem_augmentation_draws_three_distinct_ops(monkeypatch):
    calls = []
    ops = tuple((lambda k: (lambda a, rng: calls.append(k) or a))(k) for k in range(10))
    a = np.zeros((4, 4, 3), np.uint8)
    for s in range(50):
        calls.clear(); S.augment_texture(a, np.random.default_rng(s), 3, ops)
        assert len(calls) == 3 and len(set(calls)) == 3
    for op in S.DRAEM_AUGMENTATIONS:
        src = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        out = op(src, np.random.default_rng(1))
        assert out.shape == src.shape and out.dtype == np.uint8


def test_colour_jitter_matches_torchvision():
    TF = pytest.importorskip('torchvision.transforms.functional')
    x = np.random.default_rng(0).random((16, 20, 3)).astype(np.float32); xt = torch.from_numpy(x).permute(2, 0, 1)
    cases = [(dict(brightness=1.07), TF.adjust_brightness(xt, 1.07)), (dict(contrast=0.92), TF.adjust_contrast(xt, 0.92)),
             (dict(saturation=1.1), TF.adjust_saturation(xt, 1.1)), (dict(hue=0.08), TF.adjust_hue(xt, 0.08))]
    for kw, ref in cases:
        np.testing.assert_allclose(S.adjust_colour(x, **kw), ref.permute(1, 2, 0).numpy(), atol=2e-3)


def test_cutpaste_sizes(data):
    img = data['texture'][0][0]
    areas = [S.CutPaste()(img, np.random.default_rng(s)).mask.mean() for s in range(100)]
    assert 0.015 < min(areas) and max(areas) < 0.16
    px = [S.CutPasteScar(ref_size=SIZE)(img, np.random.default_rng(s)).mask.sum() for s in range(100)]
    assert min(px) >= 0.8 * 2 * 10 and max(px) <= 1.1 * 16 * 25   # the rotated strip keeps its area


def test_nsa_own_label_and_sizes(data):
    imgs, fgs = data['object']
    r = S.NSA(label='nsa')(imgs[0], np.random.default_rng(0), others=imgs[1:], fg=fgs[0], others_fg=fgs[1:])
    assert r.mask.any()
    with pytest.raises(ValueError, match='changed'): S.NSA(label='soft')
    lo, hi, hw = S.NSA()._sizes(256, 256, np.random.default_rng(0))
    assert lo == (8, 8) and hi == (102, 102) and all(8 <= h <= 102 for h in hw)


def test_seamless_clone_mask_is_not_reused():
    "cv2.seamlessClone writes into its mask; poisson_blend must give the same result twice."
    rng = np.random.default_rng(0)
    dst = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8); patch = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    om = np.zeros((30, 30), bool); om[1:-1, 1:-1] = True
    a, b = S.poisson_blend(dst, patch, om, 10, 12), S.poisson_blend(dst, patch, om, 10, 12)
    assert np.array_equal(a, b) and not np.array_equal(a, dst) and om.sum() == 28 * 28
    changed = (a != dst).any(-1); region = np.zeros((64, 64), bool); region[10:40, 12:42] = om
    assert not (changed & ~region).any()


def test_mask_synthesis_parameters(data):
    img = data['texture'][0][0]
    for s in range(20):
        r = S.MaskSynthesis(n_regions=(2, 2), scale=(0.1, 0.1))(img, np.random.default_rng(s))
        n, _ = cv2.connectedComponents(r.mask.astype(np.uint8))
        assert 2 <= n <= 3 and r.mask.sum() <= 2 * 13 * 13 and (r.image[r.mask] == 0).all()
    r = S.MaskSynthesis(fill='noise')(img, np.random.default_rng(0))
    assert r.mask.any() and r.image[r.mask].std() > 0.2


# --- sources and foreground ---------------------------------------------------------------------------------------

def test_skimage_sources_load_offline():
    src = S.SkimageSource()
    assert {'brick', 'grass', 'gravel', 'camera', 'coffee', 'astronaut', 'chelsea', 'rocket'} <= set(src.names)
    for name, photo in src.photos.items():
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8, name
    a = src(np.random.default_rng(0), (40, 50)); assert a.shape == (40, 50, 3)
    for k in S.PROCEDURAL_KINDS:
        t = S.procedural_texture(k, np.random.default_rng(0), (64, 64)); assert t.shape == (64, 64, 3) and t.std() > 5


def test_dtd_texture_source(tmp_path):
    from PIL import Image
    for c in ('banded', 'cracked'):
        (tmp_path/'dtd'/'images'/c).mkdir(parents=True)
        for i in range(2): Image.fromarray(np.full((30, 40, 3), 40 * i + 60, np.uint8)).save(tmp_path/'dtd'/'images'/c/f'{c}_{i}.jpg')
    ts = S.TextureSource(tmp_path/'dtd')
    assert len(ts) == 4 and ts.classes == ['banded', 'cracked']
    assert ts(np.random.default_rng(0), (64, 32)).shape == (64, 32, 3)
    r = S.PerlinSynthesis(ts)(render_normal('grass', np.random.default_rng(0), 64), np.random.default_rng(0), anomaly=True)
    assert r.mask.any()
    with pytest.raises(FileNotFoundError, match='data_scripts dtd'): S.TextureSource(tmp_path/'empty')


@pytest.mark.parametrize('cat', ['pill', 'washer', 'chip'])
def test_foreground_estimator_on_factory_objects(cat):
    for s in range(5):
        sc = SCENES[cat].scene(np.random.default_rng(s), SIZE); _, sup = SCENES[cat].render(sc)
        ref = downsample2(sup) > 0.5; fg = S.estimate_foreground(render_normal(cat, np.random.default_rng(s), SIZE))
        cover, excl = (fg & ref).sum() / ref.sum(), (~fg & ~ref).sum() / (~ref).sum()
        assert cover > 0.97 and excl > 0.9, (cat, s, cover, excl)
        if cat != 'chip': assert (fg & ref).sum() / (fg | ref).sum() > 0.85   # the chip's reference has no pins
    assert not S.estimate_foreground(render_normal('washer', np.random.default_rng(0), SIZE))[SIZE // 2, SIZE // 2], 'the hole'


# --- multi-synthesis and batches ------------------------------------------------------------------------------------

def test_multi_synthesis_reports_and_weights(data):
    ms = S.macow_synthesis()
    imgs, fgs = data['object']
    got = [ms(imgs[0], np.random.default_rng(s), others=imgs[1:], fg=fgs[0], others_fg=fgs[1:]).method for s in range(60)]
    assert set(got) == {'perlin', 'nsa', 'mask', 'cutpaste'}
    ms.weights = [1, 0, 0, 3]
    got = [ms(imgs[0], np.random.default_rng(s), fg=fgs[0]).method for s in range(200)]
    assert set(got) == {'perlin', 'cutpaste'} and 0.65 < got.count('cutpaste') / 200 < 0.85
    assert ms(imgs[0], np.random.default_rng(0), which='mask', fg=fgs[0]).method == 'mask'
    with pytest.raises(ValueError): ms.weights = [1, 1]


def test_synthesize_batch(data):
    imgs, fgs = data['object']
    x = torch.from_numpy(np.stack([S.as_image(i) for i in imgs])).permute(0, 3, 1, 2).contiguous()
    ms = S.macow_synthesis()
    b1 = S.synthesize_batch(x, ms, np.random.default_rng(0), fg=np.stack(fgs), which=[3, 2, 1, 0])
    b2 = S.synthesize_batch(x, ms, np.random.default_rng(0), fg=torch.from_numpy(np.stack(fgs)), which=[3, 2, 1, 0])
    assert b1.images.shape == (4, 3, SIZE, SIZE) and b1.masks.shape == (4, 1, SIZE, SIZE)
    assert b1.which.tolist() == [3, 2, 1, 0] and b1.names == ['perlin', 'nsa', 'mask', 'cutpaste']
    assert torch.equal(b1.images, b2.images) and torch.equal(b1.masks, b2.masks)
    assert set(b1.masks.unique().tolist()) == {0.0, 1.0} and (b1.masks.flatten(1).amax(1) == 1).all()
    keep = (b1.masks == 0).expand(-1, 3, -1, -1)
    for i in (0, 1, 3):   # cutpaste, mask, perlin: nothing changes outside the mask
        assert torch.equal(b1.images[i][keep[i]], x[i][keep[i]])
    b3 = S.synthesize_batch(x.half(), S.PerlinSynthesis(), np.random.default_rng(1))
    assert b3.images.dtype == torch.float16 and set(b3.which.tolist()) <= {-1, 0}
    with pytest.raises(ValueError, match='B x 3 x H x W'): S.synthesize_batch(x[0], ms, np.random.default_rng(0))


# --- explorer, gallery, benchmark -----------------------------------------------------------------------------------

def test_explorer_builds():
    from anomaly_tutor.synthesis_explorer import explore, synthesis_explorer
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    box = synthesis_explorer(size=64)
    assert box.result.label == 1 and set(box.controls) == {'method', 'category', 'seed', 'params'}
    box.controls['method'].value = 'patch_blend'; assert box.result.method == 'patch_blend'
    assert explore('scar', 'chip', 3, 64).label == 1
    plt.close('all')


def test_gallery_has_every_generator(data):
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig = S.synthesis_gallery(data['texture'][0], data['object'][0])
    titles = [ax.get_title() for ax in fig.axes]
    assert all(name in titles for name in GENS) and len(fig.axes) == 4 * (len(GENS) + 1)
    plt.close(fig)


def test_benchmark_script_runs(capsys):
    spec = importlib.util.spec_from_file_location('synthesis_benchmark', ROOT/'benchmarks'/'synthesis_benchmark.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    threads = cv2.getNumThreads(), torch.get_num_threads()
    try: mod.main(['--size', '64', '--n', '2', '--repeats', '1', '--no-pin'])
    finally: cv2.setNumThreads(threads[0]); torch.set_num_threads(threads[1])
    out = capsys.readouterr().out
    assert all(name in out for name in GENS) and 'img/s' in out
