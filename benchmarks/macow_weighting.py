"""MACoW's loss weighting on every factory category: static weights against MSdW, both with SSPCBMA (the paper's Table 6
cells that differ only in the weighting), from finished `cpu` runs.

    python benchmarks/macow_weighting.py results/macow-cpu-ablation/static results/macow-cpu \
        --pill-ablation results/macow-cpu-ablation/pill/ablation.json

The first folder holds `<category>/results.json` of runs made with `weighting=static` (`python -m papermill
nbs/repro/60_macow.ipynb runs/macow-static/<category>/60_macow.ipynb -p profile cpu -p category <category> -p out_dir
runs/macow-static/<category> -p weighting static`), the second the committed MSdW runs; `pill`'s static cell can come
from the Table 6 ablation. Prints a Markdown table and writes `static_vs_msdw.json` beside the first folder.
"""
import argparse, json
from pathlib import Path

KEYS = ('image_auroc', 'pixel_auroc', 'aupro')

def load(folder:Path) -> dict:
    "category -> metrics of every `<category>/results.json` in `folder`."
    return {f.parent.name: {k: json.loads(f.read_text())[k] for k in KEYS} for f in sorted(folder.glob('*/results.json'))}

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('static', type=Path)
    ap.add_argument('msdw', type=Path)
    ap.add_argument('--pill-ablation', type=Path)
    a = ap.parse_args()
    static, msdw = load(a.static), load(a.msdw)
    if a.pill_ablation:
        rows = json.loads(a.pill_ablation.read_text())['rows']
        cell = next(r for r in rows if (r['weighting'], r['attention']) == ('static', 'sspcbma'))
        static.setdefault('pill', {k: cell[k] for k in KEYS})
    cats = sorted(set(static) & set(msdw))
    lines = ['| category | static + SSPCBMA (image / pixel AUROC, AUPRO) | MSdW + SSPCBMA (MACoW) | image AUROC difference |',
             '|---|---|---|---|']
    fmt = lambda m: f"{m['image_auroc']:.3f} / {m['pixel_auroc']:.3f}, {m['aupro']:.3f}"
    for c in cats:
        lines.append(f"| {c} | {fmt(static[c])} | {fmt(msdw[c])} | {static[c]['image_auroc'] - msdw[c]['image_auroc']:+.3f} |")
    mean = lambda d: {k: sum(d[c][k] for c in cats) / len(cats) for k in KEYS}
    ms, mm = mean(static), mean(msdw)
    lines.append(f"| **mean ({len(cats)})** | {fmt(ms)} | {fmt(mm)} | {ms['image_auroc'] - mm['image_auroc']:+.3f} |")
    (a.static.parent/'static_vs_msdw.json').write_text(json.dumps(dict(categories=cats, static=static, msdw=msdw,
                                                                        mean_static=ms, mean_msdw=mm), indent=1))
    print('\n'.join(lines))
