"""VisA: converted through its official one-class split file `split_csv/1cls.csv`.

Archive `VisA_20220922.tar`: per object `<object>/Data/Images/Normal/*.JPG`, `Data/Images/Anomaly/*.JPG`,
`Data/Masks/Anomaly/*.png`, plus `split_csv/1cls.csv` (columns object, split, label, image, mask; paths relative to
the archive's root). The masks are not 0/255: any non-zero pixel is anomalous, so they are rewritten as 0/255 PNGs.
VisA's anomalies carry no per-image defect type in this split, so every one goes to a single defect folder `bad`:
`<object>/train/good`, `test/good`, `test/bad`, `ground_truth/bad/<stem>_mask.png`. Images are moved unchanged (JPG).
Licence: CC BY-NC-SA 4.0 (non-commercial).
"""
from __future__ import annotations

import csv
from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, copy_notices, fail, find_dir, move_file, resized_note, write_mask

# URL, archive name and SHA-256 as recorded by anomalib (github.com/open-edge-platform/anomalib,
# src/anomalib/data/datamodules/image/visa.py).
URL = 'https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar'
FILENAME = 'VisA_20220922.tar'
SHA256 = '2eb8690c803ab37de0324772964100169ec8ba1fa3f7e94291c9ca673f40f362'  # anomalib visa.py
SPLIT = 'split_csv/1cls.csv'
COLUMNS = ('object', 'split', 'label', 'image', 'mask')
DEFECT = 'bad'
CATEGORIES = ('candle', 'capsules', 'cashew', 'chewinggum', 'fryum', 'macaroni1', 'macaroni2', 'pcb1', 'pcb2', 'pcb3',
              'pcb4', 'pipe_fryum')


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds `split_csv/1cls.csv`."
    return find_dir(tree, lambda d: (d/SPLIT).is_file(), SPLIT, 'VisA')


def read_split(path: Path) -> list[dict]:
    "The rows of the split file, stripped; refuse a file without the official columns."
    with open(path, newline='', encoding='utf-8-sig') as f:
        reader = csv.DictReader(f)
        if not set(COLUMNS) <= set(reader.fieldnames or ()):
            raise fail(f'{path} has columns {reader.fieldnames}, expected {", ".join(COLUMNS)}.')
        return [{k: (r.get(k) or '').strip() for k in COLUMNS} for r in reader]


def _source(base: Path, rel: str, what: str) -> Path:
    "The archive file a split row names; refuse a row naming a missing file."
    p = base/rel
    if not rel or not p.is_file(): raise fail(f"{SPLIT} names {what} '{rel}', which is not in the archive.")
    return p


def convert_row(base: Path, out: Path, row: dict) -> tuple[str, bool]:
    "Place one split row's image (and mask); return (what was done, whether the mask was resized)."
    obj, split, normal = row['object'], row['split'].lower(), row['label'].lower() == 'normal'
    if split not in ('train', 'test'): raise fail(f"{SPLIT} has split '{row['split']}', expected train or test.")
    if split == 'train' and not normal: return 'skipped', False  # unsupervised: training images are normal only
    img = _source(base, row['image'], 'image')
    folder = 'good' if normal else DEFECT
    dst = out/obj/split/folder/img.name
    resized = False if normal else write_mask(_source(base, row['mask'], 'mask'),
                                              out/obj/'ground_truth'/DEFECT/f'{img.stem}_mask.png', img)
    move_file(img, dst)
    return f'{split}/{folder}', resized


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Write the MVTec AD layout from the official 1cls split; return notes."
    rows = read_split(base/SPLIT)
    if not rows: raise fail(f'{base/SPLIT} has no rows.')
    done, n_resized = {}, 0
    for row in tqdm(rows, desc='VisA images', unit='img', disable=quiet):
        what, resized = convert_row(base, out, row)
        done[what] = done.get(what, 0) + 1; n_resized += resized
    copy_notices(base, out)
    notes = [f"split {SPLIT}: {done.get('train/good', 0)} train, {done.get('test/good', 0)} test normal, "
             f"{done.get(f'test/{DEFECT}', 0)} test anomalous (one defect folder '{DEFECT}'); masks rescaled to 0/255"]
    if done.get('skipped'): notes.append(f"{done['skipped']} anomalous training rows skipped (unsupervised setting)")
    return notes + resized_note(n_resized)


DATASET = Dataset(
    name='visa', title='VisA', url=URL, filename=FILENAME, checksums={'sha256': SHA256},
    recorded_by='anomalib src/anomalib/data/datamodules/image/visa.py', locate=locate, convert=convert,
    categories=CATEGORIES, licence='CC BY-NC-SA 4.0 (non-commercial)',
    approx_size='about 1.9 GB, size reported by third parties', page='https://github.com/amazon-science/spot-diff')
