"""Shared helpers of the data scripts: download, checksum, safe extraction, MVTec-layout writing, marker files.

Every dataset module describes its archive with a `Dataset` and supplies two functions: `locate` (find the dataset
inside the extracted tree, refusing an archive that does not look like it) and `convert` (write the MVTec AD layout,
or the texture folder for DTD). `prepare` runs the steps in order; every problem the user can fix is raised as a
`DataScriptError`, which the command line prints as one line and exits with status 2.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from tqdm import tqdm
from tqdm.utils import CallbackIOWrapper

TIMEOUT_S = 10  # connect (and per-read) timeout: offline runs fail within seconds, never hang
RETRIES = 3  # resumed attempts after a download that stalls or breaks *after* receiving data
CHUNK = 1 << 20
MARKER = '.data_scripts.json'  # written last, in the root, once a dataset is fully prepared
WORK = '.data_scripts_work'  # extraction and conversion happen here, then move into the root
DOWNLOADS = '.downloads'  # default download folder, inside the root
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
MARKER_FORMAT = 1
ALGOS = {'sha256': 'SHA-256', 'md5': 'MD5'}


class DataScriptError(Exception):
    "A problem the user can fix: the command line prints `data_scripts: error: <message>` and exits with status 2."


@dataclass(frozen=True)
class Dataset:
    "What a script knows about one dataset: where its archive is, how to check it, and how to convert it."
    name: str  # command-line name, e.g. 'visa'
    title: str  # e.g. 'VisA'
    url: str
    filename: str  # the archive's official file name
    checksums: dict  # {'sha256': hex} and/or {'md5': hex}; a file must match every one
    recorded_by: str  # where the URL and checksums come from
    locate: Callable[[Path], Path]  # extracted tree -> the dataset's own root folder
    convert: Callable  # (base, out, quiet) -> list of notes; writes the result under `out`
    size: int | None = None  # bytes, where a source records it
    confirmed: bool = True  # False: the checksum is only reported by third parties
    layout: str = 'mvtec'  # 'mvtec' (categories) or 'textures' (DTD)
    categories: tuple = ()  # the official category names, to warn about missing ones
    licence: str = "check the dataset's page"
    approx_size: str = 'unknown'  # download size for humans (README, --help)
    page: str = ''  # the dataset's official page


def fail(msg: str) -> DataScriptError:
    "A `DataScriptError` with `msg` folded onto one line."
    return DataScriptError(' '.join(str(msg).split()))


def say(msg: str = '') -> None:
    "Print a status line (stdout, flushed so it interleaves with the progress bars on stderr)."
    print(msg, flush=True)


def fmt_checksums(checksums: dict) -> str:
    "'SHA-256 abc…, MD5 def…' for messages."
    return ', '.join(f'{ALGOS[a]} {h}' for a, h in checksums.items())


# ---------------------------------------------------------------------------------------------------- download

def offline_hint(ds: Dataset, url: str, checksums: dict, size: int | None, reported=False) -> str:
    "How to get the archive without this script: its URL, file name, checksum and the `--archive` way in."
    extra = f', {size:,} bytes' if size else ''
    note = ' (reported by third parties, not confirmed)' if reported else ''
    where = f' or from {ds.page}' if ds.page else ''
    return (f"Without internet here, get {ds.filename} ({fmt_checksums(checksums)}{extra}{note}) from that URL"
            f"{where} on another machine, then run "
            f"`python -m data_scripts {ds.name} --root DIR --archive PATH/{ds.filename}`.")


def _open_url(url: str, start: int):
    "Open `url` asking for bytes from `start` on; None when the server says the range is past the end."
    headers = {'User-Agent': 'anomaly_tutor-data_scripts/1'}
    if start: headers['Range'] = f'bytes={start}-'
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start: return None  # nothing left to fetch: the .part file is complete
        raise


def _fetch_once(url: str, part: Path, quiet: bool) -> None:
    "Append the rest of `url` to `part`, resuming with an HTTP Range request; raise if the transfer breaks."
    have = part.stat().st_size if part.exists() else 0
    resp = _open_url(url, have)
    if resp is None: return
    part.parent.mkdir(parents=True, exist_ok=True)
    with resp:
        if have and resp.status != 206: have = 0  # the server ignored Range: start again from byte 0
        total = None if resp.length is None else resp.length + have
        with open(part, 'ab' if have else 'wb') as f, tqdm(total=total, initial=have, unit='B', unit_scale=True,
                                                            unit_divisor=1024, desc=part.name, disable=quiet) as bar:
            while chunk := resp.read(CHUNK):
                f.write(chunk); bar.update(len(chunk))
    if total is not None and part.stat().st_size < total:
        raise ConnectionError(f'connection closed after {part.stat().st_size:,} of {total:,} bytes')


# URLError (offline, refused, DNS, HTTP errors), timeouts, resets, TLS errors (all OSError), broken HTTP responses
NET_ERRORS = (OSError, http.client.HTTPException)


def download(url: str, part: Path, quiet=False, on_fail: str = '') -> None:
    """Download `url` into `part`, resuming what is there; retry a broken transfer that had made progress.
    An attempt that receives nothing (offline, refused, 404) raises at once with `on_fail` appended."""
    size = lambda: part.stat().st_size if part.exists() else 0
    for attempt in range(RETRIES + 1):
        before = size()
        try:
            _fetch_once(url, part, quiet); return
        except NET_ERRORS as e:
            reason = f'HTTP {e.code} {e.reason}' if isinstance(e, urllib.error.HTTPError) else \
                str(getattr(e, 'reason', None) or e or type(e).__name__)
            have = size()
            if have > before and attempt < RETRIES:  # it was making progress: resume
                say(f'download interrupted ({reason}); resuming from byte {have:,}'); time.sleep(1); continue
            kept = f' The {have:,} bytes received are kept in {part}; run again to resume.' if have else ''
            raise fail(f'cannot download {url} ({reason}).{kept} {on_fail}') from None


# ---------------------------------------------------------------------------------------------------- verify

def file_digests(path: Path, algos, quiet=False) -> dict:
    "Hex digests of `path` for each algorithm name in `algos` (one pass over the file)."
    hs = {a: hashlib.new(a) for a in algos}
    with open(path, 'rb') as f, tqdm(total=path.stat().st_size, unit='B', unit_scale=True, unit_divisor=1024,
                                     desc=f'checksum {path.name}', disable=quiet) as bar:
        while chunk := f.read(CHUNK):
            for h in hs.values(): h.update(chunk)
            bar.update(len(chunk))
    return {a: h.hexdigest() for a, h in hs.items()}


def _looks_like_html(path: Path) -> bool:
    with open(path, 'rb') as f: head = f.read(512).lstrip().lower()
    return head.startswith((b'<!doctype html', b'<html', b'<?xml', b'<head'))


def verify_archive(path: Path, ds: Dataset, checksums: dict, size: int | None, quiet=False) -> dict:
    "Check `path`'s size (when recorded) and checksums before anything is extracted; return its digests."
    n = path.stat().st_size
    why = (' The server sent a web page instead of the archive (the link may have expired): download it from '
           f'{ds.page or ds.url} and pass it with --archive.') if _looks_like_html(path) else ''
    if size is not None and n != size:
        raise fail(f'{path} is {n:,} bytes but {ds.filename} is {size:,} bytes: the file is incomplete or a '
                   f'different version; refusing to extract it.{why}')
    digests = file_digests(path, sorted(set(checksums) | {'sha256'}), quiet)
    bad = [a for a in checksums if digests[a] != checksums[a].lower()]
    if bad:
        got = ', '.join(f'{ALGOS[a]} {digests[a]}' for a in bad)
        want = ', '.join(f'{ALGOS[a]} {checksums[a]}' for a in bad)
        raise fail(f'checksum mismatch for {path}: {got}, expected {want} for {ds.filename}. The file is corrupt, '
                   f'incomplete or a different version; refusing to extract it. Download it again (or pass the '
                   f'right file with --archive).{why}')
    return digests


# ---------------------------------------------------------------------------------------------------- extract

def _within(dest: Path, path) -> bool:
    "True if `path`, with every symlink already on disk resolved, lies inside `dest`."
    root, target = os.path.realpath(dest), os.path.realpath(path)
    return os.path.commonpath([root, target]) == root


def _check_name(name: str, dest: Path, archive: Path) -> Path:
    "The path member `name` extracts to; refuse absolute names and names that would land outside `dest`."
    if name.startswith(('/', '\\')) or re.match(r'^[A-Za-z]:', name) or os.path.isabs(name):
        raise fail(f"unsafe member '{name}' in {archive}: absolute path; refusing to extract.")
    target = dest/name
    if not _within(dest, target):
        raise fail(f"unsafe member '{name}' in {archive}: it would be written outside {dest}; refusing to extract.")
    return target


def _check_link(name: str, link: str, base: Path, dest: Path, archive: Path, kind: str) -> None:
    "Refuse a link member whose target is absolute or resolves outside `dest` (`base` is what it is relative to)."
    if link.startswith(('/', '\\')) or re.match(r'^[A-Za-z]:', link) or not _within(dest, base/link):
        raise fail(f"unsafe {kind} '{name}' -> '{link}' in {archive}: it points outside {dest}; refusing to extract.")


def _check_tar_member(m: tarfile.TarInfo, dest: Path, archive: Path) -> None:
    "Explicit safety checks of one tar member (before extracting it), for a clear message."
    target = _check_name(m.name, dest, archive)
    if m.issym(): _check_link(m.name, m.linkname, target.parent, dest, archive, 'symlink')
    elif m.islnk(): _check_link(m.name, m.linkname, dest, dest, archive, 'hard link')
    elif not (m.isfile() or m.isdir()):
        raise fail(f"unsupported member '{m.name}' in {archive} (device, fifo or other special file); refusing.")


FILTER_ERRORS = getattr(tarfile, 'FilterError', ())  # absent before Python 3.11.4 (and so is the filter)


def _extract_tar(archive: Path, dest: Path, quiet: bool) -> None:
    "Extract a tar (plain, gz, xz, bz2) member by member, checking each one first; one sequential pass."
    kw = {'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}  # Python 3.11.4+/3.12: a second guard
    with open(archive, 'rb') as f, tqdm(total=archive.stat().st_size, unit='B', unit_scale=True, unit_divisor=1024,
                                        desc=f'extract {archive.name}', disable=quiet) as bar:
        at = lambda _: bar.update(f.tell() - bar.n)  # position, not bytes read: format detection reads twice
        with tarfile.open(fileobj=CallbackIOWrapper(at, f, 'read'), mode='r:*') as tf:
            for m in tf:
                _check_tar_member(m, dest, archive)
                try: tf.extract(m, dest, **kw)
                except FILTER_ERRORS as e: raise fail(f"unsafe member '{m.name}' in {archive}: {e}; refusing.")


def _extract_zip(archive: Path, dest: Path, quiet: bool) -> None:
    "Extract a zip, checking every name (and any symlink entry's target) before writing it."
    with zipfile.ZipFile(archive) as zf:
        for info in tqdm(zf.infolist(), desc=f'extract {archive.name}', unit='file', disable=quiet):
            target = _check_name(info.filename, dest, archive)
            if stat.S_ISLNK(info.external_attr >> 16):  # stored as a file by zipfile; still refuse an outward one
                _check_link(info.filename, zf.read(info).decode('utf-8', 'replace'), target.parent, dest, archive,
                            'symlink')
            zf.extract(info, dest)


def safe_extract(archive, dest, quiet=False) -> Path:
    """Extract `archive` (.tar, .tar.gz, .tar.xz, .zip) into `dest`, refusing any member that would escape it:
    absolute paths, `..`, symlinks or hard links pointing outside, special files."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if tarfile.is_tarfile(archive): _extract_tar(archive, dest, quiet)
        elif zipfile.is_zipfile(archive): _extract_zip(archive, dest, quiet)
        else: raise fail(f'{archive} is neither a tar nor a zip archive.')
    except OSError as e:
        if e.errno: raise fail(f'cannot write while extracting {archive}: {e}.') from None  # e.g. disk full
        raise fail(f'{archive} is damaged and cannot be extracted ({e}).') from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        raise fail(f'{archive} is damaged and cannot be extracted ({e}).') from None
    return dest


# ---------------------------------------------------------------------------------------------------- layout

def subdirs(d: Path) -> list[Path]:
    "Sorted visible sub-folders of `d` (no hidden ones, no macOS `__MACOSX` debris)."
    return sorted(p for p in Path(d).iterdir() if p.is_dir() and not p.name.startswith(('.', '__MACOSX')))


def images_in(d: Path) -> list[Path]:
    "Sorted image files directly in `d` (any case of the extension), none if `d` does not exist."
    d = Path(d)
    if not d.is_dir(): return []
    return sorted(p for p in d.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith('.'))


def find_dir(tree: Path, accept: Callable[[Path], bool], what: str, title: str, max_depth=3) -> Path:
    "The shallowest folder of `tree` (breadth first, `max_depth` levels) that `accept`s; refuse if none does."
    level = [Path(tree)]
    for _ in range(max_depth + 1):
        for d in level:
            if accept(d): return d
        level = [c for d in level for c in subdirs(d)]
    raise fail(f'the archive does not look like {title}: found no folder with {what} in it.')


def move_file(src: Path, dst: Path) -> None:
    "Move `src` to `dst`, creating folders; refuse to overwrite (two sources with one name are a conversion bug)."
    if dst.exists(): raise fail(f'two files would both become {dst}; the archive layout is not the expected one.')
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))


def mask_array(path: Path) -> np.ndarray:
    "A boolean HxW array: True where the mask file `path` has any non-zero value (palette colours, not indices)."
    with Image.open(path) as im:
        im.load()
        if im.mode in ('P', 'PA'): im = im.convert('RGBA')
        a = np.asarray(im)
    if a.ndim == 3: a = a[..., :3] if a.shape[2] >= 3 else a[..., :1]  # drop alpha
    return (a > 0).any(axis=-1) if a.ndim == 3 else a > 0


def write_mask(src: Path, dst: Path, image: Path | None = None) -> bool:
    """Write `src` as a binary 0/255 PNG `dst` (any non-zero pixel is anomalous). If `image` is given and its size
    differs, the mask is resized to it (nearest neighbour) and True is returned so the caller can report it."""
    m = Image.fromarray(mask_array(src).astype(np.uint8) * 255, 'L')
    resized = False
    if image is not None:
        with Image.open(image) as im: size = im.size  # reads the header only
        if size != m.size: m, resized = m.resize(size, Image.NEAREST), True
    dst.parent.mkdir(parents=True, exist_ok=True)
    m.save(dst)
    return resized


def copy_notices(base: Path, out: Path) -> list[str]:
    "Copy the archive's licence and readme files (top level of `base`) into `out`; return their names."
    names = [p.name for p in sorted(base.iterdir()) if p.is_file() and p.name.lower().startswith(('licen', 'readme'))]
    out.mkdir(parents=True, exist_ok=True)
    for n in names: shutil.copy2(base/n, out/n)
    return names


def resized_note(n: int) -> list[str]:
    "The note reporting masks resized to their image's size, if any."
    return [f'{n} masks differed in size from their image and were resized to it (nearest neighbour)'] if n else []


# ---------------------------------------------------------------------------------------------------- counts

def count_images(root: Path, names) -> dict:
    "{folder relative to `root`: number of images} for every folder under the entries `names` that holds images."
    counts = {}
    for name in sorted(names):
        if not (root/name).is_dir(): continue
        for d, dirs, files in os.walk(root/name):
            dirs[:] = sorted(x for x in dirs if not x.startswith('.'))
            n = sum(1 for f in files if Path(f).suffix.lower() in IMAGE_EXTS and not f.startswith('.'))
            if n: counts[Path(d).relative_to(root).as_posix()] = n
    return counts


def summary_lines(ds: Dataset, counts: dict) -> list[str]:
    "Human-readable lines: per category train/test counts (MVTec layout) or classes and images (textures)."
    if ds.layout == 'textures':
        classes = {k for k in counts if k.startswith('images/')}
        return [f'{len(classes)} texture classes, {sum(counts[k] for k in classes):,} images in images/<class>/']
    lines, by_cat = [], {}
    for k, n in counts.items():
        parts = k.split('/')
        if len(parts) == 3: by_cat.setdefault(parts[0], {})[(parts[1], parts[2])] = n
    for cat, c in sorted(by_cat.items()):
        test = {d: n for (s, d), n in c.items() if s == 'test'}
        defects = ', '.join(f'{d}={n}' for d, n in sorted(test.items()) if d != 'good')
        extra = ''.join(f', {s}/{d} {n} (not read)' for (s, d), n in sorted(c.items())
                        if s not in ('train', 'test', 'ground_truth'))
        lines.append(f"  {cat:<12} train {c.get(('train', 'good'), 0):>5}  test {sum(test.values()):>5} "
                     f"(good={test.get('good', 0)}{', ' + defects if defects else ''}){extra}")
    return lines


def missing_categories(ds: Dataset, names) -> list[str]:
    "The official categories absent from `names` (a warning, e.g. for a single-category archive)."
    return [c for c in ds.categories if c not in set(names)]


# ---------------------------------------------------------------------------------------------------- marker

def read_marker(root: Path) -> dict | None:
    "The marker of a finished preparation in `root`, or None."
    p = Path(root)/MARKER
    if not p.is_file(): return None
    try: return json.loads(p.read_text())
    except (json.JSONDecodeError, OSError, UnicodeDecodeError):
        raise fail(f'{p} is unreadable; delete it and run again (or pass --force).') from None


def write_marker(root: Path, data: dict) -> None:
    "Write the marker atomically (a crash leaves either no marker or a whole one)."
    tmp = Path(root)/(MARKER + '.tmp')
    tmp.write_text(json.dumps(data, indent=1) + '\n')
    os.replace(tmp, Path(root)/MARKER)


def _first_difference(now: dict, then: dict) -> str:
    "A short description of the first folder whose image count changed."
    for k in sorted(set(now) | set(then)):
        if now.get(k) != then.get(k): return f'{k}: {now.get(k, 0)} images, {then.get(k, 0)} when prepared'
    return ''


def check_prepared(ds: Dataset, root: Path, marker: dict) -> None:
    "Verify a prepared root against its marker (folders and image counts) and say so; refuse if it changed."
    if marker.get('dataset') != ds.name:
        raise fail(f"{root} already holds {marker.get('title', marker.get('dataset'))}, prepared by data_scripts: "
                   f'use a separate folder per dataset, e.g. --root {root.parent/ds.name}.')
    now = count_images(root, marker.get('entries', []))
    if now != marker.get('counts'):
        change = _first_difference(now, marker.get('counts', {}))
        raise fail(f'{root} was prepared as {ds.title} but has changed since ({change}); '
                   'run again with --force to prepare it afresh.')
    say(f"already prepared: {ds.title} in {root} ({sum(now.values()):,} images in {len(now)} folders, as recorded "
        f"in {MARKER} on {marker.get('prepared', '?')}); nothing to do.")


# ---------------------------------------------------------------------------------------------------- prepare

def check_root(root: Path, force: bool) -> None:
    "Refuse a root that is a file, or that holds folders data_scripts did not prepare (unless `force`)."
    if root.exists() and not root.is_dir(): raise fail(f'--root {root} is a file, not a folder.')
    foreign = [p.name for p in subdirs(root)] if root.is_dir() else []
    if foreign and not force:
        shown = ', '.join(foreign[:5]) + (', ...' if len(foreign) > 5 else '')
        raise fail(f'{root} already holds folders ({shown}) and no {MARKER} from a finished run: use an empty '
                   'folder, or pass --force to replace the folders this dataset writes.')


def obtain_archive(ds: Dataset, root: Path, archive, url: str, checksums: dict, size, reported: bool,
                   download_dir, quiet: bool) -> tuple[Path, dict, bool]:
    "The verified archive: the user's `archive`, a finished download, or a new (resumed) one; (path, digests, ours)."
    if archive:
        path = Path(archive).expanduser()
        if not path.is_file(): raise fail(f'--archive {path} does not exist (expected the file {ds.filename}).')
        say(f'verifying {path}')
        return path, verify_archive(path, ds, checksums, size, quiet), False
    dest = (Path(download_dir).expanduser() if download_dir else root/DOWNLOADS)/ds.filename
    if dest.is_file():
        say(f'verifying {dest} (downloaded before)')
        try: return dest, verify_archive(dest, ds, checksums, size, quiet), True
        except DataScriptError as e: raise fail(f'{e} Delete {dest} to download it again.') from None
    part = dest.with_name(dest.name + '.part')
    say(f'downloading {ds.title} ({ds.approx_size}) from {url} to {part}')
    download(url, part, quiet, on_fail=offline_hint(ds, url, checksums, size, reported))
    try: digests = verify_archive(part, ds, checksums, size, quiet)
    except DataScriptError as e:
        part.unlink(missing_ok=True)
        raise fail(f'{e} The download was deleted.') from None
    os.replace(part, dest)
    return dest, digests, True


def install(out: Path, root: Path, force: bool) -> list[str]:
    "Move every entry of `out` into `root` (replacing same-named ones only with `force`); return their names."
    names = sorted(p.name for p in out.iterdir())
    clash = [n for n in names if (root/n).exists() or (root/n).is_symlink()]
    if clash and not force:
        raise fail(f"{root} already has {', '.join(clash[:5])}; pass --force to replace them.")
    for n in names:
        old = root/n
        if old.is_dir() and not old.is_symlink(): shutil.rmtree(old)
        elif old.exists() or old.is_symlink(): old.unlink()
        shutil.move(str(out/n), str(old))
    return names


def check_result(ds: Dataset, out: Path, counts: dict) -> list[str]:
    "Refuse an empty or incomplete conversion in `out`; return the category (or texture class) names found."
    if ds.layout == 'textures':
        cats = sorted({k.split('/')[1] for k in counts if k.startswith('images/')})
        if not cats: raise fail(f'the conversion of {ds.title} produced no texture image; wrong archive?')
        return cats
    cats = [p.name for p in subdirs(out) if (p/'train'/'good').is_dir()]
    if not cats: raise fail(f'the conversion of {ds.title} produced no category; wrong archive?')
    for c in cats:
        if not counts.get(f'{c}/train/good') or not any(k.startswith(f'{c}/test/') for k in counts):
            raise fail(f'the conversion of {ds.title} left category {c} without train or test images.')
    return cats


def expected_checksums(ds: Dataset, checksums: dict | None) -> tuple[dict, int | None, bool]:
    "(checksums, size, custom): the recorded ones, or the user's (which replace the recorded size too); say which."
    if checksums:
        say(f'using the checksum given on the command line ({fmt_checksums(checksums)}), not the recorded one')
        return dict(checksums), None, True
    if not ds.confirmed:
        say(f'note: the checksum of {ds.filename} is reported by third parties, not published by its authors; '
            f"{'the size and the layout are' if ds.size else 'the layout is'} checked too")
    return dict(ds.checksums), ds.size, False


def extract_and_convert(ds: Dataset, archive: Path, root: Path, force: bool, quiet: bool) -> tuple[list, dict, list]:
    "Extract into the work folder, convert, check and move the result into `root`; (names, counts, notes)."
    work = root/WORK
    shutil.rmtree(work, ignore_errors=True)
    try:
        say(f'extracting {archive.name}')
        base = ds.locate(safe_extract(archive, work/'extract', quiet))
        say(f"converting to the {'MVTec AD layout' if ds.layout == 'mvtec' else 'texture folder layout'}")
        out = work/'out'
        notes = list(ds.convert(base, out, quiet))
        counts = count_images(out, [p.name for p in out.iterdir()])
        cats = check_result(ds, out, counts)
        if missing := missing_categories(ds, cats):
            notes.append(f"official categories not in this archive: {', '.join(missing)}")
        return install(out, root, force), counts, notes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def marker_data(ds: Dataset, archive: Path, digests: dict, custom: bool, names, counts, notes) -> dict:
    "What the marker records: dataset, archive, checksums and their source, date, folders and image counts."
    return dict(format=MARKER_FORMAT, dataset=ds.name, title=ds.title, archive=archive.name,
                archive_bytes=archive.stat().st_size, checksums=digests,
                checksum_source='given on the command line' if custom else ds.recorded_by,
                checksum_confirmed=ds.confirmed and not custom, prepared=time.strftime('%Y-%m-%dT%H:%M:%S'),
                entries=names, counts=counts, notes=notes)


def prepare(ds: Dataset, root, archive=None, *, url=None, checksums: dict | None = None, download_dir=None,
            force=False, delete_archive=False, quiet=False) -> dict:
    """Download (or take `archive`), verify, extract safely, convert into `root` and write the marker; a root
    already prepared is verified and left alone. `checksums` replaces the recorded ones (and the recorded size)."""
    root = Path(root).expanduser().absolute()
    marker = read_marker(root) if root.is_dir() else None
    if marker and (not force or marker.get('dataset') != ds.name):
        check_prepared(ds, root, marker); return marker
    check_root(root, force)
    checksums, size, custom = expected_checksums(ds, checksums)
    if marker: (root/MARKER).unlink()  # --force: a rerun that stops half-way must not look prepared
    path, digests, ours = obtain_archive(ds, root, archive, url or ds.url, checksums, size,
                                         not (ds.confirmed or custom), download_dir, quiet)
    say(f'checksum ok: {fmt_checksums({a: digests[a] for a in checksums})}')
    root.mkdir(parents=True, exist_ok=True)
    names, counts, notes = extract_and_convert(ds, path, root, force, quiet)
    data = marker_data(ds, path, digests, custom, names, counts, notes)
    write_marker(root, data)
    for line in summary_lines(ds, counts) + [f'note: {n}' for n in notes]: say(line)
    if delete_archive and ours: path.unlink(); say(f'deleted {path}')
    hint = f'; check it with `anomaly-tutor data check {root}`' if ds.layout == 'mvtec' else ''
    say(f'prepared {ds.title} in {root}{hint}')
    return data
