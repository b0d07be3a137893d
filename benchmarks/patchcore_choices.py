"""Measure the `cpu` profile's PatchCore choices (input resolution, feature levels, coreset ratio) on every factory
category, and write `benchmarks/patchcore_choices.json` (read by chapter `07_patchcore`).

    python benchmarks/patchcore_choices.py            # the full grid, about 15 minutes on 2 cores
    python benchmarks/patchcore_choices.py --quick    # two settings on two categories

Metrics at the factory's own 128 px, seed 0; fit seconds are wall time on this machine (state it when you quote it).
"""
import argparse, json, time
from pathlib import Path

import torch

from anomaly_tutor.patchcore import PATCHCORE_PRESETS, fit_and_evaluate
from anomaly_tutor.runner import factory_root
from anomaly_tutor.training import machine, make_config

GRID = [dict(image_size=128), dict(image_size=256), dict(image_size=320),
        dict(image_size=256, levels=(1, 2, 3)), dict(image_size=256, coreset_ratio=0.05)]

def main(quick=False, out=Path(__file__).with_name('patchcore_choices.json')):
    root = factory_root('cpu', progress=False)
    cats = ['pill', 'gravel'] if quick else sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for change in GRID[1:3] if quick else GRID:
        cfg = make_config(PATCHCORE_PRESETS, 'cpu', **change)
        runs = [fit_and_evaluate(cfg, root, c, eval_size=128, progress=False) for c in cats]
        mean = lambda k: sum(r['metrics'][k] for r in runs) / len(runs)
        rows.append(dict(image_size=cfg.image_size, levels=list(cfg.levels), coreset_ratio=cfg.coreset_ratio,
                         **{k: round(mean(k), 4) for k in ('image_auroc', 'pixel_auroc', 'aupro', 'pixel_ap')},
                         fit_seconds=round(sum(r['fit_seconds'] for r in runs) / len(runs), 2),
                         per_category={c: {k: round(v, 4) for k, v in r['metrics'].items()} for c, r in zip(cats, runs)}))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != 'per_category'}), flush=True)
    if not quick:
        out.write_text(json.dumps(dict(rows=rows, categories=cats, seed=0, machine=machine(),
                                       torch_threads=torch.get_num_threads()), indent=1))
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true')
    main(ap.parse_args().quick)
