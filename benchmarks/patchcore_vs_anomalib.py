"""Our PatchCore against anomalib's, side by side: the same EfficientNet-Lite0 ImageNet weights, the same levels
(strides 8 and 16), the same images and coreset ratio; metrics by our code; fit and inference wall time and peak
memory (each implementation in its own process).

    pip install -e ".[bench]"      # anomalib 2.7 (optional; the tests never need it)
    python benchmarks/patchcore_vs_anomalib.py --categories pill,gravel --image-size 256 --coreset 0.01
    python benchmarks/patchcore_vs_anomalib.py --categories pill,gravel --image-size 256 --coreset 1   # no coreset

With `--coreset 1` both keep every training patch (anomalib's bank is set directly, since its greedy sampler would
need 100,000 steps), so the two differ only in what follows the search: that isolates the implementations from the
coreset's randomness (each side draws its own random projection and first centre). Test images go one at a time
then, so that anomalib's full distance matrix (1,024 × 102,400 floats) fits in memory.

anomalib's model is driven through its own torch API (`PatchcoreModel`: training-mode forward collects embeddings,
`subsample_embedding` runs its greedy coreset, eval-mode forward gives maps and scores), so both sides run the same
loop without Lightning's trainer around either. Writes `benchmarks/patchcore_vs_anomalib.json`.
"""
import argparse, json, resource, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F

def run_one(impl, category, image_size, coreset, seed=0):
    "Fit and evaluate one implementation on one category in this process; metrics, seconds and peak RSS."
    from anomaly_tutor.backbones import create_backbone, imagenet_normalize
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
    else:
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel
        model = PatchcoreModel(layers=['blocks.2', 'blocks.4'], backbone='tf_efficientnet_lite0', pre_trained=False)
        model.feature_extractor.feature_extractor = create_backbone(
            'tf_efficientnet_lite0', pretrained=True, features_only=True, out_indices=(2, 3)).eval()
        t0 = time.perf_counter()
        model.train()
        embeddings = [model(imagenet_normalize(b['image'])) for b in train]
        if coreset < 1: model.subsample_embedding(coreset, torch.cat(embeddings))
        else: model.memory_bank = torch.cat(embeddings)  # the whole bank: both sides then search the same vectors
        fit = time.perf_counter() - t0
        model.eval()
        def predict(x):
            out = model(imagenet_normalize(x))
            return out.anomaly_map[:, 0], out.pred_score
    maps, scores, masks, labels = [], [], [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in test:
            m, s = predict(b['image'])
            maps.append(F.interpolate(m[:, None], size=(128, 128), mode='bilinear', align_corners=False)[:, 0])
            scores.append(s.flatten())
            masks.append((F.interpolate(b['mask'], size=(128, 128), mode='bilinear', align_corners=False)[:, 0] > 0.5).float())
            labels.append(b['label'])
    infer = time.perf_counter() - t0
    maps, scores, masks, labels = map(torch.cat, (maps, scores, masks, labels))
    return dict(impl=impl, category=category, image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
                aupro=aupro(maps, masks), fit_seconds=fit, infer_seconds=infer,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--categories', default='pill,gravel')
    ap.add_argument('--image-size', type=int, default=256)
    ap.add_argument('--coreset', type=float, default=0.01)
    ap.add_argument('--one', nargs=2, metavar=('IMPL', 'CATEGORY'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one[0], a.one[1], a.image_size, a.coreset)))
        return
    rows = []
    for cat in a.categories.split(','):
        for impl in ('ours', 'anomalib'):
            cmd = [sys.executable, __file__, '--one', impl, cat, '--image-size', str(a.image_size), '--coreset', str(a.coreset)]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode: sys.exit(f'{impl} / {cat} failed:\n{res.stderr[-3000:]}')
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    pairs = [(o, n) for o in rows if o['impl'] == 'ours' for n in rows if n['impl'] == 'anomalib' and n['category'] == o['category']]
    summary = dict(max_metric_gap=max(abs(o[k] - n[k]) for o, n in pairs for k in ('image_auroc', 'pixel_auroc', 'aupro')),
                   fit_plus_infer_speedup=sum(n['fit_seconds'] + n['infer_seconds'] for _, n in pairs) /
                                          sum(o['fit_seconds'] + o['infer_seconds'] for o, _ in pairs),
                   peak_rss_mb=dict(ours=max(o['peak_rss_mb'] for o, _ in pairs), anomalib=max(n['peak_rss_mb'] for _, n in pairs)))
    print(json.dumps(summary))
    Path(__file__).with_name(f'patchcore_vs_anomalib_coreset{a.coreset:g}.json').write_text(json.dumps(dict(
        rows=rows, summary=summary, image_size=a.image_size, coreset=a.coreset, threads=torch.get_num_threads()), indent=1))

if __name__ == '__main__':
    main()
