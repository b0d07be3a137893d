"""MALA end to end: `anomaly-tutor reproduce mala --category all` trains one model (both stages) on every category
and writes one results.json per category and a summary.json; an interrupted run resumes across the stage boundary
to the same model; eq. 3's sign fix; stage 2's channel convention (channel 0 is the anomaly)."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from anomaly_tutor.papers.mala import (mala_config, MALA, stage1_step, stage2_loss, anomaly_prob, train_mala,
                                       mala_predict, image_score, load_pretrained)
from anomaly_tutor.vit import pseudo_label_loss


def test_cli_unified_run_writes_every_category_and_a_summary(data, tmp_path, run_cli):
    from anomaly_tutor.training import METRIC_KEYS, RESULT_KEYS
    out = tmp_path/'run'
    res = run_cli('reproduce', 'mala', '--profile', 'smoke', '--data-root', data, '--category', 'all', '--out', out,
                  '--device', 'cpu', '--quiet')
    assert res.returncode == 0, res.stderr
    for cat, n_train in (('gear', 5), ('widget', 6)):
        r = json.loads((out/cat/'results.json').read_text())
        assert set(RESULT_KEYS) <= set(r) and all(0 <= r[k] <= 1 for k in METRIC_KEYS)
        assert (r['paper'], r['category'], r['paradigm'], r['n_train'], r['n_train_all']) == ('mala', cat, 'unified',
                                                                                               n_train, 11)
        assert r['categories'] == ['gear', 'widget'] and set(r['floors']) == {'baseline', 'patchcore'}
    s = json.loads((out/'summary.json').read_text())
    assert s['categories'] == ['gear', 'widget'] and s['category'] == 'all'
    assert s['pixel_auroc'] == pytest.approx(sum(json.loads((out/c/'results.json').read_text())['pixel_auroc']
                                                 for c in ('gear', 'widget')) / 2)
    for f in ('training.png', 'stage1.png', 'anomaly_maps.png', 'train/stage1/checkpoint.pt',
              'train/stage2/checkpoint.pt', '63_mala.ipynb'):
        assert (out/f).exists(), f
    assert 'gear' in res.stdout and 'widget' in res.stdout


@pytest.fixture
def toy():
    g = torch.Generator().manual_seed(0)
    return torch.rand(10, 3, 32, 32, generator=g), np.repeat([0, 1], 5)


def test_resume_across_both_stages_gives_the_same_model(toy, tmp_path, one_thread):
    imgs, ids = toy
    cfg = mala_config('smoke')
    a = train_mala(cfg, imgs, ids, seed=3, run_dir=tmp_path/'a', progress=False)
    b = train_mala(mala_config('smoke', stop_after=1), imgs, ids, seed=3, run_dir=tmp_path/'b', progress=False)
    assert not b['finished'] and b['stage2'] is None and b['stage1'].epoch == 1      # stopped inside stage 1
    b = train_mala(mala_config('smoke', stop_after=2), imgs, ids, seed=3, run_dir=tmp_path/'b', resume=True,
                   progress=False)
    assert not b['finished'] and (b['stage1'].epoch, b['stage2'].epoch) == (2, 1)     # ... and inside stage 2
    b = train_mala(cfg, imgs, ids, seed=3, run_dir=tmp_path/'b', resume=True, progress=False)
    assert b['finished'] and a['finished']
    maps_a, scores_a = mala_predict(a['model'], imgs, cfg.k)
    maps_b, scores_b = mala_predict(b['model'], imgs, cfg.k)
    assert torch.equal(maps_a, maps_b) and torch.equal(scores_a, scores_b)
    other = train_mala(cfg, imgs, ids, seed=4, progress=False)
    assert not torch.equal(mala_predict(other['model'], imgs, cfg.k)[0], maps_a)        # the seed matters
    with pytest.raises(FileExistsError, match='resume=True'):
        train_mala(cfg, imgs, ids, seed=3, run_dir=tmp_path/'a', progress=False)


def test_eq3_sign_fix():
    blind, right = (torch.full((4,), -20.), torch.full((4,), -20.)), (torch.full((4,), -20.), torch.full((4,), 20.))
    printed = lambda o, p: -(torch.log(1 - torch.sigmoid(o)) + torch.log(1 - torch.sigmoid(p))).sum() / (2 * len(o))
    assert printed(*blind) < 1e-6                       # the printed form rewards a PLPM that separates nothing
    assert pseudo_label_loss(*right) < 1e-6 and pseudo_label_loss(*blind) > 5
    lb_o, lb_p = torch.randn(6), torch.randn(6)
    bce = F.binary_cross_entropy_with_logits(torch.cat([lb_o, lb_p]), torch.cat([torch.zeros(6), torch.ones(6)]))
    assert pseudo_label_loss(lb_o, lb_p) == pytest.approx(bce.item(), abs=1e-6)


def test_plpm_and_autoencoder_get_only_their_own_terms():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    def grads(adv):
        torch.manual_seed(1)
        cfg = mala_config('smoke', alpha1=0., alpha2=0., adv=adv)
        m = MALA(cfg)
        stage1_step(m, cfg)(x)['loss'].backward()
        g = m.mae.decoder.pred.weight.grad
        return (torch.zeros_like(m.mae.decoder.pred.weight) if g is None else g), m.plpm.head.weight.grad
    (g0, p0), (g1, p1), (g2, p2) = grads(0.), grads(0.1), grads(0.2)
    assert g0.abs().sum() == 0 and g1.abs().sum() > 0          # L_CE sees detached reconstructions
    assert torch.allclose(g2, 2 * g1, atol=1e-8)               # the MAE's gradient is λ·∇L_G
    assert torch.allclose(p1, p0, atol=1e-7) and torch.allclose(p2, p0, atol=1e-7)   # L_G leaves the PLPM alone


def test_channel_zero_is_the_anomaly():
    Y = torch.zeros(2, 1, 16, 16)
    Y[:, :, 3:9, 5:14] = 1
    right = torch.cat([Y, 1 - Y], 1) * 20 - 10
    assert stage2_loss(right, Y)[0] < 1e-3 and stage2_loss(right.flip(1), Y)[0] > 1
    assert torch.allclose(anomaly_prob(right), Y[:, 0], atol=1e-4)
    score = image_score(anomaly_prob(right), 3)
    assert torch.allclose(score, torch.ones(2), atol=1e-4)


def test_bad_input_names_the_fix(toy, tmp_path):
    with pytest.raises(ValueError, match='synthesis must be'): mala_config('smoke', synthesis='cutpaste')
    with pytest.raises(KeyError, match='unknown config key'): mala_config('smoke', learning_rate=1e-3)
    with pytest.raises(ValueError, match='resize them first'): train_mala(mala_config('smoke'), toy[0][..., :16, :16],
                                                                          toy[1], progress=False)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_pretrained(MALA(mala_config('smoke')), mala_config('smoke', weights_path=str(tmp_path/'none.pth')))
