"""`python -m data_scripts`: fake archives with each dataset's real internal layout and names, prepared with
`--archive`, checked with the installed `anomaly-tutor data check`; checksums, unsafe members, idempotence, offline."""
import hashlib, http.server, io, subprocess, sys, tarfile, threading, time, urllib.error, zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path: sys.path.insert(0, str(REPO))
from data_scripts import DATASETS, DataScriptError, safe_extract  # noqa: E402
from data_scripts.__main__ import main  # noqa: E402

SIZE = (24, 16)  # (width, height) of every fake image


# ---------------------------------------------------------------------------------------- fake archive helpers

def _img(path: Path, seed: int, mode='RGB', size=SIZE):
    "A tiny random image, in the format its suffix says (PNG, BMP, JPG, TIFF)."
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == 'RGB' else (size[1], size[0])
    fmt = {'.jpg': 'JPEG', '.bmp': 'BMP', '.png': 'PNG', '.tiff': 'TIFF'}[path.suffix.lower()]
    if mode == 'F': Image.fromarray(rng.random(shape).astype(np.float32), 'F').save(path, fmt)
    else: Image.fromarray(rng.integers(0, 256, shape, np.uint8), mode).save(path, fmt)


def _mask(path: Path, value: int, size=SIZE):
    "A mask with a block of `value` (0 gives an empty mask; VisA and KSDD2 use small non-255 values)."
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.zeros((size[1], size[0]), np.uint8)
    m[4:9, 5:12] = value
    Image.fromarray(m, 'L').save(path, {'.png': 'PNG', '.bmp': 'BMP'}[path.suffix.lower()])


def _pack(src: Path, archive: Path) -> Path:
    "Pack the entries of `src` (at the archive's top level) as .zip, .tar, .tar.gz or .tar.xz."
    entries = sorted(src.iterdir())
    if archive.suffix == '.zip':
        with zipfile.ZipFile(archive, 'w') as zf:
            for p in sorted(src.rglob('*')): zf.write(p, p.relative_to(src).as_posix())
    else:
        mode = {'.tar': 'w', '.gz': 'w:gz', '.xz': 'w:xz'}[archive.suffix]
        with tarfile.open(archive, mode) as tf:
            for p in entries: tf.add(p, p.name)
    return archive


def sha256(path: Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()
def md5(path: Path) -> str: return hashlib.md5(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------- one builder per dataset
# Each returns (archive, expected) with expected = {category: (n_train, {test folder: n})}.

def build_mvtec_ad(tmp: Path):
    "mvtec_anomaly_detection.tar.xz: categories at the top level (grayscale `screw`), licence and readme files."
    src = tmp/'src'
    for cat, mode, defects in (('bottle', 'RGB', {'broken_large': 2, 'contamination': 1}),
                               ('screw', 'L', {'scratch_head': 2})):
        for i in range(3): _img(src/cat/'train'/'good'/f'{i:03d}.png', i, mode)
        for i in range(2): _img(src/cat/'test'/'good'/f'{i:03d}.png', 10 + i, mode)
        for d, n in defects.items():
            for i in range(n):
                _img(src/cat/'test'/d/f'{i:03d}.png', 20 + i, mode)
                _mask(src/cat/'ground_truth'/d/f'{i:03d}_mask.png', 255)
    (src/'license.txt').write_text('CC BY-NC-SA 4.0'); (src/'readme.txt').write_text('MVTec AD')
    return _pack(src, tmp/'mvtec_anomaly_detection.tar.xz'), {
        'bottle': (3, {'good': 2, 'broken_large': 2, 'contamination': 1}), 'screw': (3, {'good': 2, 'scratch_head': 2})}


def build_visa(tmp: Path):
    """VisA_20220922.tar: `<object>/Data/{Images/{Normal,Anomaly},Masks/Anomaly}`, `split_csv/1cls.csv` (with a BOM),
    masks with small values (1, 2, 7), and one Normal image the split file does not list."""
    src, rows = tmp/'src', ['object,split,label,image,mask']
    for obj, n_train, n_test, n_bad in (('candle', 3, 2, 3), ('pcb1', 2, 1, 1)):
        d = src/obj/'Data'
        for i in range(n_train + n_test + 1):  # the last one is not in the split file
            _img(d/'Images'/'Normal'/f'{i:04d}.JPG', i)
            if i < n_train + n_test:
                rows.append(f"{obj},{'train' if i < n_train else 'test'},normal,{obj}/Data/Images/Normal/{i:04d}.JPG,")
        for i in range(n_bad):
            _img(d/'Images'/'Anomaly'/f'{i:03d}.JPG', 50 + i); _mask(d/'Masks'/'Anomaly'/f'{i:03d}.png', (1, 2, 7)[i])
            rows.append(f'{obj},test,anomaly,{obj}/Data/Images/Anomaly/{i:03d}.JPG,'
                        f'{obj}/Data/Masks/Anomaly/{i:03d}.png')
    (src/'split_csv').mkdir()
    (src/'split_csv'/'1cls.csv').write_text('\n'.join(rows) + '\n', encoding='utf-8-sig')
    (src/'LICENSE-DATASET').write_text('CC BY-NC-SA 4.0')
    expected = {'candle': (3, {'good': 2, 'bad': 3}), 'pcb1': (2, {'good': 1, 'bad': 1})}
    return _pack(src, tmp/'VisA_20220922.tar'), expected


def build_btad(tmp: Path):
    """btad.zip: `BTech_Dataset_transformed/<01|02|03>/...`, extensions differing by product: 01 BMP images with PNG
    masks, 02 PNG with PNG, 03 BMP with BMP (one mask valued 1)."""
    src = tmp/'src'/'BTech_Dataset_transformed'
    for prod, ie, me in (('01', '.bmp', '.png'), ('02', '.png', '.png'), ('03', '.bmp', '.bmp')):
        for i in range(2): _img(src/prod/'train'/'ok'/f'{i:04d}{ie}', i)
        _img(src/prod/'test'/'ok'/f'{0:04d}{ie}', 9)
        for i in range(2):
            _img(src/prod/'test'/'ko'/f'{i:04d}{ie}', 20 + i)
            _mask(src/prod/'ground_truth'/'ko'/f'{i:04d}{me}', 1 if i else 255)
    return _pack(tmp/'src', tmp/'btad.zip'), {p: (2, {'good': 1, 'ko': 2}) for p in ('01', '02', '03')}


def build_ksdd2(tmp: Path):
    "KolektorSDD2.zip: flat `train/` and `test/` of `<id>.png` + `<id>_GT.png`, some masks empty, values 255 or 1."
    src = tmp/'src'
    for split, values in (('train', (0, 0, 255, 0)), ('test', (0, 255, 1))):
        for i, v in enumerate(values):
            _img(src/split/f'{10000 + i}.png', i, 'L'); _mask(src/split/f'{10000 + i}_GT.png', v)
    return _pack(src, tmp/'KolektorSDD2.zip'), {'ksdd2': (3, {'good': 1, 'defect': 2})}


MT_TOP = 'Magnetic-tile-defect-datasets.-cc4eb530b57b9cb7225bf76023873043ffd50655'
MT_DEFECTS = {'MT_Blowhole': 2, 'MT_Break': 1, 'MT_Crack': 1, 'MT_Fray': 1, 'MT_Uneven': 2}


def build_magnetic_tile(tmp: Path):
    """GitHub's zip of the repository at one commit: `<repo>-<commit>/` with README.md and dataset.jpg, and
    `MT_<type>/Imgs/exp*_num_*.jpg` with same-stem `.png` masks (MT_Free's empty); one stray `.bmp` in MT_Free."""
    src = tmp/'src'/MT_TOP
    for i in range(6):
        _img(src/'MT_Free'/'Imgs'/f'exp{i % 3}_num_{100 + i}.jpg', i, 'L')
        _mask(src/'MT_Free'/'Imgs'/f'exp{i % 3}_num_{100 + i}.png', 0)
    _img(src/'MT_Free'/'Imgs'/'exp0_num_100.bmp', 99)  # not an image of the dataset: ignored
    for k, (folder, n) in enumerate(MT_DEFECTS.items()):
        for i in range(n):
            stem = f'exp{k}_num_{2000 + 10*k + i}'
            _img(src/folder/'Imgs'/f'{stem}.jpg', 30 + 10*k + i, 'L'); _mask(src/folder/'Imgs'/f'{stem}.png', 255)
    (src/'README.md').write_text('Magnetic tile defect datasets'); _img(src/'dataset.jpg', 7)
    test = {'good': 3, **{f[3:].lower(): n for f, n in MT_DEFECTS.items()}}
    return _pack(tmp/'src', tmp/f'{MT_TOP}.zip'), {'magnetic_tile': (3, test)}


def build_mvtec_3d(tmp: Path):
    "mvtec_3d_anomaly_detection.tar.xz: `rgb`, `gt` and `xyz` (TIFF) sub-folders; `validation/good`; licence."
    src = tmp/'src'
    for cat in ('bagel', 'tire'):
        for split, folder, n in (('train', 'good', 3), ('validation', 'good', 1), ('test', 'good', 1),
                                 ('test', 'crack', 2)):
            for i in range(n):
                _img(src/cat/split/folder/'rgb'/f'{i:03d}.png', i)
                _img(src/cat/split/folder/'xyz'/f'{i:03d}.tiff', i, 'F')
                if split == 'test': _mask(src/cat/split/folder/'gt'/f'{i:03d}.png', 0 if folder == 'good' else 255)
    (src/'license.txt').write_text('CC BY-NC-SA 4.0')
    expected = {c: (3, {'good': 1, 'crack': 2}) for c in ('bagel', 'tire')}
    return _pack(src, tmp/'mvtec_3d_anomaly_detection.tar.xz'), expected


def build_dtd(tmp: Path):
    "dtd-r1.0.1.tar.gz: `dtd/images/<class>/*.jpg`, `dtd/labels`, `dtd/imdb`."
    src = tmp/'src'
    for cls, n in (('banded', 2), ('zigzagged', 3)):
        for i in range(n): _img(src/'dtd'/'images'/cls/f'{cls}_{i:04d}.jpg', i)
    (src/'dtd'/'labels').mkdir(); (src/'dtd'/'labels'/'train1.txt').write_text('banded/banded_0000.jpg\n')
    (src/'dtd'/'imdb').mkdir(); (src/'dtd'/'imdb'/'imdb.mat').write_bytes(b'MATLAB 5.0')
    return _pack(src, tmp/'dtd-r1.0.1.tar.gz'), {'banded': 2, 'zigzagged': 3}


BUILDERS = dict(mvtec_ad=build_mvtec_ad, visa=build_visa, btad=build_btad, ksdd2=build_ksdd2,
                magnetic_tile=build_magnetic_tile, mvtec_3d=build_mvtec_3d, dtd=build_dtd)
MVTEC_LIKE = {'mvtec_ad': 'ad', 'visa': 'vi', 'btad': 'bt', 'ksdd2': 'ks', 'magnetic_tile': '', 'mvtec_3d': '3d'}
# short prefixes: the checker's table has a 14-character category column (`magnetic_tile`, 13, gets none)


def _linked(pre: str, name: str) -> str: return f'{pre}_{name}' if pre else name


def checksum_args(name: str, archive: Path) -> list[str]:
    "The override for the fake archive, in the algorithm the dataset records (MVTec 3D-AD: MD5)."
    return ['--md5', md5(archive)] if set(DATASETS[name].checksums) == {'md5'} else ['--sha256', sha256(archive)]


def run_ds(*args, timeout=120):
    "Run `python -m data_scripts ARGS` from the repository root."
    return subprocess.run([sys.executable, '-m', 'data_scripts', *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def run_main(capsys, *args):
    "Run the command line in this process (fast; the subprocess tests cover the real entry point)."
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def assert_error(res, *needles):
    "Exit status 2, one `data_scripts: error:` line, no traceback, and every needle in it."
    assert res.returncode == 2, (res.stdout, res.stderr)
    errs = [l for l in res.stderr.splitlines() if l.startswith('data_scripts: error:')]
    assert len(errs) == 1 and 'Traceback' not in res.stderr, res.stderr
    for n in needles: assert n in errs[0], errs[0]
    return errs[0]


def snapshot(root: Path) -> dict:
    "Every file under `root` with its size and modification time."
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob('*'))}


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "Each dataset's fake archive, built once: {name: (archive, expected)}."
    return {n: b(tmp_path_factory.mktemp(f'src_{n}')) for n, b in BUILDERS.items()}


@pytest.fixture(scope='module')
def prepared(built, tmp_path_factory):
    "Each dataset prepared once from its fake archive: {name: (root, completed process)}."
    out = {}
    for name, (archive, _) in built.items():
        root = tmp_path_factory.mktemp(f'prep_{name}')/name
        out[name] = root, run_ds(name, '--root', root, '--archive', archive, *checksum_args(name, archive), '--quiet')
    return out


# ---------------------------------------------------------------------------------------- conversions

def _check_rows(stdout: str) -> dict:
    "{(category, split): the row's fields} from `anomaly-tutor data check` output."
    return {tuple(l.split()[:2]): l.replace(',', '').split() for l in stdout.splitlines()[1:] if not l.startswith(' ')}


def test_every_dataset_prepares(prepared):
    for name, (root, res) in prepared.items():
        assert res.returncode == 0, (name, res.stdout, res.stderr)
        assert f'prepared {DATASETS[name].title} in {root}' in res.stdout
        assert (root/'.data_scripts.json').is_file() and not (root/'.data_scripts_work').exists()


def test_results_pass_anomaly_tutor_data_check(prepared, built, run_cli, tmp_path):
    """All six MVTec-layout results pass the installed checker with the expected counts, in one call (each call
    imports torch, which is slow) over links to every prepared category, beside the roots' own files."""
    combined = tmp_path/'all'; combined.mkdir()
    for name, pre in MVTEC_LIKE.items():
        root = prepared[name][0]
        for cat in built[name][1]: (combined/_linked(pre, cat)).symlink_to(root/cat, target_is_directory=True)
        for f in root.iterdir():  # the marker, licence and readme files a prepared root holds
            if f.is_file(): (combined/f'{pre or name}_{f.name}').write_bytes(f.read_bytes())
    res = run_cli('data', 'check', combined)
    assert res.returncode == 0, res.stderr
    rows = _check_rows(res.stdout)
    for name, pre in MVTEC_LIKE.items():
        for cat, (n_train, test) in built[name][1].items():
            c = _linked(pre, cat)
            assert rows[(c, 'train')][2] == str(n_train), (name, cat)
            assert rows[(c, 'test')][2] == str(sum(test.values())), (name, cat)
            for d, n in test.items(): assert f'{d}={n}' in rows[(c, 'test')], (name, cat, d)
    assert len(rows) == 2*sum(len(built[n][1]) for n in MVTEC_LIKE)


@pytest.mark.parametrize('name', ['visa', 'btad', 'ksdd2', 'magnetic_tile', 'mvtec_3d'])
def test_masks_are_binary_png(prepared, name):
    "Every written mask is a 0/255 PNG with its image's size, and not empty (VisA's values 1, 2, 7 included)."
    masks = sorted(prepared[name][0].glob('*/ground_truth/*/*'))
    assert masks and all(m.name.endswith('_mask.png') for m in masks)
    for m in masks:
        a = np.asarray(Image.open(m))
        assert a.ndim == 2 and set(np.unique(a)) == {0, 255}, m
        assert (a == 255).sum() == 5*7 and a.shape == (SIZE[1], SIZE[0])


def test_visa_follows_the_split_file(prepared):
    root = prepared['visa'][0]
    assert sorted(p.name for p in (root/'candle'/'train'/'good').iterdir()) == ['0000.JPG', '0001.JPG', '0002.JPG']
    assert sorted(p.name for p in (root/'candle'/'test'/'good').iterdir()) == ['0003.JPG', '0004.JPG']
    assert not list(root.rglob('0005.JPG'))  # not listed in 1cls.csv
    masks = sorted(p.name for p in (root/'candle'/'ground_truth'/'bad').iterdir())
    assert masks == ['000_mask.png', '001_mask.png', '002_mask.png']
    assert (root/'LICENSE-DATASET').is_file()


def test_btad_keeps_extensions_and_matches_masks_by_stem(prepared):
    root = prepared['btad'][0]
    assert {p.suffix for p in root.glob('0[13]/*/*/*.*') if 'ground_truth' not in p.parts} == {'.bmp'}
    assert {p.suffix for p in root.glob('02/*/*/*.*') if 'ground_truth' not in p.parts} == {'.png'}
    for prod in ('01', '02', '03'):
        assert not (root/prod/'train'/'ok').exists()
        assert [p.stem + '_mask' for p in sorted((root/prod/'test'/'ko').iterdir())] == \
               [p.stem for p in sorted((root/prod/'ground_truth'/'ko').iterdir())]


def test_ksdd2_drops_defective_training_images(prepared):
    root, res = prepared['ksdd2']
    assert sorted(p.name for p in (root/'ksdd2'/'train'/'good').iterdir()) == ['10000.png', '10001.png', '10003.png']
    assert sorted(p.name for p in (root/'ksdd2'/'test'/'defect').iterdir()) == ['10001.png', '10002.png']
    assert '1 defective left out' in res.stdout and not list(root.rglob('*_GT.png'))


def test_mvtec_3d_keeps_rgb_only(prepared):
    root = prepared['mvtec_3d'][0]
    assert not list(root.rglob('*.tiff')) and not list(root.rglob('rgb')) and not list(root.rglob('xyz'))
    assert len(list((root/'bagel'/'validation'/'good').iterdir())) == 1
    assert not (root/'bagel'/'ground_truth'/'good').exists()


def test_dtd_is_a_texture_folder(prepared, built):
    root, res = prepared['dtd']
    assert {c: len(list((root/'images'/c).glob('*.jpg'))) for c in built['dtd'][1]} == built['dtd'][1]
    assert (root/'labels'/'train1.txt').is_file() and (root/'imdb'/'imdb.mat').is_file()
    assert '2 texture classes, 5 images' in res.stdout


def test_magnetic_tile_splits_free_images_by_seed_and_matches_masks(prepared):
    "MT_Free: a seeded half in test/good (the rest in train/good), its masks not copied; defects matched by stem."
    from data_scripts import magnetic_tile as mt
    root, res = prepared['magnetic_tile']
    cat = root/'magnetic_tile'
    free = {f'exp{i % 3}_num_{100 + i}' for i in range(6)}
    train = {p.stem for p in (cat/'train'/'good').iterdir()}
    test = {p.stem for p in (cat/'test'/'good').iterdir()}
    assert train | test == free and not train & test and len(test) == 3
    assert test == mt.split_free(free) == mt.split_free(sorted(free, reverse=True))  # order-independent
    assert not (cat/'ground_truth'/'good').exists() and not list(root.rglob('*.bmp'))
    assert {p.name for p in (cat/'test').iterdir()} == {'good', 'blowhole', 'break', 'crack', 'fray', 'uneven'}
    for d in ('blowhole', 'break', 'crack', 'fray', 'uneven'):
        assert [p.stem + '_mask' for p in sorted((cat/'test'/d).iterdir())] == \
               [p.stem for p in sorted((cat/'ground_truth'/d).iterdir())]
    assert {p.suffix for p in (cat/'test').rglob('*.*')} == {'.jpg'}
    assert (root/'README.md').is_file() and not (root/'dataset.jpg').exists()
    assert 'seeded split' in res.stdout and 'ignored 1 file(s) other than' in res.stdout


def test_magnetic_tile_split_is_stable():
    "The split depends only on the stems and the seed: pinned here so that a change to it is seen."
    from data_scripts import magnetic_tile as mt
    stems = [f'exp1_num_{i}' for i in range(10)]
    assert len(mt.split_free(stems)) == 5 and mt.split_free(['a']) == set() and len(mt.split_free(['a', 'b'])) == 1
    assert sorted(mt.split_free(stems)) == sorted(sorted(stems, key=mt.split_key)[:5])


def test_magnetic_tile_image_without_mask_is_refused(tmp_path, capsys):
    src = tmp_path/'src'/MT_TOP
    for i in range(2): _img(src/'MT_Free'/'Imgs'/f'exp0_num_{i}.jpg', i)
    _img(src/'MT_Crack'/'Imgs'/'exp1_num_7.jpg', 9)  # its .png mask is missing
    archive = _pack(tmp_path/'src', tmp_path/f'{MT_TOP}.zip')
    root = tmp_path/'mt'
    assert_error(run_main(capsys, 'magnetic_tile', '--root', root, '--archive', archive, '--sha256', sha256(archive),
                          '--quiet'), 'exp1_num_7.jpg', 'has no mask')
    assert not (root/'.data_scripts.json').exists() and not (root/'magnetic_tile').exists()


# ---------------------------------------------------------------------------------------- idempotence

@pytest.mark.parametrize('name', list(BUILDERS))
def test_second_run_is_a_no_op(prepared, built, name, capsys):
    "A second run (with or without the archive) verifies the marker, says so and changes nothing."
    root = prepared[name][0]
    before = snapshot(root)
    for extra in (['--archive', built[name][0]], []):
        res = run_main(capsys, name, '--root', root, *extra)
        assert res.returncode == 0 and 'already prepared' in res.stdout, res.stderr
    assert snapshot(root) == before
    if name == 'visa':  # once through the real entry point too
        assert 'already prepared' in run_ds(name, '--root', root).stdout and snapshot(root) == before


def test_changed_root_is_detected_and_force_redoes_it(built, tmp_path, capsys):
    archive = built['ksdd2'][0]
    root, args = tmp_path/'ksdd2', ('--archive', archive, '--sha256', sha256(archive), '--quiet')
    assert run_main(capsys, 'ksdd2', '--root', root, *args).returncode == 0
    (root/'ksdd2'/'train'/'good'/'10001.png').unlink()
    assert_error(run_main(capsys, 'ksdd2', '--root', root), 'has changed since', 'ksdd2/train/good: 2 images, 3',
                 '--force')
    res = run_main(capsys, 'ksdd2', '--root', root, *args, '--force')
    assert res.returncode == 0, res.stderr
    assert (root/'ksdd2'/'train'/'good'/'10001.png').is_file()
    assert 'already prepared' in run_main(capsys, 'ksdd2', '--root', root).stdout


def test_refuses_foreign_folders_and_another_datasets_root(built, prepared, tmp_path, capsys):
    (tmp_path/'mine'/'holiday_photos').mkdir(parents=True)
    archive = built['btad'][0]
    assert_error(run_main(capsys, 'btad', '--root', tmp_path/'mine', '--archive', archive, '--sha256', sha256(archive)),
                 'holiday_photos', 'empty folder', '--force')
    assert_error(run_main(capsys, 'btad', '--root', prepared['ksdd2'][0], '--archive', archive),
                 'already holds KolektorSDD2', 'separate folder')


# ---------------------------------------------------------------------------------------- checksums

def test_corrupted_archive_is_refused(built, tmp_path):
    archive = built['mvtec_ad'][0]
    bad = tmp_path/archive.name
    data = bytearray(archive.read_bytes()); data[len(data)//2] ^= 0xFF; bad.write_bytes(bytes(data))
    root = tmp_path/'mvtec'
    assert_error(run_ds('mvtec_ad', '--root', root, '--archive', bad, '--sha256', sha256(archive)),
                 'checksum mismatch', sha256(bad), sha256(archive), 'refusing to extract')
    assert not root.exists() or not [p for p in root.iterdir()]


def test_recorded_checksum_and_size_are_enforced(built, tmp_path, capsys):
    "Without an override the recorded constants apply: SHA-256 (MVTec AD, MT), MD5 (MVTec 3D-AD), size (KSDD2)."
    run = lambda name, *a: run_main(capsys, name, '--root', tmp_path/name, '--archive', built[name][0], '--quiet', *a)
    assert_error(run('mvtec_ad'), 'checksum mismatch', DATASETS['mvtec_ad'].checksums['sha256'])
    assert_error(run('mvtec_3d'), 'MD5', DATASETS['mvtec_3d'].checksums['md5'])
    assert_error(run('ksdd2'), '853,126,555 bytes', 'incomplete or a different version')
    res = run('magnetic_tile')  # a reported checksum is enforced too, and said to be reported
    assert_error(res, 'checksum mismatch', DATASETS['magnetic_tile'].checksums['sha256'])
    assert 'reported by third parties' in res.stdout
    assert_error(run('mvtec_3d', '--md5', '0'*32), 'checksum mismatch', '0'*32)
    assert not any((tmp_path/n).exists() for n in ('mvtec_ad', 'mvtec_3d', 'ksdd2', 'magnetic_tile'))


def test_archive_of_the_wrong_dataset_is_refused(built, tmp_path, capsys):
    archive = built['dtd'][0]
    assert_error(run_main(capsys, 'visa', '--root', tmp_path/'v', '--archive', archive, '--sha256', sha256(archive)),
                 'does not look like VisA', 'split_csv/1cls.csv')
    assert not (tmp_path/'v'/'.data_scripts.json').exists()


# ---------------------------------------------------------------------------------------- safe extraction

def _tar_with(path: Path, members) -> Path:
    "A tar of (name, kind, payload) members: kind 'file' (bytes), 'sym' or 'hard' (link target)."
    with tarfile.open(path, 'w') as tf:
        for name, kind, payload in members:
            ti = tarfile.TarInfo(name)
            if kind == 'file': ti.size = len(payload); tf.addfile(ti, io.BytesIO(payload)); continue
            ti.type, ti.linkname = (tarfile.SYMTYPE if kind == 'sym' else tarfile.LNKTYPE), payload
            tf.addfile(ti)
    return path


def _zip_with(path: Path, names) -> Path:
    with zipfile.ZipFile(path, 'w') as zf:
        for n in names: zf.writestr(zipfile.ZipInfo(n), b'evil')  # ZipInfo keeps the name as written
    return path


UNSAFE = {
    'tar ../evil': lambda d: _tar_with(d/'a.tar', [('ok.txt', 'file', b'ok'), ('../evil', 'file', b'x')]),
    'tar a/../../evil': lambda d: _tar_with(d/'a.tar', [('a/../../evil', 'file', b'x')]),
    'tar /abs': lambda d: _tar_with(d/'a.tar', [('/tmp/evil_abs', 'file', b'x')]),
    'tar symlink out': lambda d: _tar_with(d/'a.tar', [('link', 'sym', '../../outside')]),
    'tar symlink abs': lambda d: _tar_with(d/'a.tar', [('link', 'sym', '/etc')]),
    'tar symlink ..': lambda d: _tar_with(d/'a.tar', [('sub', 'sym', '..'), ('sub/evil', 'file', b'x')]),
    'tar write through an inside symlink': lambda d: _tar_with(d/'a.tar', [('a', 'sym', '.'),
                                                                          ('a/../evil', 'file', b'x')]),
    'tar hardlink out': lambda d: _tar_with(d/'a.tar', [('hl', 'hard', '../evil')]),
    'zip ../evil': lambda d: _zip_with(d/'a.zip', ['ok.txt', '../evil']),
    'zip /abs': lambda d: _zip_with(d/'a.zip', ['/evil']),
}


@pytest.mark.parametrize('case', list(UNSAFE))
def test_unsafe_members_are_refused(case, tmp_path):
    (tmp_path/'in').mkdir()
    archive = UNSAFE[case](tmp_path/'in')
    dest = tmp_path/'box'/'dest'
    with pytest.raises(DataScriptError, match='unsafe|absolute'):
        safe_extract(archive, dest, quiet=True)
    assert not list((tmp_path/'box').glob('evil*')) and not (tmp_path/'evil').exists()
    assert not Path('/tmp/evil_abs').exists()


def test_symlink_inside_is_allowed(tmp_path):
    archive = _tar_with(tmp_path/'ok.tar', [('a/x.txt', 'file', b'hi'), ('a/link', 'sym', 'x.txt')])
    safe_extract(archive, tmp_path/'dest', quiet=True)
    assert (tmp_path/'dest'/'a'/'link').read_text() == 'hi'


def test_unsafe_archive_is_refused_by_the_command(tmp_path):
    "A zip that verifies (its checksum is given) but holds `../evil`: exit 2, nothing written outside."
    src = tmp_path/'src'/'train'; _img(src/'10000.png', 0); _mask(src/'10000_GT.png', 0)
    archive = tmp_path/'KolektorSDD2.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.write(src/'10000.png', 'train/10000.png'); zf.writestr(zipfile.ZipInfo('../evil'), b'x')
    root = tmp_path/'box'/'ksdd2'
    assert_error(run_ds('ksdd2', '--root', root, '--archive', archive, '--sha256', sha256(archive), '--quiet'),
                 "'../evil'", 'outside')
    assert not list(tmp_path.rglob('evil')) and not (root/'.data_scripts_work').exists()


# ---------------------------------------------------------------------------------------- downloads

@pytest.mark.parametrize('name', list(BUILDERS))
def test_offline_fails_fast_with_the_way_in(name, monkeypatch, capsys, tmp_path):
    "No network: one error line naming the URL, the file name, the checksum and `--archive`, within seconds."
    def refuse(*a, **k): raise urllib.error.URLError(OSError(101, 'Network is unreachable'))
    monkeypatch.setattr('urllib.request.urlopen', refuse)
    ds, t0 = DATASETS[name], time.monotonic()
    assert main([name, '--root', str(tmp_path/name), '--quiet']) == 2
    assert time.monotonic() - t0 < 5
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('data_scripts: error: cannot download')
    for needle in (ds.url, ds.filename, *ds.checksums.values(), '--archive', f'python -m data_scripts {name}'):
        assert needle in err, (needle, err)
    assert not (tmp_path/name).exists()


def test_closed_port_fails_fast(tmp_path):
    t0 = time.monotonic()
    res = run_ds('dtd', '--root', tmp_path/'dtd', '--url', 'http://127.0.0.1:9/dtd-r1.0.1.tar.gz', timeout=30)
    assert time.monotonic() - t0 < 15
    assert_error(res, 'http://127.0.0.1:9/dtd-r1.0.1.tar.gz', 'dtd-r1.0.1.tar.gz', DATASETS['dtd'].checksums['md5'],
                 '--archive')


class _Server(http.server.ThreadingHTTPServer):
    "Serves one payload; honours Range requests when `ranges` is True; records the Range headers it got."
    def __init__(self, payload: bytes, ranges: bool):
        self.payload, self.ranges, self.seen = payload, ranges, []
        super().__init__(('127.0.0.1', 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data, rng = self.server.payload, self.headers.get('Range')
        self.server.seen.append(rng)
        start = int(rng.split('=')[1].split('-')[0]) if rng and self.server.ranges else 0
        if start >= len(data) and start: self.send_response(416); self.end_headers(); return
        self.send_response(206 if start else 200)
        if start: self.send_header('Content-Range', f'bytes {start}-{len(data) - 1}/{len(data)}')
        self.send_header('Content-Length', str(len(data) - start)); self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args): pass


@pytest.mark.parametrize('ranges', [True, False])
def test_download_resumes_a_part_file(built, tmp_path, ranges, capsys):
    "A `.part` holding the first bytes is resumed with an HTTP Range request (or restarted if Range is ignored)."
    archive = built['dtd'][0]
    payload = archive.read_bytes()
    server = _Server(payload, ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = tmp_path/'dtd'
        part = root/'.downloads'/'dtd-r1.0.1.tar.gz.part'
        part.parent.mkdir(parents=True); part.write_bytes(payload[:1000])
        url = f'http://127.0.0.1:{server.server_address[1]}/dtd-r1.0.1.tar.gz'
        assert main(['dtd', '--root', str(root), '--url', url, '--sha256', sha256(archive), '--quiet']) == 0
    finally:
        server.shutdown(); server.server_close()
    assert server.seen == ['bytes=1000-']
    assert not part.exists() and (root/'.downloads'/'dtd-r1.0.1.tar.gz').read_bytes() == payload
    assert (root/'images'/'banded').is_dir() and 'prepared DTD' in capsys.readouterr().out


@pytest.mark.parametrize('page', [False, True])
def test_download_with_a_wrong_checksum_is_deleted(built, tmp_path, capsys, page):
    "The fake archive fails DTD's recorded checksums; so does a web page (an expired link), which is said."
    payload = b'<!DOCTYPE html><html><body>Link expired</body></html>' if page else built['dtd'][0].read_bytes()
    server = _Server(payload, True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/x'
        assert main(['dtd', '--root', str(tmp_path/'dtd'), '--url', url, '--quiet']) == 2
    finally:
        server.shutdown(); server.server_close()
    err = capsys.readouterr().err
    assert 'checksum mismatch' in err and 'The download was deleted' in err
    assert ('sent a web page' in err) == page
    assert not list((tmp_path/'dtd'/'.downloads').iterdir())


def test_missing_archive_is_one_error_line(tmp_path):
    assert_error(run_ds('visa', '--root', tmp_path/'v', '--archive', tmp_path/'nope.tar'), 'nope.tar', 'does not exist')
