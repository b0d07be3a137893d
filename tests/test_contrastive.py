"""The Siamese stages' contracts that the trainer and the paper pipeline rely on (the lessons live in nbs/32_contrastive.ipynb)."""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from anomaly_tutor.contrastive import (AnomalyFolder, SplitLeakError, SyntheticAnomalies, random_rotation,
                                       stage1_step, stage2_step)
from anomaly_tutor.data import MVTecDataset, make_loader, write_fake_category
from anomaly_tutor.unets import TeacherStudentUNet


@pytest.fixture(scope='module')
def category(tmp_path_factory):
    return write_fake_category(tmp_path_factory.mktemp('mvtec'), 'widget', size=64, n_train=4, defects={'crack': 2})


@pytest.fixture
def one_thread():
    "Tiny tensors on a shared machine: one thread is fastest and immune to other processes (see the U-Net chapter)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_folder_source_refuses_the_evaluated_test_split(category, tmp_path):
    with pytest.raises(SplitLeakError, match='move \\(do not copy\\)'): AnomalyFolder(category/'test'/'crack', category, 64)
    with pytest.raises(SplitLeakError, match='contains the test split'): AnomalyFolder(category, category, 64)
    (tmp_path/'copy').mkdir(); shutil.copy(category/'test'/'crack'/'000.png', tmp_path/'copy'/'a.png')
    with pytest.raises(SplitLeakError, match='byte-identical'): AnomalyFolder(tmp_path/'copy', category, 64)


def test_folder_source_converts_grayscale_and_resizes(category, tmp_path):
    (tmp_path/'mine').mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)).save(tmp_path/'mine'/'g.png')
    src = AnomalyFolder(tmp_path/'mine', category, 64)
    assert src.images.shape == (1, 3, 64, 64) and torch.equal(src.images[0, 0], src.images[0, 1])


def test_rotation_is_seeded():
    x = torch.rand(4, 3, 32, 32)
    a, b = (random_rotation(x, torch.Generator().manual_seed(3)) for _ in range(2))
    assert torch.equal(a, b) and a.shape == x.shape


def test_steps_on_a_loader_batch_train_the_student_only(category, one_thread):
    torch.manual_seed(0)
    model = TeacherStudentUNet('resnet18')
    teacher = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    opt = torch.optim.Adam(model.student_parameters(), lr=5e-3, betas=(0.5, 0.999))
    batch = next(iter(make_loader(MVTecDataset(category, size=64), batch_size=2)))
    src = SyntheticAnomalies()
    for step in (stage1_step(model, src, np.random.default_rng(0)), stage2_step(model, src, np.random.default_rng(1))):
        out = step(batch)
        assert model.training and out['loss'].dim() == 0 and torch.isfinite(out['loss'])
        opt.zero_grad(); out['loss'].backward(); opt.step()
    assert all(torch.equal(teacher[k], v) for k, v in model.teacher.state_dict().items())
