"""Public API of `anomaly_tutor.losses` and `anomaly_tutor.attention`: shape contracts, gradients, references."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from anomaly_tutor import attention as A
from anomaly_tutor import losses as L

SHAPES = [(2, 8, 5, 7), (1, 8, 9, 4)]


def _blocks(c=8):
    torch.manual_seed(0)
    bs = dict(masked_conv=A.MaskedConv2d(c), sspcab=A.SSPCAB(c), cbam=A.CBAM(c), sspcbma=A.SSPCBMA(c),
              pam=A.PositionAttention(c), cam=A.ChannelAttention(), cam_code=A.ChannelAttention('code'), cpam=A.CPAM(c),
              mixed=A.MixedAttention(c, heads=2), stack=A.MixedAttentionStack(c, depth=3, M=2, heads=2))
    with torch.no_grad():   # zero-initialised scales: set non-zero so that gradients reach the inner convolutions
        for b in bs.values():
            for n, p in b.named_parameters():
                if n.split('.')[-1] in ('gamma', 'beta'): p.fill_(0.5)
    return bs


@pytest.mark.parametrize('name', list(_blocks()))
def test_block_shape_and_grads(name):
    block = _blocks()[name]
    for shape in SHAPES:
        x = torch.randn(shape)
        assert block(x).shape == x.shape
    block.zero_grad()
    out = block(torch.randn(SHAPES[0]))
    (out * torch.randn(out.shape)).sum().backward()
    for n, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_zero_init_scales_are_identity():
    x = torch.randn(2, 8, 5, 7)
    pam, cam = A.PositionAttention(8), A.ChannelAttention()
    assert torch.equal(pam(x), x) and torch.equal(cam(x), x)
    (pam(x) * torch.randn(x.shape)).sum().backward()
    assert pam.gamma.grad.abs().item() > 0 and pam.q.weight.grad.abs().sum().item() == 0
    assert torch.allclose(A.CPAM(8)(x), x ** 3, atol=1e-6)


def test_attention_matches_sdpa():
    torch.manual_seed(1)
    x = torch.randn(2, 16, 5, 7)
    pam = A.PositionAttention(16)
    with torch.no_grad(): pam.gamma.fill_(1.0)
    t = lambda m: m.flatten(2).transpose(1, 2)
    ref = F.scaled_dot_product_attention(t(pam.q(x)), t(pam.k(x)), t(pam.v(x)), scale=1.0).transpose(1, 2).reshape(x.shape)
    assert torch.allclose(pam(x), ref + x, atol=1e-5)
    cam = A.ChannelAttention()
    with torch.no_grad(): cam.beta.fill_(1.0)
    X = x.flatten(2)
    assert torch.allclose(cam(x), F.scaled_dot_product_attention(X, X, X, scale=1.0).view_as(x) + x, atol=1e-4)
    q, k, v = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 9, 4), torch.randn(2, 3, 9, 5)
    assert torch.allclose(A.attend(q, k, v), F.scaled_dot_product_attention(q, k, v), atol=1e-5)


def test_self_attention_matches_multihead():
    torch.manual_seed(2)
    sa, tok = A.SelfAttention(16, heads=4), torch.randn(2, 35, 16)
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(sa.qkv.weight); mha.in_proj_bias.copy_(sa.qkv.bias)
        mha.out_proj.weight.copy_(sa.proj.weight); mha.out_proj.bias.copy_(sa.proj.bias)
    assert torch.allclose(sa(tok), mha(tok, tok, tok, need_weights=False)[0], atol=1e-5)


def test_masked_conv_receptive_field():
    x = torch.zeros(1, 1, 9, 9, requires_grad=True)
    A.MaskedConv2d(1, 1, k=1, d=1)(x)[0, 0, 4, 4].backward()
    seen = (x.grad[0, 0] != 0).nonzero().tolist()
    assert sorted(seen) == [[2, 2], [2, 6], [6, 2], [6, 6]]


def test_stack_residual_every_M():
    st = A.MixedAttentionStack(8, depth=3, M=1, heads=2)
    with torch.no_grad():
        for b in st.blocks: b.dc.weight.zero_(); b.dc.bias.fill_(0.5)
    x = torch.randn(2, 8, 5, 7)
    assert torch.allclose(st(x), x + 1.5, atol=1e-6)


def test_token_balance_and_unpatchify():
    tbm = A.TokenBalance(12, 8, 2 * 4 * 4)
    y = tbm(torch.randn(2, 35, 12), torch.randn(2, 35, 12), torch.randn(2, 35, 8))
    assert y.shape == (2, 35, 32)
    img = torch.randn(2, 2, 20, 28)
    patches = F.unfold(img, 4, stride=4).view(2, 2, 16, 35).permute(0, 3, 2, 1).reshape(2, 35, 32)
    assert torch.equal(A.unpatchify(patches, (5, 7), 4, 2), img)
    assert A.count_params(A.TokenBalance()) == 2048 * 512 + 512 + 1024 * 512 + 512


def test_ssim_matches_skimage():
    from skimage.metrics import structural_similarity
    rng = np.random.default_rng(0)
    a = rng.random((24, 19, 3))
    b = np.clip(a + rng.normal(0, .1, a.shape), 0, 1)
    mssim, S = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1, full=True)
    ta, tb = (torch.from_numpy(t).permute(2, 0, 1)[None] for t in (a, b))
    assert abs(L.ssim(ta, tb, border='valid').item() - mssim) < 1e-6
    assert abs(L.ssim(ta.float(), tb.float(), border='valid').item() - mssim) < 1e-3
    assert np.allclose(L.ssim_map(ta, tb, border='symmetric')[0].permute(1, 2, 0).numpy(), S, atol=1e-6)
    assert abs(L.ssim_loss(ta, ta).item()) < 1e-6


def test_focal_losses():
    from torchvision.ops import sigmoid_focal_loss
    torch.manual_seed(3)
    z, t = torch.randn(2, 1, 5, 7) * 3, (torch.rand(2, 1, 5, 7) > .7).float()
    for alpha in (0.25, None):
        assert torch.allclose(L.sigmoid_focal_loss(z, t, alpha, 2.0), sigmoid_focal_loss(z, t, -1 if alpha is None else alpha, 2.0, 'mean'), atol=1e-6)
    probs = torch.randn(2, 2, 5, 7).softmax(1)
    assert torch.allclose(L.focal_loss(probs, t, gamma=0., smooth=0.), F.nll_loss(probs.log(), t[:, 0].long()), atol=1e-6)
    two = torch.cat([torch.zeros_like(z), z], 1).softmax(1)
    assert torch.allclose(L.focal_loss(two, t, smooth=0.), sigmoid_focal_loss(z, t, -1, 2, 'mean'), atol=1e-6)


def test_dice_and_smooth_l1():
    from sklearn.metrics import f1_score
    torch.manual_seed(4)
    p, g = (torch.rand(3, 1, 6, 5) > .5).float(), (torch.rand(3, 1, 6, 5) > .6).float()
    ref = torch.tensor([1 - f1_score(g[i].flatten().numpy(), p[i].flatten().numpy()) for i in range(3)], dtype=torch.float32)
    assert torch.allclose(L.dice_loss(p, g, eps=0., reduction='none'), ref, atol=1e-6)
    u, v = torch.randn(2, 3, 5, 7), torch.randn(2, 3, 5, 7)
    assert torch.allclose(L.smooth_l1_loss(u, v, 0.3), F.smooth_l1_loss(u, v, beta=0.3), atol=1e-6)


def test_rank_contrastive_cosine_deviation():
    torch.manual_seed(5)
    lh, lt = torch.randn(3, 6), torch.rand(3, 6)
    i, j = torch.triu_indices(6, 6, 1)
    sign = ((lt[:, i] > lt[:, j]).float() * 2 - 1).flatten()
    assert torch.allclose(L.rank_loss(lh, lt, xi=.5), F.margin_ranking_loss(lh[:, i].flatten(), lh[:, j].flatten(), sign, margin=.5), atol=1e-6)
    N = [torch.randn(4, 8, 6, 6), torch.randn(4, 16, 3, 3)]
    Na, An = [n + torch.randn(n.shape) for n in N], [n + torch.randn(n.shape) for n in N]
    dist = lambda a, b: 1 - F.cosine_similarity(a.flatten(1), b.flatten(1))
    ref = torch.stack([F.triplet_margin_with_distance_loss(n, na, a, distance_function=dist, margin=.1) for n, na, a in zip(N, Na, An)]).mean()
    assert torch.allclose(L.contrastive_loss(N, Na, An, margin=.1), ref, atol=1e-6)
    ref = torch.stack([F.cosine_embedding_loss(t.flatten(1), s.flatten(1), torch.ones(4)) for t, s in zip(N, Na)]).mean()
    assert torch.allclose(L.cos_sim_loss(N, Na), ref, atol=1e-6)
    assert L.cos_anomaly_map(N, Na, (5, 7)).shape == (4, 1, 5, 7)
    assert torch.allclose(L.cos_anomaly_map(N, N, (12, 12)), torch.zeros(4, 1, 12, 12), atol=1e-6)
    S, y = torch.tensor([[0.5, -1.0], [2.0, 7.0]]), torch.tensor([0, 1])
    assert math.isclose(L.deviation_loss(S, y, standardize=False).item(), 4.5 / 4, rel_tol=1e-6)


def test_losses_have_finite_gradients():
    img = torch.rand(2, 3, 16, 16, requires_grad=True)
    zero = torch.zeros(2, 1, 16, 16)
    probs = torch.cat([torch.ones(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)], 1).requires_grad_()
    feat = torch.zeros(2, 4, 4, 4, requires_grad=True)
    scores = torch.zeros(2, 3, requires_grad=True)
    total = (L.ssim_loss(img, img.detach()) + L.sigmoid_focal_loss(img[:, :1] * 20, zero) + L.focal_loss(probs, zero)
             + L.dice_loss(img[:, :1], zero) + L.smooth_l1_loss(img, img.detach()) + L.rank_loss(scores, torch.ones(2, 3))
             + L.cos_sim_loss([feat], [feat.detach() + 1]) + L.cos_anomaly_map([feat], [feat.detach() + 1], (8, 8)).mean()
             + L.contrastive_loss([feat], [feat.detach() + 1], [feat.detach() - 1]) + L.deviation_loss(scores, torch.tensor([0, 1])))
    total.backward()
    for t in (img, probs, feat, scores):
        assert t.grad is not None and torch.isfinite(t.grad).all()
