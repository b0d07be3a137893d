"""Images per second of every anomaly generator of `anomaly_tutor.synthesis` at 256x256 on one CPU core.

Usage: python benchmarks/synthesis_benchmark.py [--size 256] [--n 100] [--repeats 3] [--no-pin]
   or: taskset -c 0 python benchmarks/synthesis_benchmark.py

One core: the process pins itself to CPU 0 (`os.sched_setaffinity`, the call `taskset -c 0` makes) unless --no-pin,
and OpenCV, torch and the BLAS/OpenMP pools get one thread (the environment variables are set before numpy loads).
Inputs: factory images at --size, a texture (brick) and an object (pill, with its estimated foreground); 4 normal images
each, the first damaged and the others as `others`. Every call asks for an anomaly (`anomaly=True`), so the no-anomaly
probability of Perlin does not flatter it. Each generator is timed --repeats times over --n calls (after 3 warm-up
calls) and the best run is reported. Targets: >= 50 images/s, NSA >= 15 images/s. Exit status 1 if a target is missed.
"""
import os
for _v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS'): os.environ[_v] = '1'
import argparse, platform, sys, time

import cv2
import numpy as np
import torch

from anomaly_tutor.factory import render_normal
from anomaly_tutor.synthesis import all_generators, estimate_foreground, default_source

TARGETS = {'nsa': 15.0}
DEFAULT_TARGET = 50.0


def pin_one_core(pin: bool) -> str:
    "Pin to CPU 0 (like `taskset -c 0`) and use one thread everywhere; describe the result."
    if pin and hasattr(os, 'sched_setaffinity'):
        try: os.sched_setaffinity(0, {0})
        except OSError as e: print(f'could not pin to CPU 0: {e}', file=sys.stderr)
    cv2.setNumThreads(1); torch.set_num_threads(1)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else 'n/a'
    return f'cpus={cpus} cv2_threads={cv2.getNumThreads()} torch_threads={torch.get_num_threads()}'


def time_generator(gen, imgs, fgs, n: int, repeats: int) -> float:
    "Best images/s over `repeats` runs of `n` calls."
    kw = dict(others=imgs[1:], fg=None if fgs is None else fgs[0], others_fg=None if fgs is None else fgs[1:], anomaly=True)
    rng = np.random.default_rng(0)
    for _ in range(3): gen(imgs[0], rng, **kw)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n): gen(imgs[0], rng, **kw)
        best = max(best, n / (time.perf_counter() - t))
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--n', type=int, default=100)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--no-pin', action='store_true')
    a = ap.parse_args(argv)
    setup = pin_one_core(not a.no_pin)
    print(f'# synthesis benchmark: {a.size}x{a.size}, {a.n} calls x {a.repeats} (best), {setup}')
    print(f'# {platform.processor() or platform.machine()}, python {platform.python_version()}, numpy {np.__version__}, '
          f'opencv {cv2.__version__}, load average {os.getloadavg()[0]:.2f}' if hasattr(os, 'getloadavg') else '')
    default_source()  # load the offline sources once, outside the timing
    tex = [render_normal('brick', np.random.default_rng(s), a.size) for s in range(4)]
    obj = [render_normal('pill', np.random.default_rng(s), a.size) for s in range(4)]
    obj_fg = [estimate_foreground(o) for o in obj]
    print(f"{'generator':<14}{'texture img/s':>15}{'object img/s':>15}{'target':>9}  ok")
    ok = True
    for name, gen in all_generators().items():
        rt = time_generator(gen, tex, None, a.n, a.repeats)
        ro = time_generator(gen, obj, obj_fg, a.n, a.repeats)
        target = TARGETS.get(name, DEFAULT_TARGET); good = min(rt, ro) >= target; ok &= good
        print(f'{name:<14}{rt:>15.1f}{ro:>15.1f}{target:>9.0f}  {"yes" if good else "NO"}')
    t = time.perf_counter(); estimate_foreground(obj[0]); fg_ms = (time.perf_counter() - t) * 1000
    print(f'# estimate_foreground: {fg_ms:.1f} ms per image (not included above: foregrounds are computed once per image)')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
