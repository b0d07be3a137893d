"""DTD (Describable Textures Dataset): kept as a texture folder, the anomaly source of DRAEM-style synthesis.

Archive `dtd-r1.0.1.tar.gz`: `dtd/images/<class>/*.jpg` (47 classes, 5,640 images), `dtd/labels/`, `dtd/imdb/`.
Output: `<root>/images/<class>/*.jpg` (plus `labels/` and `imdb/` as they are). It is not an MVTec-layout dataset,
so `anomaly-tutor data check` does not apply to it. Licence: not recorded in this project's reference; check the
dataset's page.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ._common import Dataset, copy_notices, find_dir, images_in, subdirs

# URL and archive name from the official page as recorded in torchvision's `DTD` dataset; MD5 from torchvision,
# SHA-256 from anomalib's DRAEM model (src/anomalib/models/image/draem).
URL = 'https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz'
FILENAME = 'dtd-r1.0.1.tar.gz'
MD5 = 'fff73e5086ae6bdbea199a49dfb8a4c1'  # torchvision DTD
SHA256 = 'e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205'  # anomalib DRAEM
KEEP = ('images', 'labels', 'imdb')


def _has_classes(d: Path) -> bool:
    "True if `d/images` has class folders with images."
    return (d/'images').is_dir() and any(images_in(c) for c in subdirs(d/'images'))


def locate(tree: Path) -> Path:
    "The archive's `dtd` folder (the one with images/<class>/)."
    return find_dir(tree, _has_classes, 'images/<class>/*.jpg', 'DTD')


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Move images/, labels/ and imdb/ as they are; return notes."
    out.mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (base/name).is_dir(): shutil.move(str(base/name), str(out/name))
    copy_notices(base, out)
    return ['kept as a texture folder: images/<class>/*.jpg (not an MVTec-layout dataset)']


DATASET = Dataset(
    name='dtd', title='DTD', url=URL, filename=FILENAME, checksums={'sha256': SHA256, 'md5': MD5},
    recorded_by='torchvision DTD (MD5), anomalib DRAEM (SHA-256)', locate=locate, convert=convert,
    layout='textures', licence="check the dataset's page", approx_size='about 0.6 GB, size reported by third parties',
    page='https://www.robots.ox.ac.uk/~vgg/data/dtd/')
