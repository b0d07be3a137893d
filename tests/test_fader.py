"""FADeR on EAR end to end: `anomaly-tutor reproduce fader` on any MVTec-layout folder, resume, τ, the players' losses."""
import json
from pathlib import Path

import numpy as np
import papermill as pm
import pytest
import torch

from anomaly_tutor.papers.fader import (fader_config, build_fader, fader_losses, train_fader, compute_masks, make_prior,
                                        calibrate_fader_tau, fader_predict)
from anomaly_tutor.masking import soft_mask, mosaic_hint

NB = Path(__file__).resolve().parent.parent/'nbs'/'repro'/'61_fader.ipynb'
METRICS = ('image_auroc', 'pixel_auroc', 'pixel_ap', 'aupro', 'f1_max')
TINY = dict(image_size=32, widths=(4, 8, 8, 8, 8), hidden=16, mean_filter=3)


def _run(tmp_path, data, name, **params):
    out = tmp_path/name
    pm.execute_notebook(str(NB), str(tmp_path/f'{name}.ipynb'), kernel_name='python3', progress_bar=False, cwd=str(tmp_path),
                        parameters=dict(profile='smoke', category='widget', data_root=str(data), out_dir=str(out),
                                        device='cpu', seed=0, floors=False, **params))
    return out


def _images(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


def test_cli_reproduce_fader_on_any_mvtec_folder(data, tmp_path, reproduce_smoke):
    out = tmp_path/'run'
    r = reproduce_smoke('fader', data, 'gear', out)
    assert (r['n_train'], r['n_test']) == (5, 5)
    assert (r['ear_steps'], r['fader_steps']) == (4, 2) and r['metrics_ear'] is not None
    assert set(r['floors']) == {'baseline', 'patchcore'} and r['mask_source'] == 'feature'
    assert r['soft_masks']['tau'] > 0
    for f in ('anomaly_maps.png', 'scores.png', 'masks.png', 'training.png', 'curves.png', 'train/ear/checkpoint.pt',
              'train/fader/log.jsonl', '61_fader.ipynb'):
        assert (out/f).exists(), f


def test_same_seed_same_weights_and_resume_in_fader_stage(tmp_path, one_thread):
    cfg = fader_config('smoke', fader_epochs=2, **TINY)
    X = _images(6)
    a = train_fader(cfg, X, run_dir=tmp_path/'a', progress=False)
    part = train_fader(fader_config('smoke', fader_epochs=2, stop_after=3, **TINY), X, run_dir=tmp_path/'b',
                       progress=False)                                  # stopped after FADeR's first epoch
    assert (part['ear'].step, part['fader'].step) == (4, 2)
    b = train_fader(cfg, X, run_dir=tmp_path/'b', resume=True, progress=False)
    assert b['fader'].step == a['fader'].step == 4 and b['ear'].step == 4
    sa, sb = a['net'].state_dict(), b['net'].state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa) and sa['tau'] != 1.0     # the calibrated τ included
    with pytest.raises(ValueError, match='other settings'):
        train_fader(fader_config('smoke', fader_epochs=2, lr=1e-2, **TINY), X, run_dir=tmp_path/'a', resume=True,
                    progress=False)


def test_switches_ear_alone_and_random_masks(data, tmp_path):
    r = json.loads((_run(tmp_path, data, 'ear', fader=False, mask_source='random')/'results.json').read_text())
    assert (r['config']['fader'], r['fader_steps'], r['mask_source']) == (False, 0, 'random')
    assert [r[k] for k in METRICS] == [r['metrics_ear'][k] for k in METRICS]


def test_bad_config_is_a_clear_error():
    with pytest.raises(KeyError, match='unknown config key'): fader_config('cpu', learning_rate=1e-3)
    with pytest.raises(ValueError, match='mask_source must be one of'): fader_config('cpu', mask_source='sam')
    with pytest.raises(ValueError, match='not a multiple of the mosaic scale'): fader_config('cpu', image_size=102)


def test_each_player_moves_only_under_its_own_loss(one_thread):
    torch.manual_seed(0)
    cfg = fader_config('smoke', **TINY)
    net = build_fader(cfg)
    net.unet.enc.requires_grad_(False)
    I, M = _images(4), torch.zeros(4, 1, 32, 32)
    M[..., :8, :16] = 1
    L = fader_losses(net, cfg, I, M)
    phi, dec = list(net.phi.parameters()), net.decoder_parameters()
    g_rank = torch.autograd.grad(L['rank'], phi + dec, retain_graph=True, allow_unused=True)
    g_rec = torch.autograd.grad(L['rec'], phi + dec, allow_unused=True)
    assert all(g is not None and g.abs().sum() > 0 for g in g_rank[:len(phi)])
    assert all(g is None for g in g_rank[len(phi):])
    assert all(g is None for g in g_rec[:len(phi)])
    assert any(g is not None and g.abs().sum() > 0 for g in g_rec[len(phi):])
    assert not any(p.requires_grad for p in net.unet.enc.parameters())


def test_training_moves_phi_and_decoder_but_not_the_encoder(one_thread):
    cfg = fader_config('smoke', mask_source='random', pretrained=False, **TINY)
    X = _images(6)
    torch.manual_seed(0)
    ear_only = train_fader(fader_config('smoke', mask_source='random', fader=False, **TINY), X, progress=False)['net']
    net = train_fader(cfg, X, progress=False)['net']
    enc0, enc1 = ear_only.unet.enc.state_dict(), net.unet.enc.state_dict()
    assert all(torch.equal(enc0[k], enc1[k]) for k in enc0)             # weights and BatchNorm statistics
    dec0, dec1 = ear_only.unet.dec.state_dict(), net.unet.dec.state_dict()
    assert any(not torch.equal(dec0[k], dec1[k]) for k in dec0)
    torch.manual_seed(0)
    fresh = build_fader(cfg)                                            # the initial weights of both runs
    assert all(torch.equal(a, b) for a, b in zip(ear_only.phi.parameters(), fresh.phi.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(net.phi.parameters(), fresh.phi.parameters()))


def test_tau_calibration_on_normal_images(one_thread):
    torch.manual_seed(0)
    cfg = fader_config('smoke', **TINY)
    net = build_fader(cfg)
    X, M = _images(5), torch.zeros(5, 1, 32, 32)
    with torch.no_grad():
        net.phi.mlp[-1].weight.mul_(50)                                 # spread l̂ over many ξ, as training does
        l_hat = net.phi(mosaic_hint(X, M, cfg.m))
    tau = calibrate_fader_tau(net, cfg, X, M)
    assert net.tau.item() == tau and tau > 1
    z = l_hat - l_hat.min(1, keepdim=True).values
    assert abs((z <= tau).float().mean().item() - cfg.tau_q) < 0.05
    assert soft_mask(l_hat, (4, 4), tau=tau).median() > 0.5 > soft_mask(l_hat, (4, 4), tau=1.0).median()
    maps, scores = fader_predict(net, cfg, X, M)
    assert maps.shape == (5, 32, 32) and torch.isfinite(scores).all()


def test_feature_prior_leaves_the_image_out_and_masks_the_fraction(one_thread):
    cfg = fader_config('smoke', **TINY)
    X = _images(4)
    prior = make_prior(cfg, X)
    own, other = prior(X[:2]), prior(X[:2], ids=[0, 1])
    assert own.max() < 0.1 * other.min()
    M = compute_masks(prior, X, cfg.m, 0.25, leave_out=True)
    assert M.shape == (4, 1, 32, 32) and torch.allclose(M.mean((1, 2, 3)), torch.full((4,), 0.25))


def test_dino_without_weights_is_a_clear_error(tmp_path):
    cfg = fader_config('smoke', mask_source='dino', dino_weights=str(tmp_path/'missing.pth'), **TINY)
    with pytest.raises(Exception, match='missing.pth|not found|No such file'):
        make_prior(cfg, _images(2))
