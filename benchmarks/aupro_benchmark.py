"""Benchmark of `anomaly_tutor.metrics.aupro` (and the other pixel metrics) on 500 maps of 256×256.

Usage: python benchmarks/aupro_benchmark.py [--n 500] [--size 256] [--subset 25] [--skip-sklearn]

Prints one table: seconds (first run and best of 3 for our AUPRO; one run for the slower comparisons), peak
memory of each AUPRO implementation, and the AUPRO value each returns. Peak memory is measured in a fresh
subprocess per implementation that loads the saved test set and calls the function once; two numbers are given:
the growth of the process's peak resident set during the call (Linux: the high-water mark is reset through
/proc/self/clear_refs just before the call, then VmHWM after it minus VmRSS before it, so the input arrays and
the imported libraries are not counted; `getrusage().ru_maxrss` cannot be used because a child inherits its
parent's peak) and the peak of `tracemalloc` during a second call (numpy reports its buffers to it).

The comparisons are written here for the benchmark, not taken from elsewhere:
* `official-style exact`: the MVTec AD algorithm as MVTec's official evaluation code computes it (one descending
  argsort of all pixel scores, cumulative sums of FP and PRO changes, last point of each tie run, clip, pad,
  trapezoid interpolated at 0.3). Same number as ours, different cost.
* `200-threshold loop`: the helper that circulates with many papers (RD4AD / CFlow style): 200 equidistant
  score thresholds, per threshold and image skimage `label` + `regionprops`, points with FPR >= 0.3 dropped, FPR
  rescaled to [0, 1], `sklearn.metrics.auc`. Timed on `--subset` images and scaled linearly to all of them.
"""
import argparse, os, subprocess, sys, tempfile, time, tracemalloc

import numpy as np
from scipy import ndimage

from anomaly_tutor.metrics import (aupro, fake_maps_masks, pixel_auroc, pixel_ap, pixel_metrics, pro_curve,
                                   trapezoid_to, EIGHT_CONNECTED)


def aupro_official_style(maps, masks, fpr_limit=0.3):
    "Exact AUPRO the way the official MVTec AD code computes it: one argsort of every pixel."
    maps, masks = np.asarray(maps), np.asarray(masks).astype(bool)
    fp_change = (~masks).astype(np.uint32)
    pro_change = np.zeros(masks.shape, np.float64)
    n_regions = 0
    for i, m in enumerate(masks):
        lab, k = ndimage.label(m, structure=EIGHT_CONNECTED)
        n_regions += k
        if k: pro_change[i][m] = 1.0 / np.bincount(lab.ravel())[lab[m]]
    order = np.argsort(maps.ravel())[::-1]
    s = maps.ravel()[order]
    fpr = np.cumsum(fp_change.ravel()[order]) / fp_change.sum()
    pro = np.cumsum(pro_change.ravel()[order]) / n_regions
    keep = np.r_[s[1:] != s[:-1], True]
    fpr, pro = np.minimum(fpr[keep], 1), np.minimum(pro[keep], 1)
    return trapezoid_to(np.r_[0, fpr, 1], np.r_[0, pro, 1], fpr_limit) / fpr_limit


def aupro_200_thresholds(maps, masks, num_th=200, fpr_limit=0.3):
    "The widespread approximate PRO helper: equidistant score thresholds, rescaled FPR, sklearn auc."
    from skimage import measure
    from sklearn.metrics import auc
    masks = np.asarray(masks).astype(bool)
    lo, hi = maps.min(), maps.max()
    fprs, pros = [], []
    for th in np.arange(lo, hi, (hi - lo) / num_th):
        pred = maps > th
        overlaps = [pred[i][r.coords[:, 0], r.coords[:, 1]].sum() / r.area
                    for i, m in enumerate(masks) for r in measure.regionprops(measure.label(m, connectivity=2))]
        fprs.append((pred & ~masks).sum() / (~masks).sum()); pros.append(np.mean(overlaps))
    fprs, pros = np.array(fprs), np.array(pros)
    keep = fprs < fpr_limit
    f = fprs[keep]
    return auc((f - f.min()) / (f.max() - f.min()), pros[keep])


FUNCS = dict(aupro=aupro, pixel_metrics=pixel_metrics, official=aupro_official_style)


def _status_mib(key):
    "A memory figure (VmRSS, VmHWM) of this process from /proc/self/status, in MiB."
    with open('/proc/self/status') as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key + ':')) / 1024


def child(name, folder):
    "Run in a fresh process: load the data, call FUNCS[name] once, print peak-RSS growth and tracemalloc peak (MiB)."
    maps, masks = np.load(os.path.join(folder, 'maps.npy')), np.load(os.path.join(folder, 'masks.npy'))
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')    # reset the peak RSS to the current RSS
    rss0 = _status_mib('VmRSS')
    FUNCS[name](maps, masks)
    rss_peak = _status_mib('VmHWM')
    tracemalloc.start(); FUNCS[name](maps, masks); _, peak = tracemalloc.get_traced_memory(); tracemalloc.stop()
    print(rss_peak - rss0, peak / 2**20, rss_peak)


def memory(name, folder):
    out = subprocess.run([sys.executable, __file__, '--child', name, folder], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


def timed(f, *args, repeat=1):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter(); value = f(*args); times.append(time.perf_counter() - t0)
    return value, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--n', type=int, default=500); ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--subset', type=int, default=25); ap.add_argument('--skip-sklearn', action='store_true')
    ap.add_argument('--child', nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(*a.child)

    maps, masks = fake_maps_masks(a.n, a.size, seed=0)
    print(f"data: {a.n} maps of {a.size}x{a.size} = {maps.size / 1e6:.1f} M pixels, {masks.mean():.2%} defective, "
          f"{(~masks.any(axis=(1, 2))).sum()} defect-free images; CPU cores: {os.cpu_count()}, numpy {np.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as d:
        np.save(os.path.join(d, 'maps.npy'), maps); np.save(os.path.join(d, 'masks.npy'), masks)
        v, t = timed(aupro, maps, masks, repeat=3)
        rows.append(('aupro (ours)', t[0], min(t), *memory('aupro', d), v))
        v_ours = v
        v, t = timed(pixel_metrics, maps, masks, repeat=3)
        rows.append(('pixel_metrics (ours: AUROC, AP, AUPRO, F1)', t[0], min(t), *memory('pixel_metrics', d), v['aupro']))
        v, t = timed(aupro_official_style, maps, masks)
        rows.append(('official-style exact (full argsort)', t[0], None, *memory('official', d), v))
        v, t = timed(lambda: trapezoid_to(*pro_curve(maps, masks), .3) / .3)
        rows.append(('pro_curve (ours, full curve) + trapezoid', t[0], None, None, None, None, v))
        k = a.subset
        v_sub, t = timed(aupro_200_thresholds, maps[:k], masks[:k])
        rows.append((f'200-threshold loop, {k} images x {a.n / k:g}', t[0] * a.n / k, None, None, None, None, v_sub))
        rows.append((f'  (ours on the same {k} images)', None, None, None, None, None, aupro(maps[:k], masks[:k])))
        v, t = timed(pixel_auroc, maps, masks); rows.append(('pixel_auroc (ours)', t[0], None, None, None, None, v))
        v, t = timed(pixel_ap, maps, masks); rows.append(('pixel_ap (ours)', t[0], None, None, None, None, v))
        if not a.skip_sklearn:
            from sklearn.metrics import roc_auc_score, average_precision_score
            y, s = masks.ravel(), maps.ravel()
            v, t = timed(roc_auc_score, y, s); rows.append(('sklearn roc_auc_score', t[0], None, None, None, None, v))
            v, t = timed(average_precision_score, y, s); rows.append(('sklearn average_precision_score', t[0], None, None, None, None, v))

    fmt = lambda x, spec: ' ' * int(spec.split('.')[0]) if x is None else format(x, spec)
    print(f"\n{'method':<46}{'first s':>9}{'best s':>9}{'RSS+ MiB':>10}{'tracemalloc MiB':>17}{'peak RSS MiB':>14}{'value':>10}")
    for name, t0, tb, rss, tm, hwm, v in rows:
        print(f"{name:<46}{fmt(t0, '9.2f')}{fmt(tb, '9.2f')}{fmt(rss, '10.0f')}{fmt(tm, '17.0f')}{fmt(hwm, '14.0f')}"
              f"{fmt(v, '10.5f')}")
    print("RSS+: growth of the peak resident set during one call (inputs excluded); peak RSS: whole process, "
          "inputs and imported libraries included.")
    print(f"\nour AUPRO vs official-style exact: |diff| = {abs(rows[0][-1] - rows[2][-1]):.2e}")


if __name__ == '__main__':
    main()
