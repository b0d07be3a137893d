"""Parameter counts and CPU forward times of the U-Nets of `anomaly_tutor.unets` (chapter 22).

Usage: python benchmarks/unets_benchmark.py [--sizes 128 256] [--repeats 2] [--threads 1] [--only TEXT]

For every configuration (the small ones the `cpu` profile uses and the paper-size ones) it prints one markdown
table row: trainable and total parameters, and the CPU time of one forward pass of a batch of 1 at each size, in
`torch.inference_mode`, the best of `--repeats` runs after one warm-up run. Weights are random (no download):
timing does not depend on them. `--threads` sets `torch.set_num_threads`; the default 1 gives steady numbers on a
shared machine (with 2 threads and other processes on the same 2 cores, OpenMP waits can make small models many
times slower). MACoW, FADeR and the Siamese U-Net work at 256×256 (MACoW and FADeR do not state it: 256 is the
resolution of DRAEM and of the RIAD U-Net port they build on; the Siamese U-Net takes RD4AD's 256).
"""
import argparse, platform, time

import torch

from anomaly_tutor.attention import count_params
from anomaly_tutor.unets import ConvNeXtDiscUNet, ConvNeXtUNet, InpaintUNet, TeacherStudentUNet

CONFIGS = {
    'ConvNeXtUNet (rec), atto': lambda: ConvNeXtUNet('convnextv2_atto'),
    'ConvNeXtUNet (rec), tiny': lambda: ConvNeXtUNet('convnextv2_tiny'),
    'ConvNeXtUNet (rec), base': lambda: ConvNeXtUNet('convnextv2_base'),
    'ConvNeXtDiscUNet, atto': lambda: ConvNeXtDiscUNet('convnextv2_atto'),
    'ConvNeXtDiscUNet, tiny': lambda: ConvNeXtDiscUNet('convnextv2_tiny'),
    'ConvNeXtDiscUNet, base': lambda: ConvNeXtDiscUNet('convnextv2_base'),
    'InpaintUNet, 32…256': lambda: InpaintUNet(widths=(32, 64, 128, 256, 256)),
    'InpaintUNet, 64…512': lambda: InpaintUNet(),
    'TeacherStudentUNet, resnet18': lambda: TeacherStudentUNet('resnet18'),
    'TeacherStudentUNet, wide_resnet50_2': lambda: TeacherStudentUNet('wide_resnet50_2'),
}


def time_forward(model, size:int, repeats:int=2) -> float:
    "Best-of-`repeats` seconds of one forward pass of a 1×3×size×size input, after a warm-up, in inference mode."
    model.eval()
    x = torch.rand(1, 3, size, size)
    args = (x, x) if isinstance(model, ConvNeXtDiscUNet) else (x,)
    with torch.inference_mode():
        model(*args)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter(); model(*args); ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[128, 256])
    p.add_argument('--repeats', type=int, default=2)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--only', default='', help='only configurations whose name contains this text')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print(f'torch {torch.__version__}, {platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s), '
          f'batch 1, best of {a.repeats}\n')
    print('| network | trainable | total | ' + ' | '.join(f'ms at {s} px' for s in a.sizes) + ' |')
    print('|---|---:|---:|' + '---:|' * len(a.sizes))
    for name, make in CONFIGS.items():
        if a.only not in name: continue
        m = make()
        n_train, n_all = count_params(m), sum(p.numel() for p in m.parameters())
        ms = [1e3 * time_forward(m, s, a.repeats) for s in a.sizes]
        print(f'| {name} | {n_train / 1e6:.2f} M | {n_all / 1e6:.2f} M | ' + ' | '.join(f'{t:,.0f}' for t in ms) + ' |',
              flush=True)


if __name__ == '__main__':
    main()
