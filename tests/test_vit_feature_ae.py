"""Public API of `anomaly_tutor.vit` (MAE, MALA's PLPM and eq. 3) and `anomaly_tutor.feature_ae` (MAAE's parts)."""
import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

from anomaly_tutor import feature_ae as FA
from anomaly_tutor import vit as V
from anomaly_tutor.attention import TokenBalance, count_params, unpatchify


# ---------------------------------------------------------------- masking and positions
@pytest.mark.parametrize('B,L,r', [(4, 196, 0.75), (3, 10, 0.8), (2, 20, 0.9), (2, 64, 0.9), (5, 49, 0.5), (2, 16, 0.0)])
def test_masking_keeps_exact_fraction_and_restores_order(B, L, r):
    g = torch.Generator().manual_seed(B * L)
    x = torch.randn(B, L, 6, generator=g)
    noise = torch.rand(B, L, generator=g)
    kept, mask, ids_restore = V.random_masking(x, r, noise)
    K = round(L * (1 - r))
    assert kept.shape == (B, K, 6)
    assert torch.equal(mask.sum(1), torch.full((B,), float(L - K)))          # exactly L − K removed in every sample
    keep_idx = noise.argsort(1)[:, :K]
    assert torch.equal(kept, x.gather(1, keep_idx[..., None].expand(-1, -1, 6)))
    for b in range(B): assert set(keep_idx[b].tolist()) == set(torch.nonzero(mask[b] == 0)[:, 0].tolist())
    shuffled = x.gather(1, noise.argsort(1)[..., None].expand(-1, -1, 6))
    assert torch.equal(shuffled.gather(1, ids_restore[..., None].expand(-1, -1, 6)), x)


def test_masking_counts():
    want = {(196, 0.75): 49, (10, 0.8): 2, (20, 0.9): 2, (64, 0.9): 6, (256, 0.75): 64, (49, 0.5): 24}
    got = {(L, r): V.random_masking(torch.zeros(2, L, 1), r)[0].shape[1] for L, r in want}
    assert got == want                                        # MAE's int() would keep 1 of 10 at r = 0.8


def test_masking_differs_per_sample_and_rejects_bad_ratios():
    torch.manual_seed(0)
    _, mask, _ = V.random_masking(torch.zeros(8, 196, 2), 0.75)
    assert len({tuple(m.tolist()) for m in mask}) == 8
    for r in (1.0, -0.1, 0.9):
        with pytest.raises(ValueError): V.random_masking(torch.zeros(1, 4, 2), r)


@pytest.mark.parametrize('D,gh,gw', [(16, 3, 5), (32, 4, 4), (8, 1, 7)])
def test_sincos_matches_definition(D, gh, gw):
    pe = V.sincos_2d(D, (gh, gw))
    assert pe.shape == (1 + gh * gw, D) and torch.equal(pe[0], torch.zeros(D))
    q = D // 4
    for i in range(gh):
        for j in range(gw):
            for k in range(q):
                w = 10000 ** (-k / q)
                want = [math.sin(j * w), math.cos(j * w), math.sin(i * w), math.cos(i * w)]
                got = pe[1 + i * gw + j, [k, q + k, 2 * q + k, 3 * q + k]]
                assert torch.allclose(got, torch.tensor(want), atol=1e-6)


def test_patchify_roundtrip_and_order():
    imgs = torch.randn(2, 3, 16, 24)
    ref = F.unfold(imgs, 8, stride=8).view(2, 3, 64, 6).permute(0, 3, 2, 1).reshape(2, 6, 192)
    assert torch.equal(V.patchify(imgs, 8), ref)
    assert torch.equal(unpatchify(V.patchify(imgs, 8), (2, 3), 8, c=3), imgs)


# ---------------------------------------------------------------- the autoencoder
@pytest.mark.parametrize('size', ['smoke', 'cpu'])
def test_mae_shapes_on_cpu(size):
    torch.manual_seed(0)
    c = V.VIT_SIZES[size]
    m = V.make_mae(size)
    L, p = (c['img_size'] // c['patch_size']) ** 2, c['patch_size']
    x = torch.rand(2, 3, c['img_size'], c['img_size'])
    out = m(x)
    assert out.pred.shape == (2, L, p * p * 3) and out.latent.shape == (2, 1 + round(L / 4), c['embed_dim'])
    loss = V.mae_loss(x, out.pred, out.mask, p)
    loss.backward()
    assert all(q.grad is not None for q in m.parameters())
    z_first, z_last, z_dec = m.tbm_tokens(x)
    assert (z_first.shape, z_dec.shape) == ((2, L, c['embed_dim']), (2, L, c['decoder_dim']))
    Y = TokenBalance(c['embed_dim'], c['decoder_dim'], 2 * p * p)(z_first, z_last, z_dec)
    assert unpatchify(Y, m.encoder.grid, p, c=2).shape == (2, 2, c['img_size'], c['img_size'])


@pytest.mark.parametrize('size', ['base', 'paper', 'paper_p14'])
def test_large_sizes_build_and_run_on_meta(size):
    c = V.VIT_SIZES[size]
    with torch.device('meta'):
        m = V.make_mae(size)
        out = m(torch.randn(2, 3, 224, 224))
        feats, layers = m.encoder.forward_features(torch.randn(2, 3, 224, 224), return_layers=True)
    L = (224 // c['patch_size']) ** 2
    assert out.pred.shape == (2, L, c['patch_size'] ** 2 * 3)
    assert feats.shape == (2, 1 + L, c['embed_dim']) and len(layers) == c['depth']


def test_paper_parameter_counts():
    with torch.device('meta'):
        m = V.make_mae('paper')
        vit_l = timm.create_model('vit_large_patch16_224', pretrained=False, num_classes=0)
    assert count_params(m.encoder) == 303_099_904 == count_params(vit_l) - vit_l.pos_embed.numel()
    assert count_params(m.decoder) == 26_139_392
    assert len(m.encoder.blocks) == 24 and m.encoder.norm.normalized_shape == (1024,)
    assert len(m.decoder.blocks) == 8 and m.decoder.norm.normalized_shape == (512,)


def test_mae_loss_norm_pix_and_masked_only():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    mask = torch.tensor([[1., 0, 0, 1], [0, 1, 1, 1]])
    t = V.patchify(x, 8)
    assert V.mae_loss(x, t + 3 * (1 - mask[..., None]), mask, 8) == 0            # visible patches cost nothing
    nt = (t - t.mean(-1, keepdim=True)) / torch.sqrt(t.var(-1, unbiased=True, keepdim=True) + 1e-6)
    assert V.mae_loss(x, nt, mask, 8, norm_pix_loss=True) < 1e-10
    pred = torch.zeros_like(t)
    want = sum((t[b, l] ** 2).mean() for b in range(2) for l in range(4) if mask[b, l]) / mask.sum()
    assert torch.allclose(V.mae_loss(x, pred, mask, 8), want)


# ---------------------------------------------------------------- weights from timm / MAE
def _check_timm_equivalence(vit, x):
    vit.eval()
    enc = V.MAEEncoder.from_timm(vit).eval()
    with torch.no_grad():
        ref, mine, sh = vit.forward_features(x), enc.forward_features(x), enc(x, mask_ratio=0.0)
    assert torch.allclose(mine, ref, atol=1e-5)
    D = ref.shape[-1]
    unshuffled = sh.latent[:, 1:].gather(1, sh.ids_restore[..., None].expand(-1, -1, D))
    assert torch.allclose(unshuffled, ref[:, 1:], atol=1e-5) and torch.allclose(sh.latent[:, 0], ref[:, 0], atol=1e-5)


def test_timm_vit_tiny_loads_and_matches():
    torch.manual_seed(0)
    _check_timm_equivalence(timm.create_model('vit_tiny_patch16_224', pretrained=False), torch.randn(1, 3, 224, 224))


def test_custom_timm_vit_loads_and_matches():
    torch.manual_seed(1)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, mlp_ratio=2., num_classes=5)
    _check_timm_equivalence(vit, torch.randn(3, 3, 32, 32))


def test_incompatible_timm_vits_are_refused():
    with pytest.raises(ValueError, match='fc_norm'):
        V.timm_encoder_kwargs(VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                                                global_pool='avg', fc_norm=True))
    with pytest.raises(ValueError, match='layer scale'):
        V.timm_encoder_kwargs(VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2,
                                                init_values=1e-5))


def test_vit_large_mae_architecture_maps_onto_paper_encoder():
    with torch.device('meta'):
        vit_l = timm.create_model('vit_large_patch16_224', pretrained=False)
        mae = V.make_mae('paper')
    theirs = {k: tuple(v.shape) for k, v in V.mae_keys(vit_l.state_dict()).items()}
    assert theirs == {k: tuple(v.shape) for k, v in mae.state_dict().items() if k.startswith('encoder.')}


def test_mae_checkpoint_file_with_decoder(tmp_path):
    torch.manual_seed(0)
    src = V.make_mae('smoke')
    flat = {}
    for k, v in src.state_dict().items():                  # write it under MAE's own flat names
        if k.startswith('encoder.'): flat[k.removeprefix('encoder.')] = v
        else:
            ours, theirs = next((o, t) for t, o in V.MAE_DECODER_NAMES.items() if k == o or k.startswith(o + '.'))
            flat[theirs + k[len(ours):]] = v
    torch.save({'model': flat}, tmp_path/'mae.pth')
    dst = V.make_mae('smoke')
    dst.load_state_dict(V.mae_state_dict(file=tmp_path/'mae.pth'), strict=True)
    x = torch.rand(2, 3, 32, 32)
    noise = torch.rand(2, 16)
    with torch.no_grad(): assert torch.equal(dst(x, noise=noise).pred, src(x, noise=noise).pred)


# ---------------------------------------------------------------- MALA: PLPM and eq. 3
def test_plpm_and_stage1_loss():
    torch.manual_seed(0)
    plpm = V.PseudoLabelPredictor(width=8, depth=3)
    x, xb = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    lb_o, lb_p = V.pseudo_labels(plpm, x, xb)
    assert lb_o.shape == lb_p.shape == (3,)
    ref = F.binary_cross_entropy_with_logits(torch.cat([lb_o, lb_p]), torch.tensor([0., 0, 0, 1, 1, 1]))
    assert torch.allclose(V.pseudo_label_loss(lb_o, lb_p), ref, atol=1e-6)
    total, parts = V.stage1_loss(x, xb, lb_o, lb_p, alpha1=2., alpha2=0.5, alpha3=3.)
    assert torch.allclose(parts['L1'], (x - xb).abs().mean())
    assert torch.allclose(total, 2 * parts['L1'] + 0.5 * parts['L_SSIM'] + 3 * parts['L_CE'])
    assert V.stage1_loss(x, x, torch.full((3,), -30.), torch.full((3,), 30.))[0] < 1e-6


# ---------------------------------------------------------------- MAAE
def test_ffm_channel_counts_as_the_paper():
    ffm = FA.FeatureFusion([24, 32, 56, 160])                                 # EfficientNet-b4, stages 1–4
    assert [(d.in_channels, d.out_channels, d.kernel_size, d.stride) for d in ffm.downs] == \
        [(24, 24, (3, 3), (2, 2)), (56, 56, (3, 3), (2, 2)), (112, 112, (3, 3), (2, 2))]
    feats = [torch.randn(1, c, 64 // 2 ** i, 64 // 2 ** i) for i, c in enumerate([24, 32, 56, 160])]
    assert ffm(feats).shape == (1, 272, 8, 8) == FA.bilinear_fusion(feats).shape


def test_ffm_reduces_to_subsample_and_concat():
    feats = [torch.randn(2, c, 32 // 2 ** i, 32 // 2 ** i) for i, c in enumerate([3, 4, 5])]
    ffm = FA.FeatureFusion([3, 4, 5])
    with torch.no_grad():
        for d in ffm.downs:
            d.weight.zero_(); d.bias.zero_(); d.weight[:, :, 1, 1] = torch.eye(d.in_channels)
        want = torch.cat([torch.cat([feats[0][..., ::2, ::2], feats[1]], 1)[..., ::2, ::2], feats[2]], 1)
        assert torch.allclose(ffm(feats), want)


def test_backbone_levels_and_truncation():
    torch.manual_seed(0)
    bb = FA.MultiLevelFeatures('efficientnet_b0')
    assert (bb.channels, bb.strides) == ([16, 24, 40, 112], [2, 4, 8, 16])
    full = timm.create_model('efficientnet_b0', features_only=True, out_indices=(0, 1, 2, 3)).eval()
    full.load_state_dict(bb.net.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(bb(x), full((x - bb.mean) / bb.std)): assert torch.equal(a, b)
    assert not any(p.requires_grad for p in bb.parameters())
    bb.train(); assert not bb.net.training
    with torch.device('meta'): b4 = FA.MultiLevelFeatures('tf_efficientnet_b4')
    assert (b4.channels, b4.strides) == ([24, 32, 56, 160], [2, 4, 8, 16])


@pytest.mark.parametrize('lambda_ANG,lambda_re', [(0.6, 1.0), (0.6, 0.0), (0.0, 1.0)])
def test_ang_gradient_step_follows_eq1(lambda_ANG, lambda_re):
    torch.manual_seed(0)
    A, lr = 0.8, 0.05
    ang = FA.AdaptiveNoise((2, 2), 3, A=A)
    with torch.no_grad(): ang.W.uniform_(0.5, 1.5)
    X, eps = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    L_e = lambda: F.mse_loss(ang(X, eps), X)                # a fixed (identity) reconstruction, clean target
    W0, L0 = ang.W.detach().clone(), L_e().item()
    opt = torch.optim.SGD([ang.W], lr=lr)
    FA.ang_loss(L_e(), ang.W, lambda_ANG, lambda_re).backward(); opt.step()
    dLe = 2 * A ** 2 / X.numel() * W0 * (eps ** 2).sum(0).reshape(3, 4).T     # ∂L_e/∂W in closed form
    want = W0 - lr * (-lambda_ANG * dLe + lambda_re * W0 / W0.norm())
    assert torch.allclose(ang.W.detach(), want, atol=1e-6)
    if lambda_re == 0: assert (ang.W > W0).all() and L_e().item() > L0           # the adversarial term: more noise
    if lambda_ANG == 0: assert (ang.W < W0).all()                               # the penalty alone: less


def test_ang_noise_scale_and_eval_identity():
    torch.manual_seed(0)
    ang = FA.AdaptiveNoise((3, 2), 2, A=0.5)
    with torch.no_grad(): ang.W.copy_(torch.tensor([[0.2, 1.], [1., 2.], [0.5, 0.5], [3., 0.1], [1., 1.], [2., 0.]]))
    std = ang(torch.zeros(5000, 2, 3, 2)).std(0)
    assert torch.allclose(std, 0.5 * ang.W.detach().T.reshape(2, 3, 2), atol=0.05)
    ang.eval()
    x = torch.randn(2, 2, 3, 2)
    assert torch.equal(ang(x), x)


def test_map_score_loss_formulas():
    torch.manual_seed(0)
    Y, X = torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)
    d = ((Y - X) ** 2).sum(1, keepdim=True).sqrt()
    assert torch.allclose(FA.anomaly_map(Y, X), d)
    S = FA.anomaly_map(Y, X, (30, 50))
    assert torch.allclose(S, F.interpolate(d, size=(30, 50), mode='bilinear', align_corners=True))
    assert torch.allclose(FA.anomaly_score(S), S.flatten(1).max(1).values)
    assert torch.allclose(FA.reconstruction_loss(Y, X), ((Y - X) ** 2).mean())
    assert torch.allclose(FA.reconstruction_loss(Y, X, 'norm'), d.mean())


def test_maae_smoke_end_to_end():
    torch.manual_seed(0)
    m = FA.make_maae('smoke').train()
    x = torch.rand(2, 3, 64, 64)
    out = m(x)
    assert out.X.shape == out.X_star.shape == out.Y.shape == (2, 192, 4, 4)
    assert not torch.equal(out.X, out.X_star)
    L_e, L_ANG = FA.maae_losses(out, m.ang.W)
    gW, = torch.autograd.grad(L_ANG, [m.ang.W], retain_graph=True)
    assert torch.isfinite(gW).all()
    L_e.backward(inputs=list(m.ae.parameters()) + list(m.ffm.parameters()))
    assert m.ang.W.grad is None and all(p.grad is not None for p in m.ae.parameters())
    S_l, S_d = m.predict(x)
    assert S_l.shape == (2, 1, 64, 64) and S_d.shape == (2,) and m.training
    assert len(m.ae.blocks) == 3 and m.ae.M == 3
    with torch.device('meta'): p = FA.make_maae('paper', pretrained=False)   # the shape, no weights
    assert len(p.ae.blocks) == 18 and p.ae.M == 3 and p.ae.blocks[0].dc.dilation == (4, 4)
    assert p.ffm.out_channels == 272 and tuple(p.ang.W.shape) == (256, 272)
