"""BTAD (beanTech Anomaly Detection): `ok` becomes `good`, `ko` stays as the one defect folder `ko`.

Archive `btad.zip`: `BTech_Dataset_transformed/<01|02|03>/train/ok`, `test/ok`, `test/ko`, `ground_truth/ko`. Image and
mask extensions differ by product (`.bmp` or `.png`), so masks are matched to images by file stem. Output per
product: `train/good`, `test/good`, `test/ko`, `ground_truth/ko/<stem>_mask.png` (rewritten as 0/255 PNG; any
non-zero pixel is anomalous). Images are moved unchanged (BMP or PNG, both read by the data layer).
Licence: not recorded in this project's reference; check the dataset's page.
"""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, copy_notices, fail, find_dir, images_in, move_file, resized_note, subdirs, write_mask

# URL, archive name and SHA-256 as recorded by anomalib (github.com/open-edge-platform/anomalib,
# src/anomalib/data/datamodules/image/btech.py).
URL = 'https://avires.dimi.uniud.it/papers/btad/btad.zip'
FILENAME = 'btad.zip'
SHA256 = '461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a'  # anomalib btech.py
CATEGORIES = ('01', '02', '03')
DEFECT = 'ko'


def _products(d: Path) -> list[Path]:
    "Sub-folders of `d` that are BTAD products (they have train/ok)."
    return [c for c in subdirs(d) if (c/'train'/'ok').is_dir()]


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds the product folders (01, 02, 03)."
    return find_dir(tree, lambda d: bool(_products(d)), 'product folders with train/ok (01, 02, 03)', 'BTAD')


def convert_product(prod: Path, out: Path) -> tuple[int, int]:
    "Write one product in the MVTec AD layout; return (masks resized, masks without an image)."
    dst = out/prod.name
    for src, folder in ((prod/'train'/'ok', 'train/good'), (prod/'test'/'ok', 'test/good')):
        for img in images_in(src): move_file(img, dst/folder/img.name)
    masks = {m.stem: m for m in images_in(prod/'ground_truth'/DEFECT)}
    resized = 0
    for img in images_in(prod/'test'/DEFECT):
        mask = masks.pop(img.stem, None)
        if mask is None: raise fail(f'BTAD image {img} has no mask {img.stem}.* in {prod/"ground_truth"/DEFECT}.')
        resized += write_mask(mask, dst/'ground_truth'/DEFECT/f'{img.stem}_mask.png', img)
        move_file(img, dst/'test'/DEFECT/img.name)
    return resized, len(masks)


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Write every product in the MVTec AD layout; return notes."
    resized = orphans = 0
    for prod in tqdm(_products(base), desc='BTAD products', unit='product', disable=quiet):
        r, o = convert_product(prod, out); resized += r; orphans += o
    copy_notices(base, out)
    notes = ["ok -> good, ko -> defect folder 'ko'; masks matched by stem and rewritten as 0/255 PNG"]
    if orphans: notes.append(f'{orphans} masks without a test image were ignored')
    return notes + resized_note(resized)


DATASET = Dataset(
    name='btad', title='BTAD', url=URL, filename=FILENAME, checksums={'sha256': SHA256},
    recorded_by='anomalib src/anomalib/data/datamodules/image/btech.py', locate=locate, convert=convert,
    categories=CATEGORIES, licence="check the dataset's page",
    approx_size='about 1.2 GB, size reported by third parties', page='https://avires.dimi.uniud.it/papers/btad/')
