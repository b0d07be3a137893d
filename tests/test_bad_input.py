"""Issue 22: bad input and interruptions through the command line, as a user meets them.

No traceback reaches the terminal, no run gives a result from misread data, nothing already written is lost.
"""
import json, os, shutil, signal, subprocess, time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomaly_tutor.data import MVTecDataset, read_image, write_fake_category

from conftest import ROOT, cli_path

METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def _results(run: Path) -> dict:
    return json.loads((run/'results.json').read_text())


def _one_line_error(res, *needles, code=2):
    "The command failed with `code` and a single stderr line holding every needle, without a traceback."
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert 'Traceback' not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for n in needles: assert n in res.stderr, res.stderr


def _copy_as_16bit(src: Path, dst: Path):
    "Copy a grayscale category with every image and mask saved as a 16-bit PNG (value * 257, a camera's 16-bit export)."
    for p in sorted(src.rglob('*.png')):
        out = dst/p.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(Image.open(p)).astype(np.uint16) * 257).save(out)


# ---- 1. 16-bit images

def test_16bit_copy_gives_the_same_metrics(data, tmp_path, run_cli):
    root = tmp_path/'cams'
    shutil.copytree(data/'gear', root/'gear')
    _copy_as_16bit(data/'gear', root/'gear16')
    sample = root/'gear16'/'test'/'crack'/'000.png'
    assert Image.open(sample).mode == 'I;16'
    assert (np.asarray(Image.open(sample).convert('RGB')) == 255).mean() > 0.99  # what PIL's own conversion makes of it
    assert np.array_equal(np.asarray(read_image(sample)), np.asarray(read_image(data/'gear'/'test'/'crack'/'000.png')))
    check = run_cli('data', 'check', root/'gear16')
    assert check.returncode == 0 and 'warning' not in check.stdout, (check.stdout, check.stderr)
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', root, '--out', tmp_path/'o', '--quiet')
    assert res.returncode == 0, res.stderr
    eight, sixteen = _results(tmp_path/'o'/'gear'), _results(tmp_path/'o'/'gear16')
    assert [eight[k] for k in METRICS] == [sixteen[k] for k in METRICS]
    assert eight['image_auroc'] != 0.5


def test_16bit_rgb_reads_like_8bit(tmp_path):
    cv2 = pytest.importorskip('cv2')
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path/'rgb16.png'), rgb[..., ::-1].astype(np.uint16) * 257)
    assert np.array_equal(np.asarray(read_image(tmp_path/'rgb16.png')), rgb)


# ---- 2. non-binary and JPEG masks

def test_gray_and_jpeg_masks_are_reported_and_read_by_the_stated_rule(data, tmp_path, run_cli):
    gt = data/'widget'/'ground_truth'
    gradient = np.tile(np.linspace(0, 255, 32).round().astype(np.uint8), (32, 1))   # a soft mask over the whole image
    Image.fromarray(gradient).save(gt/'scratch'/'000_mask.png')
    square = np.zeros((32, 32), np.uint8)
    square[5:19, 3:14] = 255
    (gt/'dent'/'001_mask.png').unlink()
    Image.fromarray(square).save(gt/'dent'/'001_mask.jpg', quality=60)
    res = run_cli('data', 'check', data/'widget')
    assert res.returncode == 0, res.stderr
    warnings = [l for l in res.stdout.splitlines() if 'warning:' in l]
    assert len(warnings) == 2, res.stdout
    assert '2 of 4 masks are not binary' in warnings[0] and '% of their pixels are gray' in warnings[0] and '>= 128' in warnings[0]
    assert 'JPEG' in warnings[1] and '001_mask.jpg' in warnings[1]
    masks = {Path(s.path).name + s.defect: s.mask for s in MVTecDataset(data, 'widget', 'test')}
    assert masks['000.pngscratch'].mean().item() == 0.5                  # >= 128 of 255, not 31 of 32 columns
    jpeg = masks['001.pngdent'][0].numpy().astype(bool)
    assert (jpeg == (square >= 128)).mean() > 0.99                          # compression noise is not a defect


# ---- 3. and 4. the output folder

def test_out_is_a_file(data, tmp_path, run_cli):
    (tmp_path/'taken').write_text('my notes')
    Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))).save(
        data/'widget'/'ground_truth'/'scratch'/'000_mask.png')
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', tmp_path/'taken', '--quiet')
    _one_line_error(res, str(tmp_path/'taken'), 'is a file, not a folder', 'choose another --out folder')
    assert 'masks are not binary' in res.stdout                                  # data warnings come first
    assert (tmp_path/'taken').read_text() == 'my notes' and sorted(p.name for p in tmp_path.iterdir()) == ['data', 'taken']
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', tmp_path/'taken'/'run', '--quiet')
    _one_line_error(res, 'is a file, not a folder')


def _unwritable(tmp_path) -> Path:
    if os.geteuid() != 0:
        (tmp_path/'locked').mkdir()
        (tmp_path/'locked').chmod(0o500)
        return tmp_path/'locked'/'run'
    probe = Path('/sys/anomaly_tutor_write_probe')          # root may write anywhere but in /sys
    try: probe.mkdir()
    except PermissionError: return probe/'run'
    probe.rmdir()
    pytest.skip('no unwritable folder for this user')


def test_out_not_writable(data, tmp_path, run_cli):
    out = _unwritable(tmp_path)
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', out, '--quiet')
    _one_line_error(res, str(out), 'permission denied', 'choose a --out folder you can write to')


# ---- 6. and the other arguments: refused at once, nothing written

def test_bad_seed_is_refused_before_anything(data, tmp_path, run_cli):
    start = time.perf_counter()
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', tmp_path/'run', '--seed', '-1', '--quiet')
    _one_line_error(res, '--seed must be an integer from 0 to 4294967295, got -1')
    assert not (tmp_path/'run').exists()
    assert time.perf_counter() - start < 60                                 # no kernel was started


def test_cuda_without_gpu_is_refused_before_anything(data, tmp_path, run_cli):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--out', tmp_path/'run',
                  '--device', 'cuda', '--quiet')
    _one_line_error(res, '--device cpu')
    assert not (tmp_path/'run').exists()


# ---- single-class test splits and data errors: found before a notebook, nothing left behind

@pytest.mark.parametrize('keep, needle', [('good', 'has only normal images'), ('defects', 'test/good/')])
def test_one_class_test_split(data, tmp_path, run_cli, keep, needle):
    test = data/'widget'/'test'
    for d in test.iterdir():
        if (d.name == 'good') != (keep == 'good'): shutil.rmtree(d)
    _one_line_error(run_cli('data', 'check', data/'widget'), needle)
    res = run_cli('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
                  '--out', tmp_path/'run', '--quiet')
    _one_line_error(res, needle, 'Add')
    assert not (tmp_path/'run').exists()


def test_data_error_leaves_no_folder_so_the_fixed_rerun_uses_it(data, tmp_path, run_cli):
    mask = data/'widget'/'ground_truth'/'dent'/'000_mask.png'
    saved = mask.read_bytes()
    mask.unlink()
    args = ('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
            '--out', tmp_path/'run', '--quiet')
    _one_line_error(run_cli(*args), 'has no mask', '000_mask.png')
    assert not (tmp_path/'run').exists()
    mask.write_bytes(saved)
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert (tmp_path/'run'/'results.json').exists() and not (tmp_path/'run-2').exists()
    assert 'without encryption' not in res.stderr                              # the kernel runs over IPC


def test_data_check_on_a_file(data, run_cli):
    _one_line_error(run_cli('data', 'check', data/'widget'/'train'/'good'/'000.png'), 'is a file, not a folder')


# ---- --help

def test_help_lists_only_papers_that_can_run(tmp_path, monkeypatch, run_cli):
    (tmp_path/'nbs'/'repro').mkdir(parents=True)
    shutil.copy(ROOT/'nbs'/'repro'/'69_baseline.ipynb', tmp_path/'nbs'/'repro')
    monkeypatch.setenv('ANOMALY_TUTOR_NBS', str(tmp_path/'nbs'))
    res = run_cli('reproduce', '--help')
    assert res.returncode == 0
    text = ' '.join(res.stdout.split())
    assert 'PAPER baseline, or all (coming: macow, fader, maae, mala, siamese, patchcore)' in text
    _one_line_error(run_cli('reproduce', 'macow', '--profile', 'smoke'), 'no reproduction notebook yet', 'available: baseline')


# ---- 5. Ctrl-C and --resume

def _interrupt_when(args, ready, presses=1, timeout=300):
    "Start the CLI in its own process group, press Ctrl-C once `ready()` holds, return (returncode, stdout, stderr)."
    p = subprocess.Popen([cli_path(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    deadline = time.monotonic() + timeout
    while not ready() and p.poll() is None and time.monotonic() < deadline: time.sleep(0.02)
    assert p.poll() is None, ('the run ended before the interrupt', p.communicate())
    for i in range(presses):
        if i: time.sleep(0.1)
        os.killpg(p.pid, signal.SIGINT)                     # what the terminal sends on Ctrl-C
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


def _assert_interrupted(code, err, notebook: Path):
    assert code == 130, err
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith('anomaly-tutor: interrupted: ') and err.rstrip().endswith('--resume'), err
    nb = json.loads(notebook.read_text())
    assert nb['metadata']['anomaly_tutor']['status'] == 'interrupted' and nb['metadata']['papermill']['exception']
    assert 'Interrupted (Ctrl-C)' in ''.join(nb['cells'][0]['source'])
    statuses = [c['metadata'].get('papermill', {}).get('status') for c in nb['cells']]
    assert statuses[-1] == 'pending', statuses                             # it does not look complete


def test_ctrl_c_then_resume_macow_gives_the_uninterrupted_metrics(data, tmp_path, run_cli):
    common = ('reproduce', 'macow', '--profile', 'smoke', '--data-root', data, '--category', 'widget',
              '--device', 'cpu', '--quiet', '--set', 'epochs=4')
    straight = run_cli(*common, '--out', tmp_path/'straight')
    assert straight.returncode == 0, straight.stderr
    out = tmp_path/'cut'
    code, _, err = _interrupt_when((*common, '--out', out), lambda: (out/'train'/'checkpoint.pt').exists())
    _assert_interrupted(code, err, out/'60_macow.ipynb')
    assert 'after epoch 1 of 4, step 2 (its last checkpoint, train/checkpoint.pt)' in err, err
    assert not (out/'results.json').exists()
    before = {p: p.stat().st_mtime for p in out.rglob('*')}
    time.sleep(1)
    assert {p: p.stat().st_mtime for p in out.rglob('*')} == before           # the kernel is gone, not still training
    assert (out/'train'/'checkpoint.pt').stat().st_size < 10e6                # a smoke checkpoint is small

    resume = err.split('resume with: ')[1].split()
    assert resume[:3] == ['anomaly-tutor', 'reproduce', 'macow'] and str(out) in resume and 'epochs=4' in resume
    res = run_cli(*resume[1:])
    assert res.returncode == 0, res.stderr
    assert f'resuming macow / widget in {out}' in res.stdout
    a, b = _results(tmp_path/'straight'), _results(out)
    assert b['train_steps'] == a['train_steps'] == 8
    assert [a[k] for k in METRICS] == [b[k] for k in METRICS]
    log = [json.loads(l)['step'] for l in (out/'train'/'log.jsonl').read_text().splitlines()]
    assert log == list(range(1, 9))
    assert (out/'60_macow.attempt-1.ipynb').exists() and not (tmp_path/'cut-2').exists()

    again = run_cli(*resume[1:])
    assert again.returncode == 0 and 'already holds a finished run' in again.stdout, again.stderr
    assert _results(out) == b


def test_ctrl_c_then_resume_baseline_reruns_in_the_same_folder(data, tmp_path, run_cli):
    out = tmp_path/'run'
    args = ('reproduce', 'baseline', '--profile', 'smoke', '--data-root', data, '--category', 'gear', '--out', out, '--quiet')
    code, _, err = _interrupt_when(args, lambda: (out/'69_baseline.ipynb').exists())   # while its kernel starts
    _assert_interrupted(code, err, out/'69_baseline.ipynb')
    assert 'baseline keeps no checkpoint' in err
    res = run_cli(*args, '--resume')
    assert res.returncode == 0, res.stderr
    assert f'running gear again from the start in {out}' in res.stdout
    assert _results(out)['category'] == 'gear' and (out/'69_baseline.attempt-1.ipynb').exists()
    assert not (tmp_path/'run-2').exists()


def test_impatient_double_ctrl_c_is_one_line_too(data, tmp_path):
    out = tmp_path/'run'
    args = ('reproduce', 'macow', '--profile', 'smoke', '--data-root', data, '--category', 'widget', '--device', 'cpu',
            '--quiet', '--set', 'epochs=50', '--out', out)
    code, _, err = _interrupt_when(args, lambda: (out/'train'/'checkpoint.pt').exists(), presses=2)
    _assert_interrupted(code, err, out/'60_macow.ipynb')
    assert 'after epoch' in err and 'of 50' in err
    before = {p: p.stat().st_mtime for p in out.rglob('*')}
    time.sleep(1)
    assert {p: p.stat().st_mtime for p in out.rglob('*')} == before
