"""Thin checks of `anomaly_tutor.masking` (the chapter notebook `nbs/31_masking.ipynb` has the full lesson tests)."""
import pytest
import torch
import torch.nn as nn

from anomaly_tutor.losses import rank_loss
from anomaly_tutor.masking import (PatchErrorMLP, attention_mask, attention_vit, cls_attention, ear_mask, fader_loss,
                                   fader_masks, hard_mask, mosaic_hint, patch_errors, random_mask, scale_masks,
                                   skip_sizes, soft_mask)
from anomaly_tutor.unets import InpaintUNet


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_soft_mask_range_equal_case_and_shift():
    g = torch.Generator().manual_seed(0)
    l_hat = torch.randn(4, 16, generator=g) * 5
    M = soft_mask(l_hat, (4, 4))
    assert M.shape == (4, 4, 4) and (M > 0).all() and (M <= 1).all()
    assert torch.equal(soft_mask(torch.full((2, 16), -3.), (4, 4)), torch.ones(2, 4, 4))
    assert torch.allclose(soft_mask(l_hat - 50, (4, 4)), M, atol=1e-5)
    assert M.flatten(1).gather(1, l_hat.argmax(1, keepdim=True)).squeeze(1).lt(1).all()
    assert set(hard_mask(l_hat, (4, 4)).unique().tolist()) <= {0., 1.}


def test_mosaic_hint_outside_unchanged_inside_constant():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    mask = random_mask(x, 8, 0.5, torch.rand(2, 16, generator=g))
    h = mosaic_hint(x, mask, 8)
    out = mask.expand_as(x) == 0
    assert torch.equal(h[out], x[out])
    cells = mosaic_hint(x, torch.ones(2, 32, 32), 4).unfold(2, 4, 4).unfold(3, 4, 4)
    assert (cells == cells[..., :1, :1]).all()


def test_attention_mask_with_a_random_tiny_vit():
    torch.manual_seed(0)
    vit = attention_vit('vit_tiny_patch16_224', img_size=64)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad(): a = cls_attention(vit, x)
    assert a.shape == (2, 4, 4) and (a > 0).all()
    M = attention_mask(a, mass=0.6)
    assert ((a * M).sum((1, 2)) >= 0.6 * a.sum((1, 2)) - 1e-6).all()
    Me = ear_mask(vit, x, fraction=0.25)
    assert Me.shape == (2, 1, 64, 64) and torch.equal(Me.mean((1, 2, 3)), torch.full((2,), 0.25))


def test_ranking_loss_orders_patches():
    g = torch.Generator().manual_seed(0)
    X = torch.rand(24, 3, 32, 32, generator=g) * torch.rand(24, 1, 1, 1, generator=g)
    X = X * torch.rand(24, 1, 4, 4, generator=g).repeat_interleave(8, 2).repeat_interleave(8, 3)
    I_hat = torch.zeros_like(X)                                  # a "reconstruction" that paints black: l_i = mean(τ_i²)
    torch.manual_seed(0)
    phi = PatchErrorMLP(8, hidden=64)
    opt = torch.optim.Adam(phi.parameters(), lr=3e-3)
    for _ in range(150):
        loss = fader_loss(phi, X[:16], X[:16], I_hat[:16])
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): l_hat, l = phi(X[16:]), patch_errors(X[16:], I_hat[16:])
    i, j = torch.triu_indices(16, 16, 1)
    acc = (torch.sign(l_hat[:, i] - l_hat[:, j]) == torch.sign(l[:, i] - l[:, j])).float().mean().item()
    assert acc > 0.75
    assert rank_loss(l_hat, l).item() < 1.0


def test_equal_predictions_leave_the_unet_unchanged_and_masks_shrink_skips():
    torch.manual_seed(0)
    unet = InpaintUNet(widths=(4, 8, 8, 8, 8)).eval()
    x = torch.rand(1, 3, 32, 32)
    flat = PatchErrorMLP(8)
    nn.init.zeros_(flat.mlp[2].weight)
    with torch.no_grad():
        assert torch.equal(unet(x, fader_masks(flat, x)), unet(x))
        M = torch.ones(1, 4, 4); M[0, 1, 2] = 0.25
        feats = unet.encode(x)
        for f, m in zip(feats[:-1], scale_masks(M, skip_sizes((32, 32)))):
            assert torch.equal(unet.mask_skip(f, m), f * m)
