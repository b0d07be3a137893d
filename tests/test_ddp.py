"""One model trained by two processes under torchrun (gloo, CPU) with the book's Trainer: both ranks end with the
same weights, only rank 0 writes, and the checkpoint holds the bare model."""
import subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch
import torch.nn as nn

SCRIPT = textwrap.dedent('''
    import sys
    from pathlib import Path
    import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
    from anomaly_tutor.training import Trainer, dist_rank, init_distributed, seed_everything, shard_batches

    out = Path(sys.argv[1])
    device = init_distributed('gloo')
    rank, world = dist_rank()
    seed_everything(rank)                # different weights per process: DDP must start every one from rank 0's
    torch.set_num_threads(1)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    torch.save(net.state_dict(), out/f'init{rank}.pt')
    model = nn.parallel.DistributedDataParallel(net)
    data = np.random.default_rng(0)      # the same stream in every process
    def batches(epoch):
        for _ in range(9): yield torch.from_numpy(data.random((4, 3, 16, 16), dtype=np.float32))
    def step(x):
        loss = F.mse_loss(model(x), x)
        return {'loss': loss}
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    t = Trainer(model, opt, step, shard_batches(batches), epochs=2, device=device, gens={'data': data},
                run_dir=out/'run', config={'world': world}, progress=False).fit()
    torch.save(net.state_dict(), out/f'final{rank}.pt')
    print('rank', rank, 'of', world, 'steps', t.step)
    torch.distributed.destroy_process_group()
''')


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('ddp')
    (out/'train_ddp.py').write_text(SCRIPT)
    res = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                          str(out/'train_ddp.py'), str(out)], capture_output=True, text=True, timeout=300,
                         env={'OMP_NUM_THREADS': '1', **__import__('os').environ})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out, res.stdout


def _same(a, b): return all(torch.equal(a[k], b[k]) for k in a)


def test_both_ranks_end_with_the_same_weights(ddp_run):
    out, stdout = ddp_run
    init = [torch.load(out/f'init{r}.pt') for r in (0, 1)]
    final = [torch.load(out/f'final{r}.pt') for r in (0, 1)]
    assert not _same(*init)                          # they started apart...
    assert _same(*final)                             # ...and ended together
    assert not _same(final[0], init[0])              # and they trained
    # 9 batches an epoch, rounds of 2: 4 steps an epoch in each process
    assert 'rank 0 of 2 steps 8' in stdout and 'rank 1 of 2 steps 8' in stdout


def test_only_rank0_writes_and_the_checkpoint_is_the_bare_model(ddp_run):
    out, _ = ddp_run
    run = out/'run'
    rows = (run/'log.jsonl').read_text().splitlines()
    assert len(rows) == 8                            # one process's steps, not both
    ck = torch.load(run/'checkpoint.pt', weights_only=False)
    assert not any(k.startswith('module.') for k in ck['model'])
    net = _net()
    net.load_state_dict(ck['model'])                  # loads into a single-process model
    assert _same(net.state_dict(), torch.load(out/'final0.pt'))
