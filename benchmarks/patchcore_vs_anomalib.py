"""Our PatchCore against anomalib's, side by side: the same EfficientNet-Lite0 ImageNet weights, the same levels
(strides 8 and 16), the same images and coreset ratio; metrics by our code; fit and inference wall time and peak
memory (each implementation in its own process).

    pip install -e ".[bench]"      # anomalib 2.7 (optional; the tests never need it)
    python benchmarks/patchcore_vs_anomalib.py --categories pill,gravel --image-size 256 --coreset 0.01 --seeds 0,1,2
    python benchmarks/patchcore_vs_anomalib.py --categories pill,gravel --image-size 256 --coreset 1   # no coreset

With a coreset, each side draws its own random projection and first centre from the seed, so one seed compares two
random draws, not two implementations: `--seeds` repeats every run, and the summary compares the means over seeds
(per category and metric) beside the spread of one implementation across seeds.

With `--coreset 1` both keep every training patch (anomalib's bank is set directly, since its greedy sampler would
need 100,000 steps), so the two differ only in what follows the search: no randomness is left, one seed is enough,
and the metrics must agree to rounding. Test images go one at a time
then, so that anomalib's full distance matrix (1,024 × 102,400 floats) fits in memory.

anomalib's model is driven through its own torch API (`PatchcoreModel`: training-mode forward collects embeddings,
`subsample_embedding` runs its greedy coreset, eval-mode forward gives maps and scores), so both sides run the same
loop without Lightning's trainer around either. Writes `benchmarks/patchcore_vs_anomalib_coreset<ratio>.json`; run it
on a quiet machine (nothing else busy), since the speed ratio is the point.
"""
import argparse, json, platform, resource, statistics, subprocess, sys, time
from pathlib import Path

import torch

def run_one(impl, category, image_size, coreset, seed=0):
    "Fit and evaluate one implementation on one category in this process; metrics, seconds and peak RSS."
    from anomalib_peers import anomalib_patchcore, fit_anomalib_patchcore, predict_all   # this folder's peer runner
    from anomaly_tutor.data import MVTecDataset, make_loader
    from anomaly_tutor.metrics import aupro, image_auroc, pixel_auroc
    from anomaly_tutor.patchcore import PATCHCORE_PRESETS, patchcore_from_config
    from anomaly_tutor.runner import factory_root
    from anomaly_tutor.training import make_config, seed_everything
    seed_everything(seed)
    root = factory_root('cpu', progress=False)
    train = make_loader(MVTecDataset(root, category, 'train', size=image_size), 16)
    test = make_loader(MVTecDataset(root, category, 'test', size=image_size), 16 if coreset < 1 else 1)
    if impl == 'ours':
        model = patchcore_from_config(make_config(PATCHCORE_PRESETS, 'cpu', image_size=image_size, coreset_ratio=coreset), seed)
        t0 = time.perf_counter()
        model.fit(train, progress=False)
        fit = time.perf_counter() - t0
        predict = model
    elif impl == 'ours-sparse':  # ours, its greedy coreset run in anomalib's sparse random projection instead of ours
        from anomalib.models.components.dimensionality_reduction import SparseRandomProjection
        from anomaly_tutor.patchcore import greedy_coreset
        model = patchcore_from_config(make_config(PATCHCORE_PRESETS, 'cpu', image_size=image_size, coreset_ratio=1.0), seed)
        t0 = time.perf_counter()
        model.fit(train, progress=False)
        bank = model.memory_bank
        projection = SparseRandomProjection(eps=0.9)
        projection.fit(bank)
        chosen = greedy_coreset(projection.transform(bank), max(1, round(len(bank) * coreset)), proj_dim=None, seed=seed)
        model.memory_bank = bank[chosen].contiguous()
        fit = time.perf_counter() - t0
        predict = model
    else:
        model = anomalib_patchcore()
        t0 = time.perf_counter()
        predict = fit_anomalib_patchcore(model, train, coreset)
        fit = time.perf_counter() - t0
    maps, scores, masks, labels, infer = predict_all(predict, test, 128)
    return dict(impl=impl, category=category, seed=seed, image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
                aupro=aupro(maps, masks), fit_seconds=fit, infer_seconds=infer,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--categories', default='pill,gravel')
    ap.add_argument('--image-size', type=int, default=256)
    ap.add_argument('--coreset', type=float, default=0.01)
    ap.add_argument('--seeds', default='0', help='comma-separated seeds; each run is repeated per seed')
    ap.add_argument('--impls', default='ours,anomalib',
                    help="comma list of: ours, anomalib, ours-sparse (ours with anomalib's sparse projection in the coreset)")
    ap.add_argument('--append', action='store_true',
                    help="keep the existing file's rows of other implementations, categories or seeds")
    ap.add_argument('--one', nargs=3, metavar=('IMPL', 'CATEGORY', 'SEED'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one[0], a.one[1], a.image_size, a.coreset, int(a.one[2]))))
        return
    seeds = [int(s) for s in a.seeds.split(',')]
    out = Path(__file__).with_name(f'patchcore_vs_anomalib_coreset{a.coreset:g}.json')
    rows = json.loads(out.read_text())['rows'] if a.append and out.exists() else []
    for cat in a.categories.split(','):
        for seed in seeds:
            for impl in a.impls.split(','):
                rows = [r for r in rows if (r['impl'], r['category'], r.get('seed', 0)) != (impl, cat, seed)]
                cmd = [sys.executable, __file__, '--one', impl, cat, str(seed), '--image-size', str(a.image_size),
                       '--coreset', str(a.coreset)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode: sys.exit(f'{impl} / {cat} / seed {seed} failed:\n{res.stderr[-3000:]}')
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    summary = summarise(rows)
    print(json.dumps(summary, indent=1))
    out.write_text(json.dumps(dict(
        rows=rows, summary=summary, image_size=a.image_size, coreset=a.coreset, seeds=sorted({r['seed'] for r in rows}),
        threads=torch.get_num_threads(), machine=f'{platform.machine()}, {torch.get_num_threads()} CPU threads'), indent=1))

METRIC_KEYS = ('image_auroc', 'pixel_auroc', 'aupro')

def summarise(rows):
    """Per implementation of ours against anomalib's: the gaps between their means over seeds (per category and metric),
    the ratio of their mean fit + predict seconds per run; each implementation's largest spread (std) across seeds;
    peak RSS."""
    def of(impl, cat): return [r for r in rows if r['impl'] == impl and r['category'] == cat]
    def mean(impl, cat, k): return statistics.fmean(r[k] for r in of(impl, cat))
    def seconds(impl): return statistics.fmean(r['fit_seconds'] + r['infer_seconds'] for r in rows if r['impl'] == impl)
    impls = sorted({r['impl'] for r in rows})
    cats = sorted({r['category'] for r in rows if r['impl'] == 'anomalib'})
    versus = {}
    for impl in (i for i in impls if i != 'anomalib'):
        gaps = {f'{c}/{k}': mean(impl, c, k) - mean('anomalib', c, k) for c in cats for k in METRIC_KEYS if of(impl, c)}
        versus[impl] = dict(max_gap_of_seed_means=max(map(abs, gaps.values())), gap_of_seed_means=gaps,
                            fit_plus_infer_speedup=seconds('anomalib') / seconds(impl))
    spread = {impl: max((statistics.stdev(r[k] for r in of(impl, c)) if len(of(impl, c)) > 1 else 0.0)
                        for c in cats for k in METRIC_KEYS) for impl in impls}
    return dict(versus_anomalib=versus, max_seed_std=spread,
                fit_plus_infer_seconds_per_run={i: seconds(i) for i in impls},
                peak_rss_mb={i: max(r['peak_rss_mb'] for r in rows if r['impl'] == i) for i in impls})

if __name__ == '__main__':
    main()
