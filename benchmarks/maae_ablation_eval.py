"""Evaluate finished MAAE ablation checkpoints (`runs/<run>/ablation/<name>/checkpoint.pt`, written by
`repro/62_maae` with `ablation=True`) on every factory category, for runs whose notebook did not reach its table.

    python benchmarks/maae_ablation_eval.py runs/maae-cpu-ablation --out results/maae-cpu-ablation/ablation_partial.json
"""
import argparse, json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from anomaly_tutor.data import MVTecDataset
from anomaly_tutor.metrics import image_auroc, pixel_auroc, pixel_ap, aupro
from anomaly_tutor.runner import factory_root
from anomaly_tutor.training import machine
from anomaly_tutor.papers.maae import maae_config, build_maae, cache_levels, maae_predict, ABLATIONS

KEYS = ('image_auroc', 'pixel_auroc', 'aupro', 'pixel_ap')


def slug(name): return ''.join(ch if ch.isalnum() else '_' for ch in name).strip('_')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('run', type=Path)
    ap.add_argument('--out', type=Path, required=True)
    args = ap.parse_args()
    root = factory_root('cpu', progress=False)
    cats = sorted(p.name for p in root.iterdir() if p.is_dir())
    rows = []
    for name, switches in ABLATIONS.items():
        ckpt = args.run/('train' if name == 'MAAE' else Path('ablation')/slug(name))/'checkpoint.pt'
        cfg = maae_config('cpu', **switches)
        if not ckpt.exists(): continue
        state = torch.load(ckpt, map_location='cpu', weights_only=False)
        if state['epoch'] < cfg.epochs: continue                     # unfinished: not a row
        model = build_maae(cfg)
        model.load_state_dict(state['model'])
        per_cat = {}
        for cat in cats:
            ds = MVTecDataset(root, cat, 'test', size=cfg.image_size)
            X = torch.stack([s.image for s in ds])
            masks = torch.stack([s.mask[0] for s in MVTecDataset(root, cat, 'test', size=cfg.eval_size)])
            labels = torch.tensor([r.label for r in ds.records])
            maps, scores = maae_predict(model, cache_levels(model, X), cfg.image_size, cfg.sigma)
            maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
            per_cat[cat] = dict(image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
                                aupro=aupro(maps, masks), pixel_ap=pixel_ap(maps, masks))
        rows.append(dict(name=name, **switches, **{k: float(np.mean([m[k] for m in per_cat.values()])) for k in KEYS},
                         per_category=per_cat, train_seconds=state['seconds']))
        print(name, {k: round(rows[-1][k], 3) for k in KEYS})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(run=str(args.run), categories=cats, profile='cpu', seed=0, machine=machine(),
                                        rows=rows), indent=1) + '\n')
    print(f'wrote {args.out}')


if __name__ == '__main__': main()
