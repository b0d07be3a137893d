"""MACoW's image score: the paper only says it is derived from the anomaly map. This compares rules on the maps of
trained `cpu` runs (no training: each run's own checkpoint is loaded and its test set predicted once), and checks first
that the run's own rule gives back the image AUROC its `results.json` recorded.

    python benchmarks/macow_score_rules.py runs/macow-cpu5/* runs/macow-cpu-pill

Each argument is a finished `anomaly-tutor reproduce macow --profile cpu` run folder (with `results.json` and
`train/checkpoint.pt`). Writes `benchmarks/macow_score_rules.json`: image AUROC per category and rule.
"""
import argparse, json, statistics, sys
from pathlib import Path

import torch

RULES = ('max', 'pool3', 'pool5', 'pool9', 'pool15', 'top1%', 'top5%')

def score(maps, rule):
    "Image scores of N×H×W maps by `rule`: the maximum, the maximum of a k×k mean filter, or the mean of the top p %."
    from anomaly_tutor.metrics import max_score, pooled_max_score
    if rule == 'max': return max_score(maps)
    if rule.startswith('pool'): return pooled_max_score(maps, int(rule[4:]))
    flat = maps.flatten(1)
    k = max(1, round(flat.shape[1] * float(rule[3:-1]) / 100))
    return flat.topk(k, dim=1).values.mean(1)

def rule_aurocs(run:Path) -> dict:
    "Image AUROC of every rule on the run's test set, and the run's recorded and recomputed own-rule AUROC."
    from anomaly_tutor.data import MVTecDataset
    from anomaly_tutor.metrics import image_auroc
    from anomaly_tutor.papers.macow import build_macow, macow_config, macow_predict
    recorded = json.loads((run/'results.json').read_text())
    cfg = macow_config(recorded['profile'], **{k: v for k, v in recorded['config'].items() if k != 'profile'})
    model = build_macow(cfg)
    model.load_state_dict(torch.load(run/'train'/'checkpoint.pt', map_location='cpu', weights_only=False)['model'])
    test = MVTecDataset(recorded['data_root'], recorded['category'], 'test', size=cfg.image_size)
    images = torch.stack([s.image for s in test])
    labels = torch.tensor([s.label for s in test])
    maps, own_scores, _ = macow_predict(model, images, cfg.eval_batch_size, cfg.score_pool)
    own = image_auroc(own_scores, labels)
    if abs(own - recorded['image_auroc']) > 1e-6:
        sys.exit(f"{run}: the checkpoint's own rule gives image AUROC {own:.4f}, results.json says "
                 f"{recorded['image_auroc']:.4f}: is the checkpoint from this run?")
    return dict(category=recorded['category'], own_rule=f"pool{cfg.score_pool}", recorded=recorded['image_auroc'],
                **{rule: image_auroc(score(maps, rule), labels) for rule in RULES})

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('runs', nargs='+', type=Path)
    a = ap.parse_args()
    rows = [rule_aurocs(run) for run in a.runs]
    means = {rule: statistics.fmean(r[rule] for r in rows) for rule in RULES}
    for r in rows: print(r['category'], ' '.join(f"{rule} {r[rule]:.3f}" for rule in RULES))
    print('mean', ' '.join(f"{rule} {v:.3f}" for rule, v in means.items()))
    Path(__file__).with_name('macow_score_rules.json').write_text(json.dumps(dict(rows=rows, means=means), indent=1))

if __name__ == '__main__':
    main()
