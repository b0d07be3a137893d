"""Public API of `anomaly_tutor.unets`: shape contracts, skip masks, the frozen teacher."""
import time

import pytest
import timm
import torch
import torch.nn as nn

from anomaly_tutor import unets as U
from anomaly_tutor.attention import count_params
from anomaly_tutor.losses import cos_anomaly_map, cos_sim_loss


pytestmark = pytest.mark.usefixtures('one_thread')  # small models: one thread (tests/conftest.py)


# ---------------------------------------------------------------- MACoW's ConvNeXtV2 U-Nets
SIZES = [(2, 64, 64), (1, 100, 72), (1, 33, 47)]


@pytest.fixture(scope='module')
def rec():
    torch.manual_seed(0)
    return U.ConvNeXtUNet('convnextv2_atto').eval()


@pytest.fixture(scope='module')
def disc():
    torch.manual_seed(0)
    return U.ConvNeXtDiscUNet('convnextv2_atto').eval()


def test_convnext_unet_shapes(rec):
    with torch.no_grad():
        for B, H, W in SIZES: assert rec(torch.rand(B, 3, H, W)).shape == (B, 3, H, W)
    with pytest.raises(ValueError, match='at least 32'): rec(torch.rand(1, 3, 31, 64))


def test_convnext_unet_attention_and_decoder(rec):
    assert isinstance(rec.attn_enc, U.SSPCBMA) and isinstance(rec.decoder.attn, U.SSPCBMA)
    assert rec.attn_enc.mconv.convs[0].in_channels == 320
    assert [l.conv[0].in_channels for l in rec.decoder.layers] == [320, 480, 240, 120, 40, 64]
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in rec.modules())       # bilinear, no transposed conv
    assert isinstance(U.ConvNeXtUNet(attn='sspcab').attn_enc, U.SSPCAB)
    assert isinstance(U.ConvNeXtUNet(attn=None).decoder.attn, nn.Identity)
    with pytest.raises(ValueError, match='convnextv2'): U.ConvNeXtUNet('convnext_atto')


def test_convnext_unet_gradients():
    torch.manual_seed(0)
    m = U.ConvNeXtUNet('convnextv2_atto').train()
    m(torch.rand(2, 3, 64, 64)).square().mean().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_disc_unet_shapes_and_concat(disc):
    x, xr = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    seen = {}
    h = disc.decoder.layers[0].register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    with torch.no_grad():
        y = disc(x, xr)
        h.remove()
        deepest = torch.cat([disc.encoder(x)[-1], disc.encoder(xr)[-1]], 1)
        assert disc(torch.rand(1, 3, 100, 72), torch.rand(1, 3, 100, 72)).shape == (1, 2, 100, 72)
    assert y.shape == (2, 2, 64, 64)
    torch.testing.assert_close(seen['x'], deepest)
    assert [l.conv[0].in_channels for l in disc.decoder.layers] == [640, 640, 320, 160, 40, 96]
    assert sum(isinstance(m, U.ConvNeXtEncoder) for m in disc.modules()) == 1


def test_paper_size_convnext_builds_on_meta():
    with torch.device('meta'):
        m = U.ConvNeXtUNet('convnextv2_base')
        d = U.ConvNeXtDiscUNet('convnextv2_base')
    assert m.encoder.channels == [32, 128, 256, 512, 1024]
    assert 90e6 < count_params(m) < 200e6 and 90e6 < count_params(d) < 200e6


# ---------------------------------------------------------------- EAR/FADeR inpainting U-Net
@pytest.fixture(scope='module')
def inp():
    torch.manual_seed(0)
    return U.InpaintUNet(widths=(8, 16, 32, 64, 64)).eval()


def test_inpaint_shapes(inp):
    with torch.no_grad():
        for B, H, W in SIZES: assert inp(torch.rand(B, 3, H, W)).shape == (B, 3, H, W)
    assert len(inp.enc) == len(inp.dec) == 5
    blk = inp.enc[0]
    assert [m.stride for m in blk if isinstance(m, nn.Conv2d)] == [(1, 1), (1, 1), (2, 2)]
    assert sum(isinstance(m, nn.LeakyReLU) for m in blk) == 3 and sum(isinstance(m, nn.BatchNorm2d) for m in blk) == 3
    assert [b.convs[0].in_channels for b in inp.dec] == [16, 32, 64, 128, 64]       # no skip at the deepest level


@pytest.mark.parametrize('d', range(4))
def test_zero_multiplier_removes_skip(inp, d):
    with torch.no_grad():
        feats = inp.encode(torch.rand(2, 3, 64, 64))
        noisy = [torch.randn_like(f) if i == d else f for i, f in enumerate(feats)]
        zero = [None] * 4; zero[d] = torch.zeros(1, 1, 5, 5)                          # any resolution
        assert torch.equal(inp.decode(noisy, (64, 64), zero), inp.decode(feats, (64, 64), zero))
        assert not torch.equal(inp.decode(noisy, (64, 64)), inp.decode(feats, (64, 64)))


def test_skip_multiplier_forms(inp):
    x = torch.rand(2, 3, 48, 40)
    with torch.no_grad():
        y = inp(x)
        torch.testing.assert_close(inp(x, torch.ones(7, 9)), y)
        torch.testing.assert_close(inp(x, [1.0, None, torch.ones(2, 3, 3), None]), y)
        assert not torch.allclose(inp(x, 0.5), y)
    with pytest.raises(ValueError, match='D - 1 = 4'): inp(x, [None] * 5)


def test_spatial_mask_gradient(inp):
    with torch.no_grad(): feats = inp.encode(torch.rand(1, 3, 64, 64))
    f = feats[0].clone().requires_grad_(True)                                          # level 1: 32×32
    M = torch.ones(1, 1, 4, 4); M[..., 1, 2] = 0                                        # nearest ×8 → an 8×8 hole
    inp.decode([f] + feats[1:], (64, 64), [M, None, None, None]).sum().backward()
    g = f.grad.abs().sum(1)[0]
    hole = torch.zeros(32, 32, dtype=torch.bool); hole[8:16, 16:24] = True
    assert g[hole].sum() == 0 and (g[~hole] > 0).all()


def test_inpaint_bilinear_mask_mode():
    m = U.InpaintUNet(widths=(4, 8, 8, 8, 8), mask_mode='bilinear', out_act=None).eval()
    with torch.no_grad(): assert m(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 3, 3)).shape == (1, 3, 32, 32)


# ---------------------------------------------------------------- reverse-distillation teacher–student U-Net
@pytest.fixture(scope='module')
def ts():
    torch.manual_seed(0)
    return U.TeacherStudentUNet('resnet18')


def test_ts_shapes_and_map(ts):
    with torch.no_grad():
        for B, H, W in [(2, 64, 64), (1, 32, 160)]:
            out = ts.train()(torch.rand(B, 3, H, W))
            assert [s.shape for s in out.S] == [t.shape for t in out.T]
            assert out.anomaly_map.shape == (B, 1, H, W)
            torch.testing.assert_close(out.anomaly_map, cos_anomaly_map(out.T, out.S, (H, W)))
    assert [t.shape[1] for t in out.T] == [64, 128, 256]
    with pytest.raises(ValueError, match='multiples of 32'): ts(torch.rand(1, 3, 100, 64))
    assert all(isinstance(a, U.CPAM) for a in ts.attn)


def test_teacher_frozen_student_trains(ts):
    ts.train()
    assert ts.training and not ts.teacher.training
    assert not any(m.training for m in ts.teacher.modules())
    assert not any(p.requires_grad for p in ts.teacher.parameters())
    before = {k: v.clone() for k, v in ts.state_dict().items()}
    opt = torch.optim.Adam(ts.parameters(), lr=5e-3, betas=(0.5, 0.999))   # all parameters: the teacher's get no grad
    out = ts(torch.rand(4, 3, 64, 64))
    opt.zero_grad(); cos_sim_loss(out.T, out.S).backward(); opt.step()
    after = ts.state_dict()
    teacher = [k for k in before if k.startswith('teacher.')]
    student = [n for n, p in ts.named_parameters() if p.requires_grad]
    assert teacher and all(torch.equal(before[k], after[k]) for k in teacher)       # weights and BN statistics
    # every student parameter moves, except PAM's convolutions: with γ = 0 at initialisation their gradient is 0
    assert [k for k in student if torch.equal(before[k], after[k])] == [k for k in student if '.pam.' in k and 'gamma' not in k]
    assert all(p.grad is None for p in ts.teacher.parameters())
    ts.eval(); assert not ts.teacher.training


def test_ts_without_cpam_is_rd4ad():
    m = U.TeacherStudentUNet('resnet18', attn=False)
    assert all(isinstance(a, nn.Identity) for a in m.attn)
    assert count_params(m) < count_params(U.TeacherStudentUNet('resnet18'))


def test_ts_wide_resnet_recipe_on_meta():
    "The paper's teacher, built (not run): RD4AD's OCBE (3072 → 2048) and decoder depths 3, 4, 6."
    with torch.device('meta'): m = U.TeacherStudentUNet('wide_resnet50_2')
    assert m.teacher.feature_info.channels() == [256, 512, 1024]
    assert m.ocbe.stage[0].conv1.in_channels == 3072 and len(m.ocbe.stage) == 3
    assert [len(s) for s in m.decoder] == [3, 4, 6]
    assert [s[-1].body[-2].out_channels for s in m.decoder] == [1024, 512, 256]
    assert m.decoder[0][0].body[3].out_channels == 512                                # wide: 2 × planes
    assert isinstance(m.decoder[0][0].body[3], nn.ConvTranspose2d)
    with pytest.raises(ValueError, match='ResNet'): U.TeacherStudentUNet('convnextv2_atto')
