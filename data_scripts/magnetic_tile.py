"""Magnetic Tile (MT): one category `magnetic_tile`; a seeded half of the defect-free images becomes `test/good`.

Source: Huang, Qiu and Yuan, "Surface defect saliency of magnetic tile", The Visual Computer 36, 85-96 (2020),
doi:10.1007/s00371-018-1588-5; the images are published in the authors' GitHub repository
https://github.com/abin24/Magnetic-tile-defect-datasets. (the trailing dot is part of the name). There is no release
archive: the download is GitHub's zip of the repository at one commit, whose top folder holds six folders
`MT_Blowhole`, `MT_Break`, `MT_Crack`, `MT_Fray`, `MT_Uneven` (the five defect types) and `MT_Free` (defect-free),
each with an `Imgs/` folder of `exp*_num_*.jpg` images and their same-stem `.png` masks.

Output: `magnetic_tile/train/good`, `magnetic_tile/test/good`, `magnetic_tile/test/<defect>` (`blowhole`, `break`,
`crack`, `fray`, `uneven`) and `magnetic_tile/ground_truth/<defect>/<stem>_mask.png` (0/255 PNG; any non-zero pixel
is anomalous). Images are moved unchanged (JPG); masks are matched to images by file stem. MT_Free's masks (empty)
are not copied.

Split: the dataset has none. MALA (the paper this book reproduces on MT) says only that it trains on 100 of the
normal images, not which ones nor what it tests on. So this script puts a fixed, seeded fraction (`TEST_FRACTION`,
one half) of MT_Free in `test/good` and the rest in `train/good`: an image goes to the test set when it is among the
first half of MT_Free's stems ordered by SHA-256 of `f'{SPLIT_SEED}:{stem}'`, which depends neither on the file
system's order nor on a random-number library. A method that trains on fewer normal images (MALA: 100) picks them from
`train/good` itself.

Checksum: the dataset's authors publish none, and GitHub does not promise byte-identical zips of one commit over
time. The commit and the SHA-256 below are *reported* by one public third-party download script (not confirmed);
the script checks them and the layout (the `MT_*/Imgs` folders, every defect image with its mask, a non-empty
result). Licence: none recorded in the sources this project checked (the repository's README asks users to cite
the paper); check the repository before use.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from tqdm import tqdm

from ._common import Dataset, copy_notices, fail, find_dir, mask_array, move_file, resized_note, write_mask

PAGE = 'https://github.com/abin24/Magnetic-tile-defect-datasets.'
# REPORTED, not confirmed: the commit and the SHA-256 of GitHub's zip of it, as pinned by one public third-party
# download script (NVIDIA AnomalyGen's `prepare_magnetic_tile_defect`). GitHub may re-generate the zip with other
# bytes; then verify the content and pass --sha256.
COMMIT = 'cc4eb530b57b9cb7225bf76023873043ffd50655'
URL = f'{PAGE}/archive/{COMMIT}.zip'
FILENAME = f'Magnetic-tile-defect-datasets.-{COMMIT}.zip'  # GitHub's name for this zip (its top folder, without .zip)
SHA256 = '592b050953d1de4ffa538b93b6b91aee7268d8e59b73d4d9c92cfce187d7ce66'  # reported
CATEGORY = 'magnetic_tile'
FREE = 'MT_Free'
DEFECTS = {'MT_Blowhole': 'blowhole', 'MT_Break': 'break', 'MT_Crack': 'crack', 'MT_Fray': 'fray',
           'MT_Uneven': 'uneven'}
IMAGE_EXTS, MASK_EXT = ('.jpg', '.jpeg'), '.png'
TEST_FRACTION = 0.5  # of MT_Free's images, into test/good
SPLIT_SEED = 0


def _source_dirs(d: Path) -> list[str]:
    "The MT folders (MT_Free and the five defect folders) of `d` that have an `Imgs/` folder."
    return [n for n in (FREE, *DEFECTS) if (d/n/'Imgs').is_dir()]


def locate(tree: Path) -> Path:
    "The folder of the extracted archive that holds the MT_* folders (the repository's top folder)."
    return find_dir(tree, lambda d: bool(_source_dirs(d)), 'MT_Free/Imgs or MT_<defect>/Imgs folders', 'Magnetic Tile')


def pairs(folder: Path) -> tuple[list[tuple[Path, Path | None]], int]:
    "(image, same-stem .png mask or None) for every JPG of `folder`, and the number of other files (ignored)."
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith('.'))
    imgs = [p for p in files if p.suffix.lower() in IMAGE_EXTS]
    masks = {p.stem: p for p in files if p.suffix.lower() == MASK_EXT}
    out = [(p, masks.pop(p.stem, None)) for p in imgs]
    return out, len(files) - len(imgs) - sum(m is not None for _, m in out)  # other files: orphan masks, BMP...


def split_key(stem: str) -> str:
    "The seeded sort key that decides MT_Free's split (stable across platforms and library versions)."
    return hashlib.sha256(f'{SPLIT_SEED}:{stem}'.encode()).hexdigest()


def split_free(stems) -> set[str]:
    "The stems of the MT_Free images that go to test/good: the first `TEST_FRACTION` of them by `split_key`."
    stems = sorted(set(stems))
    n_test = int(round(len(stems)*TEST_FRACTION))
    if len(stems) > 1: n_test = min(max(n_test, 1), len(stems) - 1)  # keep at least one image on each side
    return set(sorted(stems, key=split_key)[:n_test])


def convert(base: Path, out: Path, quiet=False) -> list[str]:
    "Write the `magnetic_tile` category; return notes with the counts and the split."
    cat, n = out/CATEGORY, dict(resized=0, free_marked=0, other=0)
    if not (base/FREE/'Imgs').is_dir():
        raise fail(f'Magnetic Tile archive has no {FREE}/Imgs folder (the defect-free images) in {base}.')
    free, other = pairs(base/FREE/'Imgs'); n['other'] += other
    if not free: raise fail(f'Magnetic Tile folder {base/FREE/"Imgs"} holds no .jpg image.')
    test = split_free(p.stem for p, _ in free)
    for img, mask in tqdm(free, desc='MT_Free', unit='img', disable=quiet):
        if mask is not None and mask_array(mask).any(): n['free_marked'] += 1
        move_file(img, cat/('test' if img.stem in test else 'train')/'good'/img.name)
    counts, missing = {}, []
    for src, defect in DEFECTS.items():
        folder = base/src/'Imgs'
        if not folder.is_dir(): missing.append(src); continue
        ps, other = pairs(folder); n['other'] += other
        for img, mask in tqdm(ps, desc=src, unit='img', disable=quiet):
            if mask is None: raise fail(f'Magnetic Tile image {img} has no mask {img.stem}{MASK_EXT} beside it.')
            n['resized'] += write_mask(mask, cat/'ground_truth'/defect/f'{img.stem}_mask.png', img)
            move_file(img, cat/'test'/defect/img.name)
        counts[defect] = len(ps)
    copy_notices(base, out)
    notes = [f'{FREE}: {len(free) - len(test)} -> train/good, {len(test)} -> test/good (seeded split, '
             f'test fraction {TEST_FRACTION}, seed {SPLIT_SEED}); defects: '
             + ', '.join(f'{d}={c}' for d, c in counts.items()) + '; masks matched by stem, written as 0/255 PNG']
    if missing: notes.append(f"defect folders not in this archive: {', '.join(missing)}")
    if n['free_marked']: notes.append(f"{n['free_marked']} {FREE} masks have positive pixels; kept as good anyway")
    if n['other']: notes.append(f"ignored {n['other']} file(s) other than .jpg images and their .png masks")
    return notes + resized_note(n['resized'])


DATASET = Dataset(
    name='magnetic_tile', title='Magnetic Tile', url=URL, filename=FILENAME, checksums={'sha256': SHA256},
    confirmed=False, recorded_by="reported by one public third-party download script (NVIDIA AnomalyGen's "
                                 'prepare_magnetic_tile_defect; not confirmed)',
    locate=locate, convert=convert, categories=(CATEGORY,), licence="none recorded; check the repository",
    approx_size='size not recorded', page=PAGE)
