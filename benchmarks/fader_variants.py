"""FADeR on EAR: `cpu`-profile variants (mosaic scale, epochs, U-Net widths) on factory categories, without floors or
figures. Each run trains EAR and FADeR from seed 0 and records both models' image / pixel AUROC and AUPRO.

    python benchmarks/fader_variants.py run m4 '{"m": 4}' --category pill,gravel --out runs/fader-sweep
    python benchmarks/fader_variants.py table runs/fader-sweep
    python benchmarks/fader_variants.py results results/fader-cpu

`run` writes `<out>/<variant>_<category>.json` (it refuses to overwrite one); `table` prints a Markdown table of every
variant's means over the categories it has, and writes them to `--json` (default `benchmarks/fader_variants.json`); `results` prints the
per-category table of finished `anomaly-tutor reproduce fader` runs (`<folder>/<category>/results.json`).
"""
import argparse, json, sys, time
from collections import defaultdict
from pathlib import Path

KEYS = ('image_auroc', 'pixel_auroc', 'aupro')

def run_one(category:str, name:str, overrides:dict, out:Path) -> dict:
    "Train EAR then FADeR on `category` with the `cpu` profile and `overrides`; evaluate both; write the JSON."
    import torch
    import torch.nn.functional as F
    from anomaly_tutor.data import MVTecDataset
    from anomaly_tutor.metrics import image_auroc, pixel_auroc, aupro
    from anomaly_tutor.papers.fader import (fader_config, train_fader, make_prior, compute_masks, fader_predict,
                                            build_fader)
    from anomaly_tutor.runner import resolve_data
    from anomaly_tutor.training import seed_everything, machine
    dest = out/f'{name}_{category}.json'
    if dest.exists(): sys.exit(f'{dest} exists: choose another --out or variant name')
    cfg = fader_config('cpu', **overrides)
    seed_everything(0)
    root, _ = resolve_data(None, category, 'cpu', 0)
    load = lambda split, size: torch.stack([s.image for s in MVTecDataset(root, category, split, size=size)])
    X_train, X_test = load('train', cfg.image_size), load('test', cfg.image_size)
    test = MVTecDataset(root, category, 'test', size=cfg.eval_size)
    masks = torch.stack([s.mask[0] for s in test])
    labels = torch.tensor([r.label for r in test.records])
    t0 = time.time()
    run_dir = out/'train'/f'{name}_{category}'
    tr = train_fader(cfg, X_train, seed=0, run_dir=run_dir, progress=False)
    train_s = time.time() - t0
    M_test = compute_masks(make_prior(cfg, X_train, 'cpu', 0), X_test, cfg.m, cfg.mask_fraction)
    ear = build_fader(cfg)
    ear.load_state_dict(torch.load(run_dir/'ear'/'checkpoint.pt', weights_only=False)['model'])
    res = dict(category=category, variant=name, overrides=overrides, train_seconds=train_s, machine=machine())
    for key, net, use in (('ear', ear, False), ('fader', tr['net'], True)):
        maps, scores = fader_predict(net, cfg, X_test, M_test, use)
        maps = F.interpolate(maps[:, None], size=masks.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
        res[key] = dict(image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
                        aupro=aupro(maps, masks))
    dest.write_text(json.dumps(res, indent=1))
    return res

def table(folder:Path, json_out:Path) -> str:
    "Markdown table of every variant's per-category and mean metrics in `folder`; the numbers also go to `json_out`."
    runs = defaultdict(dict)
    for f in sorted(folder.glob('*.json')):
        r = json.loads(f.read_text())
        runs[r['variant']][r['category']] = r
    cats = sorted({c for v in runs.values() for c in v})
    lines = ['| variant | overrides | ' + ' | '.join(cats) + ' | mean FADeR (EAR) image / pixel AUROC | train s |',
             '|---|---|' + '---|' * len(cats) + '---|---|']
    summary = {}
    for name, rs in runs.items():
        cell = lambda r: f"{r['fader']['image_auroc']:.3f} / {r['fader']['pixel_auroc']:.3f}"
        mean = {s: {k: sum(r[s][k] for r in rs.values()) / len(rs) for k in KEYS} for s in ('fader', 'ear')}
        secs = sum(r['train_seconds'] for r in rs.values()) / len(rs)
        summary[name] = dict(overrides=next(iter(rs.values()))['overrides'], categories=sorted(rs), mean=mean,
                             per_category={c: {s: r[s] for s in ('fader', 'ear')} for c, r in rs.items()},
                             train_seconds_mean=secs, machine=next(iter(rs.values()))['machine'])
        lines.append(f"| {name} | `{json.dumps(summary[name]['overrides'])}` | "
                     + ' | '.join(cell(rs[c]) if c in rs else '—' for c in cats)
                     + f" | {mean['fader']['image_auroc']:.3f} / {mean['fader']['pixel_auroc']:.3f} "
                       f"({mean['ear']['image_auroc']:.3f} / {mean['ear']['pixel_auroc']:.3f}) | {secs:.0f} |")
    json_out.write_text(json.dumps(summary, indent=1))
    return '\n'.join(lines)

def results_table(folder:Path) -> str:
    "Markdown table of the `results.json` of every category folder in `folder`: FADeR, EAR, both floors, τ, time."
    rows = [json.loads(f.read_text()) for f in sorted(folder.glob('*/results.json'))]
    pair = lambda m: f"{m['image_auroc']:.3f} / {m['pixel_auroc']:.3f}"
    lines = ['| category | EAR + FADeR image / pixel AUROC | EAR image / pixel AUROC | AUPRO (FADeR / EAR) | '
             'baseline image / pixel | PatchCore image / pixel | τ | median M_S normal (τ / τ=1) | mask covers defect '
             '| train s |', '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        s, f = r['soft_masks'], r['floors']
        lines.append(f"| {r['category']} | {pair(r)} | {pair(r['metrics_ear'])} | {r['aupro']:.3f} / "
                     f"{r['metrics_ear']['aupro']:.3f} | {pair(f['baseline'])} | {pair(f['patchcore'])} | {s['tau']:.2f} | "
                     f"{s['normal_median']:.2f} / {s['normal_median_tau1']:.2f} | {s['mask_covers_defect']:.2f} | "
                     f"{r['train_seconds']:.0f} |")
    mean = lambda get: sum(get(r) for r in rows) / len(rows)
    m = lambda get, k: f"{mean(lambda r: get(r)[k]):.3f}"
    both = lambda get: f"{m(get, 'image_auroc')} / {m(get, 'pixel_auroc')}"
    lines.append(f"| **mean ({len(rows)})** | {both(lambda r: r)} | {both(lambda r: r['metrics_ear'])} | "
                 f"{m(lambda r: r, 'aupro')} / {m(lambda r: r['metrics_ear'], 'aupro')} | "
                 f"{both(lambda r: r['floors']['baseline'])} | {both(lambda r: r['floors']['patchcore'])} | | | | "
                 f"{mean(lambda r: r['train_seconds']):.0f} |")
    return '\n'.join(lines)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('run')
    r.add_argument('name')
    r.add_argument('overrides', help='JSON dict of cpu-profile config overrides')
    r.add_argument('--category', default='brick,chip,grass,gravel,pill,washer')
    r.add_argument('--out', type=Path, default=Path('runs/fader-sweep'))
    t = sub.add_parser('table')
    t.add_argument('folder', type=Path)
    t.add_argument('--json', type=Path, default=Path(__file__).with_name('fader_variants.json'))
    sub.add_parser('results').add_argument('folder', type=Path)
    a = ap.parse_args()
    if a.cmd == 'run':
        for c in a.category.split(','):
            res = run_one(c, a.name, json.loads(a.overrides), a.out)
            print(c, a.name, *(f"{s} {res[s]['image_auroc']:.3f} / {res[s]['pixel_auroc']:.3f}" for s in ('ear', 'fader')),
                  f"{res['train_seconds']:.0f} s", flush=True)
    elif a.cmd == 'table': print(table(a.folder, a.json))
    else: print(results_table(a.folder))
