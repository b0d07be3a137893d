"""MACoW variants side by side on the same categories, every run scored by the same image rule (3×3 pooled max, the
`cpu` default): each run's checkpoint is reloaded and its test set predicted once (`macow_score_rules.rule_aurocs`,
which also checks the run's own rule against its `results.json`); pixel metrics and training time come from the run's
`results.json` (the image rule does not change them).

    python benchmarks/macow_variants.py --out benchmarks/macow_objects.json \\
        --group "fg none" runs/macow-cpu5/chip runs/macow-cpu-pill runs/macow-cpu5/washer \\
        --group "fg auto" runs/macow-cpu-fg/chip runs/macow-cpu-fg/pill runs/macow-cpu-fg/washer

Each `--group LABEL RUN...` is one variant; its runs are finished `anomaly-tutor reproduce macow` folders (with
`results.json` and `train/checkpoint.pt`). The JSON holds a row per run and each variant's means over its categories.
"""
import argparse, json, statistics
from pathlib import Path

from macow_score_rules import rule_aurocs

RULE = 'pool3'
PIXEL_KEYS = ('pixel_auroc', 'aupro', 'pixel_ap')


def variant_row(label:str, run:Path) -> dict:
    "One run: the image AUROC by `RULE`, its pixel metrics, training time and the settings that tell variants apart."
    recorded = json.loads((run/'results.json').read_text())
    cfg = recorded['config']
    return dict(variant=label, category=recorded['category'], run=str(run), image_auroc=rule_aurocs(run)[RULE],
                **{k: recorded[k] for k in PIXEL_KEYS}, train_seconds=recorded['train_seconds'],
                backbone=cfg['backbone'], pretrained=cfg['pretrained'], fg=cfg.get('fg', 'none'), epochs=cfg['epochs'],
                machine=recorded['machine'], seed=recorded['seed'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--group', nargs='+', action='append', required=True, metavar=('LABEL', 'RUN'),
                    help='a variant: its label, then its run folders')
    ap.add_argument('--out', type=Path, required=True)
    a = ap.parse_args()
    rows, means = [], {}
    for label, *runs in a.group:
        if not runs: ap.error(f"--group {label!r} names no run folder")
        group = [variant_row(label, Path(r)) for r in runs]
        rows += group
        means[label] = {k: statistics.fmean(r[k] for r in group) for k in ('image_auroc', *PIXEL_KEYS, 'train_seconds')}
        means[label]['categories'] = [r['category'] for r in group]
        print(label, ' '.join(f"{k} {v:.3f}" for k, v in means[label].items() if k != 'categories'))
    a.out.write_text(json.dumps(dict(rule=RULE, rows=rows, means=means), indent=1) + '\n')
    print(f'wrote {a.out}')


if __name__ == '__main__':
    main()
