"""MVTec 3D-AD, RGB only: the `rgb` images and `gt` masks in the MVTec AD layout; the `xyz` point clouds are dropped.

Archive `mvtec_3d_anomaly_detection.tar.xz`: per category `train/good/{rgb,xyz}`, `validation/good/{rgb,xyz}`,
`test/<defect>/{rgb,gt,xyz}` (file names shared across the three sub-folders). Output per category: `train/good`
(from `train/good/rgb`), `test/<defect>` (from `rgb`), `ground_truth/<defect>/<stem>_mask.png` (from `gt`, rewritten
as 0/255 PNG). `validation/good/rgb` is kept as `<category>/validation/good`: the data layer reads only `train` and
`test`, so these defect-free images are neither trained on nor tested, and stay available (e.g. for early stopping or
thresholds); add them to `train/good` yourself if a paper trains on them. Licence: CC BY-NC-SA 4.0 (non-commercial).
"""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, copy_notices, fail, find_dir, images_in, move_file, resized_note, subdirs, write_mask

# URL, archive name and MD5 as recorded by anomalib (github.com/open-edge-platform/anomalib,
# src/anomalib/data/datamodules/depth/mvtec_3d.py).
URL = ('https://www.mydrive.ch/shares/45920/dd1eb345346df066c63b5c95676b961b/download/428824485-1643285832/'
       'mvtec_3d_anomaly_detection.tar.xz')
FILENAME = 'mvtec_3d_anomaly_detection.tar.xz'
MD5 = 'd8bb2800fbf3ac88e798da6ae10dc819'  # anomalib depth/mvtec_3d.py (MD5: 32 hex digits)
CATEGORIES = ('bagel', 'cable_gland', 'carrot', 'cookie', 'dowel', 'foam', 'peach', 'potato', 'rope', 'tire')


def _categories(d: Path) -> list[Path]:
    "Sub-folders of `d` that are MVTec 3D-AD categories (they have train/good/rgb)."
    return [c for c in subdirs(d) if (c/'train'/'good'/'rgb').is_dir()]


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds the category folders."
    return find_dir(tree, lambda d: bool(_categories(d)), 'category folders with train/good/rgb', 'MVTec 3D-AD')


def convert_category(cat: Path, out: Path) -> int:
    "Write one category's RGB images and masks; return the number of masks resized to their image."
    dst, resized = out/cat.name, 0
    for src, folder in ((cat/'train'/'good'/'rgb', 'train/good'), (cat/'validation'/'good'/'rgb', 'validation/good')):
        for img in images_in(src): move_file(img, dst/folder/img.name)
    for defect in subdirs(cat/'test') if (cat/'test').is_dir() else []:
        gts = {m.stem: m for m in images_in(defect/'gt')}
        for img in images_in(defect/'rgb'):
            if defect.name != 'good':
                if img.stem not in gts:
                    raise fail(f'MVTec 3D-AD image {img} has no mask {img.stem}.* in {defect/"gt"}.')
                resized += write_mask(gts[img.stem], dst/'ground_truth'/defect.name/f'{img.stem}_mask.png', img)
            move_file(img, dst/'test'/defect.name/img.name)
    return resized


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Write every category (RGB only); return notes."
    resized = sum(convert_category(c, out) for c in tqdm(_categories(base), desc='MVTec 3D-AD categories',
                                                          unit='cat', disable=quiet))
    copy_notices(base, out)
    return (['RGB only: xyz point clouds dropped; validation/good kept as <category>/validation/good '
             '(not read by the data layer)'] + resized_note(resized))


DATASET = Dataset(
    name='mvtec_3d', title='MVTec 3D-AD (RGB)', url=URL, filename=FILENAME, checksums={'md5': MD5},
    recorded_by='anomalib src/anomalib/data/datamodules/depth/mvtec_3d.py', locate=locate, convert=convert,
    categories=CATEGORIES, licence='CC BY-NC-SA 4.0 (non-commercial)',
    approx_size='several GB, size not recorded here', page='https://www.mvtec.com/company/research/datasets/mvtec-3d-ad')
