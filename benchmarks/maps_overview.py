"""One figure of every assembled paper's anomaly maps on the same test images of one factory category, from the
checkpoints of finished `cpu` runs (MACoW, FADeR, MAAE, MALA, Siamese U-Net), beside the PatchCore floor fitted here.

    python benchmarks/maps_overview.py --category pill --macow runs/macow-cpu-abl-pill --fader runs/fader-cpu-m4/pill \
        --maae runs/ov/maae --mala runs/ov/mala1 --siamese runs/ov/siamese-pill --out results/overview_pill.png

(the committed figure's runs: each reproduces its paper's committed `results/*-cpu` run to the last digit; MALA's
was made with `OMP_NUM_THREADS=1`, as its committed run was, because the thread count changes its sums)

Finished runs are loaded through each paper's own training function with `resume=True`, which reads the
checkpoints and trains nothing more.

Each method's maps are shown on its own scale (0 to its 99.5th percentile over the category's test set), with its
image score and the AUROCs of that run on the whole test set in the titles."""
import argparse
from pathlib import Path

import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from anomaly_tutor.data import MVTecDataset
from anomaly_tutor.metrics import image_auroc, pixel_auroc
from anomaly_tutor.runner import factory_root
from anomaly_tutor.training import make_config, read_results
from anomaly_tutor.papers.macow import macow_config, build_macow, macow_predict
from anomaly_tutor.papers.maae import maae_config, build_maae, cache_levels, maae_predict
from anomaly_tutor.papers.siamese import siamese_config, build_siamese, siamese_predict
from anomaly_tutor.papers.fader import fader_config, train_fader, make_prior, compute_masks, fader_predict
from anomaly_tutor.papers.mala import mala_config, train_mala, mala_predict
from anomaly_tutor.data import list_categories
from anomaly_tutor.patchcore import PATCHCORE_PRESETS, fit_and_evaluate


def images(root, category, size):
    ds = MVTecDataset(root, category, 'test', size=size)
    return torch.stack([s.image for s in ds]), ds


def load_weights(model, checkpoint):
    model.load_state_dict(torch.load(checkpoint, map_location='cpu', weights_only=False)['model'])
    return model.eval()


def maps_of(name, run, root, category):
    "Maps N×128×128 and scores N of one method on the category's test set."
    if name == 'MACoW':
        cfg = macow_config('cpu')
        X, _ = images(root, category, cfg.image_size)
        model = load_weights(build_macow(cfg), Path(run)/'train'/'checkpoint.pt')
        maps, scores, _ = macow_predict(model, X, cfg.eval_batch_size, cfg.score_pool)
    elif name == 'MAAE (unified)':
        cfg = maae_config('cpu')
        X, _ = images(root, category, cfg.image_size)
        model = load_weights(build_maae(cfg), Path(run)/'train'/'checkpoint.pt')
        maps, scores = maae_predict(model, cache_levels(model, X), cfg.image_size, cfg.sigma)
    elif name == 'Siamese U-Net':
        cfg = siamese_config('cpu')
        X, _ = images(root, category, cfg.image_size)
        model = load_weights(build_siamese(cfg), Path(run)/'train'/'stage2'/'checkpoint.pt')
        maps, scores = siamese_predict(model, X, cfg.sigma, cfg.eval_batch_size)
    elif name == 'FADeR on EAR':
        cfg = fader_config('cpu')
        X, _ = images(root, category, cfg.image_size)
        X_train = torch.stack([s.image for s in MVTecDataset(root, category, 'train', size=cfg.image_size)])
        net = train_fader(cfg, X_train, seed=0, run_dir=Path(run)/'train', resume=True, progress=False)['net']
        M_test = compute_masks(make_prior(cfg, X_train, 'cpu', 0), X, cfg.m, cfg.mask_fraction)
        maps, scores = fader_predict(net, cfg, X, M_test, True, cfg.eval_batch_size, 'cpu')
    elif name == 'MALA (unified)':
        cfg = mala_config('cpu')
        X, _ = images(root, category, cfg.image_size)
        cats = list_categories(root)
        train = [torch.stack([s.image for s in MVTecDataset(root, c, 'train', size=cfg.image_size)]) for c in cats]
        ids = torch.cat([torch.full((len(t),), i) for i, t in enumerate(train)]).numpy()
        model = train_mala(cfg, torch.cat(train), ids, 'cpu', 0, Path(run)/'train', True, progress=False)['model']
        maps, scores = mala_predict(model, X, cfg.k, cfg.eval_batch_size, 'cpu')
    else:
        run = fit_and_evaluate(make_config(PATCHCORE_PRESETS, 'cpu'), root, category, eval_size=128, progress=False)
        return run['maps'], run['scores']
    return F.interpolate(maps[:, None].float(), size=(128, 128), mode='bilinear', align_corners=False)[:, 0], scores


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--category', default='pill')
    ap.add_argument('--macow', required=True, help='a finished `reproduce macow --profile cpu` run folder')
    ap.add_argument('--fader', required=True, help='a finished `reproduce fader --profile cpu` run folder')
    ap.add_argument('--maae', required=True, help='a finished `reproduce maae --profile cpu` run folder (unified)')
    ap.add_argument('--mala', required=True, help='a finished `reproduce mala --profile cpu --category all` run folder')
    ap.add_argument('--siamese', required=True, help='a finished `reproduce siamese --profile cpu` run folder')
    ap.add_argument('--out', type=Path, required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    root = factory_root('cpu', progress=False)
    X, ds = images(root, args.category, 128)
    masks = torch.stack([s.mask[0] for s in ds])
    labels = torch.tensor([r.label for r in ds.records])
    defects = [r.defect for r in ds.records]
    show = [i for k, i in sorted({d: i for i, d in reversed(list(enumerate(defects))) if d != 'good'}.items())]
    show.append(defects.index('good'))
    runs = {'MACoW': args.macow, 'FADeR on EAR': args.fader, 'MAAE (unified)': args.maae, 'MALA (unified)': args.mala,
            'Siamese U-Net': args.siamese, 'PatchCore floor': None}
    rows = {name: maps_of(name, run, root, args.category) for name, run in runs.items()}
    fig, axs = plt.subplots(len(rows) + 2, len(show), figsize=(1.9 * len(show), 1.9 * (len(rows) + 2)), squeeze=False)
    for j, i in enumerate(show):
        axs[0, j].imshow(X[i].permute(1, 2, 0))
        axs[0, j].set_title(defects[i], fontsize=9)
        axs[1, j].imshow(masks[i], cmap='gray', vmin=0, vmax=1)
    axs[0, 0].set_ylabel('image', fontsize=9)
    axs[1, 0].set_ylabel('ground truth', fontsize=9)
    for r, (name, (maps, scores)) in enumerate(rows.items(), start=2):
        top = float(torch.quantile(maps.flatten()[::7], 0.995))
        for j, i in enumerate(show):
            axs[r, j].imshow(maps[i], cmap='jet', vmin=0, vmax=top)
            axs[r, j].set_title(f'score {scores[i]:.3g}', fontsize=7)
        i_auc, p_auc = image_auroc(scores, labels), pixel_auroc(maps, masks)
        axs[r, 0].set_ylabel(f'{name}\nI {i_auc:.2f} / P {p_auc:.2f}', fontsize=8)
    for ax in axs.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f'factory `{args.category}`, cpu profile, seed 0: every method on the same test images', fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90, bbox_inches='tight')
    print(f'wrote {args.out}')


if __name__ == '__main__': main()
