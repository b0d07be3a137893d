"""KolektorSDD2: one category `ksdd2`, defect-free training images only, test images split by their masks.

Archive `KolektorSDD2.zip`: `train/` and `test/` folders of `<id>.png` images with `<id>_GT.png` masks. An image is
defective when its mask has any positive pixel. The unsupervised setting trains on normal images only, so defective
training images are left out (their number is reported); the test set keeps both:
`ksdd2/train/good`, `ksdd2/test/good`, `ksdd2/test/defect`, `ksdd2/ground_truth/defect/<id>_mask.png` (0/255 PNG).

Checksum: neither the dataset's authors nor anomalib publish one. The SHA-256 and size below are *reported* by two
independent public download scripts (not confirmed); the script checks them, and checks the layout (train/ and test/
with `_GT` masks, a non-empty result). Licence: not recorded in this project's reference; check the dataset's page.
"""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, find_dir, images_in, mask_array, move_file, resized_note, write_mask

# The official link (redirects to https://data.vicos.si/datasets/KSDD/KolektorSDD2.zip), from the dataset's page
# (https://www.vicos.si/resources/kolektorsdd2/).
URL = 'https://go.vicos.si/kolektorsdd2'
FILENAME = 'KolektorSDD2.zip'
# REPORTED, not confirmed: SHA-256, MD5 and size given by two independent public download scripts (not anomalib,
# whose kolektor.py is the older KolektorSDD).
SHA256 = 'edcdb486809b24f1d17b785e30c52fafc5999554dd5fe18ddf77b61ceb6f36a8'  # reported
MD5 = '1ed0f628122776ace4965afa30dfe316'  # reported; not checked (the SHA-256 is), kept for reference
SIZE = 853_126_555  # bytes, reported
CATEGORY, DEFECT, GT = 'ksdd2', 'defect', '_GT'


def _has_pairs(d: Path) -> bool:
    "True if `d` has train/ and test/ with at least one `_GT` mask."
    return (d/'test').is_dir() and any(p.stem.endswith(GT) for p in images_in(d/'train'))


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds train/ and test/."
    return find_dir(tree, _has_pairs, 'train/ and test/ holding <id>.png and <id>_GT.png', 'KolektorSDD2')


def pairs(folder: Path) -> tuple[list[tuple[Path, Path]], int]:
    "(image, mask) pairs of one split folder, and the number of images without a `_GT` mask."
    imgs = [p for p in images_in(folder) if not p.stem.endswith(GT)]
    found = [(p, p.with_name(f'{p.stem}{GT}{p.suffix}')) for p in imgs]
    ok = [(i, m) for i, m in found if m.is_file()]
    return ok, len(found) - len(ok)


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Write the `ksdd2` category; return notes with the counts of each kind."
    n = dict(train_good=0, train_defective=0, test_good=0, test_defect=0, no_mask=0, resized=0)
    cat = out/CATEGORY
    for split in ('train', 'test'):
        ps, n_missing = pairs(base/split); n['no_mask'] += n_missing
        for img, gt in tqdm(ps, desc=f'KSDD2 {split}', unit='img', disable=quiet):
            if not mask_array(gt).any():
                move_file(img, cat/split/'good'/img.name); n[f'{split}_good'] += 1
            elif split == 'train': n['train_defective'] += 1  # left out: unsupervised training is normal-only
            else:
                n['resized'] += write_mask(gt, cat/'ground_truth'/DEFECT/f'{img.stem}_mask.png', img)
                move_file(img, cat/'test'/DEFECT/img.name); n['test_defect'] += 1
    notes = [f"train: {n['train_good']} defect-free kept, {n['train_defective']} defective left out "
             f"(unsupervised setting); test: {n['test_good']} good, {n['test_defect']} defective"]
    if n['no_mask']: notes.append(f"{n['no_mask']} images without a {GT} mask were skipped")
    return notes + resized_note(n['resized'])


DATASET = Dataset(
    name='ksdd2', title='KolektorSDD2', url=URL, filename=FILENAME, checksums={'sha256': SHA256}, size=SIZE,
    confirmed=False, recorded_by='reported by two independent public download scripts (not confirmed)',
    locate=locate, convert=convert, categories=(CATEGORY,), licence="check the dataset's page",
    approx_size='853,126,555 bytes, reported', page='https://www.vicos.si/resources/kolektorsdd2/')
