"""The public API of `anomaly_tutor.metrics`, used the way outside code uses it."""
import numpy as np
import pytest
import torch

from anomaly_tutor import metrics as M


def _case(seed, n=3, size=12, quantise=False):
    maps, masks = M.fake_maps_masks(n, size, p_defect=.8, seed=seed)
    if not masks.any(): masks[0, 2:4, 2:5] = 1
    if quantise: maps = np.round(maps * 4) / 4
    return maps, masks


def _brute_aupro(maps, masks, fpr_limit=0.3):
    "Independent of the chapter: loop over every distinct score, regions from scipy, official trapezoid."
    from scipy import ndimage
    regions = []
    for i, m in enumerate(masks.astype(bool)):
        lab, k = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(i, lab == j) for j in range(1, k + 1)]
    normal = masks == 0
    xs, ys = [0.], [0.]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        p = maps >= t
        xs.append(min((p & normal).sum() / normal.sum(), 1.))
        ys.append(min(np.mean([(p[i] & r).sum() / r.sum() for i, r in regions]), 1.))
    xs.append(1.); ys.append(1.)
    area = 0.
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 >= fpr_limit: break
        if x1 > fpr_limit: y1, x1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0), fpr_limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / fpr_limit


@pytest.mark.parametrize('seed,quantise', [(0, False), (1, True), (2, False), (3, True), (4, True)])
def test_aupro_matches_brute_force(seed, quantise):
    maps, masks = _case(seed, quantise=quantise)
    want = _brute_aupro(maps, masks)
    assert M.aupro(maps, masks) == pytest.approx(want, abs=1e-4)
    assert M.aupro_reference(maps, masks) == pytest.approx(want, abs=1e-4)
    assert M.aupro(maps, masks, fpr_limit=1.) == pytest.approx(_brute_aupro(maps, masks, 1.), abs=1e-4)


def test_numpy_and_torch_give_the_same_floats():
    maps, masks = _case(5, n=6, size=16)
    labels = masks.any(axis=(1, 2)).astype(int); scores = maps.max(axis=(1, 2))
    tm, tk = torch.from_numpy(maps), torch.from_numpy(masks)
    for f, args_np, args_t in [
            (M.image_auroc, (scores, labels), (torch.from_numpy(scores), torch.from_numpy(labels))),
            (M.f1_max, (scores, labels), (torch.from_numpy(scores), torch.from_numpy(labels))),
            (M.pixel_auroc, (maps, masks), (tm, tk)), (M.pixel_ap, (maps, masks), (tm, tk)),
            (M.pixel_f1_max, (maps, masks), (tm, tk)), (M.aupro, (maps, masks), (tm, tk)),
            (M.aupro, (maps, masks), (tm[:, None], tk[:, None].bool()))]:
        a, b = f(*args_np), f(*args_t)
        assert type(a) is float and type(b) is float and a == b, f.__name__


def test_pixel_metrics_against_sklearn():
    from sklearn.metrics import roc_auc_score, average_precision_score
    maps, masks = _case(6, n=5, size=20, quantise=True)
    res = M.pixel_metrics(maps[:, None], masks[:, None])
    assert set(res) == {'pixel_auroc', 'pixel_ap', 'aupro', 'pixel_f1_max'}
    assert res['pixel_auroc'] == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)
    assert res['pixel_ap'] == pytest.approx(average_precision_score(masks.ravel(), maps.ravel()), abs=1e-9)
    assert res['aupro'] == pytest.approx(M.aupro(maps, masks), abs=1e-12)


def test_pro_curve_shape():
    maps, masks = _case(7)
    fpr, pro = M.pro_curve(maps, masks)
    assert fpr.shape == pro.shape and (fpr[0], pro[0], fpr[-1], pro[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(pro) >= 0).all()


@pytest.mark.parametrize('call', [
    lambda: M.image_auroc([.1, .2, .3], [1, 1, 1]),                        # one class: AUROC undefined
    lambda: M.image_auroc([.1, .2], [0, 1, 1]),                            # length mismatch
    lambda: M.pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5))),       # shape mismatch
    lambda: M.pixel_ap(np.zeros((2, 4, 4)), np.full((2, 4, 4), 255)),      # non-binary mask
    lambda: M.aupro(np.random.rand(2, 4, 4), np.zeros((2, 4, 4))),         # no defect anywhere
    lambda: M.aupro(np.random.rand(2, 4, 4), np.eye(4)[None].repeat(2, 0), fpr_limit=0),
    lambda: M.pixel_auroc(np.full((1, 2, 2), np.nan), np.eye(2)[None]),    # NaN scores
])
def test_errors_are_value_errors(call):
    with pytest.raises(ValueError):
        call()


def test_scoring_and_msgms():
    maps = torch.rand(3, 1, 32, 32)
    assert M.image_scores(maps, 'max').shape == (3,)
    assert isinstance(M.image_scores(maps.numpy(), 'draem'), np.ndarray)
    img = torch.rand(2, 3, 32, 32)
    assert M.msgms_map(img, img).abs().max() < 1e-6 and M.msgms_map(img, img.flip(-1)).shape == (2, 1, 32, 32)


def test_diagonal_pixels_are_one_region():
    masks = np.array([[[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]])          # 8-connected: 2 regions, 4-connected: 3
    maps = np.array([[[.9, .0, .1, .2], [.3, .4, .5, .6], [.05, .15, .25, .35]]])
    fpr, pro = M.pro_curve(maps, masks)
    assert pro[1] == pytest.approx(.25)                                      # .9 covers half of the diagonal region
    assert M.aupro(maps, masks) == pytest.approx(_brute_aupro(maps, masks), abs=1e-12)
