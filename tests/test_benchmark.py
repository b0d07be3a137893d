"""`anomaly-tutor reproduce all` and `anomaly-tutor benchmark` through the command line: every paper and both floors,
`--jobs 2` against `--jobs 1`, an interrupted run resumed without redoing finished runs, conflicts refused."""
import json, os, signal, subprocess, time
from pathlib import Path

import pytest

from anomaly_tutor.runner import available_papers, UNIFIED_PAPERS
from conftest import cli_path

METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')


def _all(*args):
    return [cli_path(), 'reproduce', 'all', '--profile', 'smoke', '--device', 'cpu', '--quiet', *map(str, args)]


def _results(out: Path) -> dict:
    found = {}
    for p in sorted(out.rglob('results.json')):
        r = json.loads(p.read_text())
        found[(r['paper'], r['category'])] = r
    return found


def test_reproduce_all_runs_every_paper_and_both_floors(data, tmp_path):
    out = tmp_path/'all'
    res = subprocess.run(_all('--data-root', data, '--category', 'widget', '--out', out, '--jobs', '2'),
                         capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stderr[-3000:]
    found = _results(out)
    assert {p for p, _ in found} == set(available_papers())
    assert {'patchcore', 'baseline'} <= {p for p, _ in found}
    for paper in available_papers():                            # per-category and unified papers alike
        assert (out/paper/'widget'/'results.json').exists(), paper
    for paper in UNIFIED_PAPERS:
        if paper in available_papers(): assert (out/paper/'summary.json').exists(), paper
    md = (out/'benchmark.md').read_text()
    for paper in available_papers(): assert f'| {paper} |' in md
    assert (out/'benchmark.png').stat().st_size > 10_000
    assert '| baseline |' in res.stdout                         # the summary table is printed


def test_jobs_2_gives_the_metrics_of_jobs_1(data, tmp_path):
    """Same seed and thread count, same metrics to the last digit, whatever --jobs is. (The default thread count is
    the cores shared among the jobs, and one thread against two moves metrics in the 7th decimal: float sums.)"""
    papers = 'maae,patchcore,baseline'
    runs = {}
    for jobs in (1, 2):
        out = tmp_path/f'jobs{jobs}'
        res = subprocess.run(_all('--papers', papers, '--data-root', data, '--category', 'widget', '--out', out,
                                  '--jobs', jobs, '--threads', 1), capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        runs[jobs] = _results(out)
    assert len(runs[1]) == 3 and runs[1].keys() == runs[2].keys()  # 3 papers x 1 category
    for key in runs[1]:
        assert [runs[1][key][m] for m in METRICS] == [runs[2][key][m] for m in METRICS], key


def test_interrupted_reproduce_all_resumes_without_redoing_finished_runs(data, tmp_path):
    out = tmp_path/'cut'
    cmd = _all('--papers', 'patchcore,baseline', '--data-root', data, '--out', out)
    # its own process group, SIGINT ignored as in a shell's background job: Ctrl-C must still stop it
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    first = out/'patchcore'/'gear'/'results.json'                 # jobs run in order: patchcore gear, widget, ...
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline: time.sleep(0.2)
    assert first.exists(), 'the first run did not finish'
    os.killpg(proc.pid, signal.SIGINT)                              # what the terminal sends on Ctrl-C
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert 'Traceback' not in stderr
    assert 'interrupted' in stderr and 'Resume with: anomaly-tutor reproduce all' in stderr
    finished = {k: p.stat().st_mtime_ns for k, p in ((p.parent, p) for p in out.rglob('results.json'))}
    assert 1 <= len(finished) < 4
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(_results(out)) == 4
    for folder, stamp in finished.items(): assert (folder/'results.json').stat().st_mtime_ns == stamp, folder


def test_a_finished_run_with_other_settings_is_refused_before_anything_runs(data, tmp_path):
    out = tmp_path/'conflict'
    run = out/'baseline'/'gear'
    run.mkdir(parents=True)
    (run/'results.json').write_text(json.dumps(dict(paper='baseline', category='gear', profile='smoke', seed=5,
                                                    data_root=str(Path(data).resolve()))))
    res = subprocess.run(_all('--papers', 'baseline', '--data-root', data, '--out', out),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and 'other settings' in res.stderr and 'seed 5 here, 0 asked' in res.stderr
    assert not (out/'baseline'/'widget').exists() and not (out/'logs').exists()


def test_benchmark_command_reads_runs_made_any_way(tmp_path, run_cli):
    runs = [('baseline', 'a'), ('patchcore', 'a'), ('baseline', 'b'), ('anomalib-draem', 'b')]   # the last: a peer
    for i, (paper, cat) in enumerate(runs):
        run = tmp_path/'runs'/paper/cat
        run.mkdir(parents=True)
        peer = dict(trained_params=97_422_725) if paper.startswith('anomalib') else {}
        (run/'results.json').write_text(json.dumps(dict(
            paper=paper, category=cat, profile='cpu', seed=0, device='cpu', image_auroc=0.5 + 0.1 * i,
            pixel_auroc=0.8, pixel_ap=0.2, aupro=0.5, f1_max=0.7, train_seconds=1.0, infer_ms_per_image=1.0, **peer)))
    res = run_cli('benchmark', tmp_path/'runs', '--out', tmp_path/'bench')
    assert res.returncode == 0, res.stderr
    md = (tmp_path/'bench'/'benchmark.md').read_text()
    assert '| patchcore (1/2) |' in md                           # ran one of the two categories: said
    assert '| anomalib-draem (1/2) |' in md and '97.42 M' in md  # a peer's row, with the parameters it recorded
    rows = [line.split(' |')[0] for line in md.split('## Image AUROC')[1].split('##')[0].splitlines()
            if line.startswith('| ')]
    assert rows[1:] == ['| anomalib-draem', '| patchcore', '| baseline']   # peers after the papers, before the floors
    assert '| baseline | 0.500 | 0.700 | 0.600 |' in md           # image AUROC per category and mean
