"""The data layer and `anomaly-tutor data check` on a real MVTec AD layout that this project did not write."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anomaly_tutor.data import DatasetLayoutError, MVTecDataset, check_dataset, list_categories


def _png(path: Path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def build_mvtec_like(root: Path):
    """Two categories with the official MVTec AD names: `screw` (grayscale, like the real one) and `bottle` (RGB).
    Non-square images, a `good` test folder without masks, and the archive's loose text files at the root."""
    rng = np.random.default_rng(1)
    (root/'license.txt').parent.mkdir(parents=True, exist_ok=True)
    (root/'license.txt').write_text('CC BY-NC-SA 4.0')
    (root/'readme.txt').write_text('MVTec AD')
    spec = {'screw': ('L', ['manipulated_front', 'scratch_head', 'thread_side'], 5, 4, [2, 3, 1]),
            'bottle': ('RGB', ['broken_large', 'contamination'], 6, 3, [2, 2])}
    for cat, (mode, defects, n_train, n_good, n_def) in spec.items():
        shape = (30, 40) if mode == 'L' else (30, 40, 3)
        for i in range(n_train): _png(root/cat/'train'/'good'/f'{i:03d}.png', rng.integers(0, 256, shape, np.uint8))
        for i in range(n_good): _png(root/cat/'test'/'good'/f'{i:03d}.png', rng.integers(0, 256, shape, np.uint8))
        for d, n in zip(defects, n_def):
            for i in range(n):
                _png(root/cat/'test'/d/f'{i:03d}.png', rng.integers(0, 256, shape, np.uint8))
                m = np.zeros((30, 40), np.uint8); m[5:12, 8 + i:20] = 255
                _png(root/cat/'ground_truth'/d/f'{i:03d}_mask.png', m)
    return spec


def test_check_counts_real_layout(tmp_path, run_cli):
    spec = build_mvtec_like(tmp_path/'mvtec_anomaly_detection')
    res = run_cli('data', 'check', tmp_path/'mvtec_anomaly_detection')
    assert res.returncode == 0, res.stderr
    rows = {tuple(l.split()[:2]): l.replace(',', '').split() for l in res.stdout.splitlines()[1:] if not l.startswith(' ')}
    for cat, (_, defects, n_train, n_good, n_def) in spec.items():
        assert rows[(cat, 'train')][2] == str(n_train)
        assert rows[(cat, 'test')][2] == str(n_good + sum(n_def))
        for d, n in zip(defects, n_def): assert f'{d}={n}' in rows[(cat, 'test')]
        assert f'good={n_good}' in rows[(cat, 'test')]


def test_check_single_category(tmp_path, run_cli):
    build_mvtec_like(tmp_path)
    res = run_cli('data', 'check', tmp_path/'screw')
    assert res.returncode == 0, res.stderr
    assert [l.split()[:3] for l in res.stdout.splitlines()[1:3]] == [['screw', 'train', '5'], ['screw', 'test', '10']]


def test_dataset_reads_grayscale_as_rgb_and_masks(tmp_path):
    build_mvtec_like(tmp_path)
    assert list_categories(tmp_path) == ['bottle', 'screw']
    ds = MVTecDataset(tmp_path, 'screw', 'test', size=(16, 24))
    labels = [r.label for r in ds.records]
    assert labels.count(0) == 4 and labels.count(1) == 6
    for i in range(len(ds)):
        s = ds[i]
        assert s.image.shape == (3, 16, 24) and s.image.dtype == torch.float32
        assert torch.equal(s.image[0], s.image[1])  # grayscale replicated
        assert set(s.mask.unique().tolist()) <= {0.0, 1.0}
        assert (s.mask.sum() > 0) == bool(s.label)


def _assert_cli_error(run_cli, path, *needles):
    res = run_cli('data', 'check', path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert 'Traceback' not in res.stderr
    for n in needles: assert n in res.stderr, res.stderr


def test_error_root_missing(tmp_path, run_cli):
    _assert_cli_error(run_cli, tmp_path/'nowhere', 'does not exist', 'anomaly-tutor data factory', 'data_scripts')


def test_error_category_missing(tmp_path):
    build_mvtec_like(tmp_path)
    with pytest.raises(DatasetLayoutError, match="'cable' not found.*Available: bottle, screw"):
        MVTecDataset(tmp_path, 'cable')


def test_error_no_train_good(tmp_path, run_cli):
    build_mvtec_like(tmp_path)
    (tmp_path/'screw'/'train'/'good').rename(tmp_path/'screw'/'train'/'ok')
    _assert_cli_error(run_cli, tmp_path/'screw', 'no train/good')


def test_error_defect_without_mask(tmp_path, run_cli):
    build_mvtec_like(tmp_path)
    (tmp_path/'bottle'/'ground_truth'/'contamination'/'001_mask.png').unlink()
    _assert_cli_error(run_cli, tmp_path, 'contamination/001.png has no mask', '001_mask.png')


def test_error_mask_size_mismatch(tmp_path, run_cli):
    build_mvtec_like(tmp_path)
    _png(tmp_path/'screw'/'ground_truth'/'scratch_head'/'002_mask.png', np.zeros((31, 40), np.uint8))
    _assert_cli_error(run_cli, tmp_path, 'scratch_head/002_mask.png is 40x31 but its image is 40x30')


def test_error_unreadable_image(tmp_path, run_cli):
    build_mvtec_like(tmp_path)
    (tmp_path/'bottle'/'train'/'good'/'003.png').write_bytes(b'\x89PNG truncated')
    _assert_cli_error(run_cli, tmp_path, 'Cannot read image file', 'train/good/003.png')
    with pytest.raises(DatasetLayoutError, match='003.png'):
        [s for s in MVTecDataset(tmp_path, 'bottle', 'train')]


def test_rgba_becomes_rgb(tmp_path):
    build_mvtec_like(tmp_path)
    _png(tmp_path/'bottle'/'train'/'good'/'000.png', np.full((30, 40, 4), 200, np.uint8))
    assert MVTecDataset(tmp_path, 'bottle', 'train')[0].image.shape == (3, 30, 40)
    assert check_dataset(tmp_path/'bottle')[0].counts['train'] == {'good': 6}
