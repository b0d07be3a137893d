"""MVTec AD: already in the target layout, so it is only verified, extracted and moved into place.

Archive `mvtec_anomaly_detection.tar.xz` (~4.9 GB): the 15 category folders (`<category>/train/good`, `test/<defect>`,
`ground_truth/<defect>/<stem>_mask.png`, masks already 0/255) and `license.txt`, `readme.txt` at its top level.
Licence: CC BY-NC-SA 4.0 (non-commercial).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, copy_notices, find_dir, subdirs

# URL, archive name and SHA-256 as recorded by anomalib (github.com/open-edge-platform/anomalib,
# src/anomalib/data/datamodules/image/mvtecad.py).
URL = ('https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/'
       'mvtec_anomaly_detection.tar.xz')
FILENAME = 'mvtec_anomaly_detection.tar.xz'
SHA256 = 'cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d'  # anomalib mvtecad.py
CATEGORIES = ('bottle', 'cable', 'capsule', 'carpet', 'grid', 'hazelnut', 'leather', 'metal_nut', 'pill', 'screw',
              'tile', 'toothbrush', 'transistor', 'wood', 'zipper')


def _categories(d: Path) -> list[Path]:
    "Sub-folders of `d` that are MVTec categories (they have train/good)."
    return [c for c in subdirs(d) if (c/'train'/'good').is_dir()]


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds the category folders."
    return find_dir(tree, lambda d: bool(_categories(d)), 'category folders (<category>/train/good)', 'MVTec AD')


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Move the category folders as they are (the archive is already in the MVTec AD layout), with the licence."
    out.mkdir(parents=True, exist_ok=True)
    for c in tqdm(_categories(base), desc='categories', unit='cat', disable=quiet):
        shutil.move(str(c), str(out/c.name))
    kept = copy_notices(base, out)
    return [f"kept the archive's {', '.join(kept)}"] if kept else []


DATASET = Dataset(
    name='mvtec_ad', title='MVTec AD', url=URL, filename=FILENAME, checksums={'sha256': SHA256},
    recorded_by='anomalib src/anomalib/data/datamodules/image/mvtecad.py', locate=locate, convert=convert,
    categories=CATEGORIES, licence='CC BY-NC-SA 4.0 (non-commercial)', approx_size='about 4.9 GB',
    page='https://www.mvtec.com/company/research/datasets/mvtec-ad')
