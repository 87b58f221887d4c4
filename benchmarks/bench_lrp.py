"""LRP relevance maps per minute for the paper-size convnet, batched versus one example at a time, side by side.

The network is :class:`scatterxai.model.ConvNet` with 1,200 input paths (2,068,289 parameters), random
weights and non-trivial BatchNorm statistics (or a trained model with ``--model``); the inputs are random
arrays of the paper's shape (K, 1200, 32): the cost of LRP does not depend on the values.  Each round runs
:func:`scatterxai.explain.attribute` on the same K examples twice — with ``batch_size=B`` and with
``batch_size=1`` — alternating the order from round to round so that the load of a shared machine affects
both alike.  The speed of each is the median over rounds; maps per minute are those of the batched run.

Usage::

    python benchmarks/bench_lrp.py [--examples 64] [--batch-size 64] [--rounds 3] [--rule epsilon_plus]
                                   [--device cpu] [--threads N] [--model MODEL_DIR]

Last line: ``speedup=<batched / one-at-a-time> maps_per_min=<batched maps per minute>``.
"""

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from scatterxai.explain import attribute, available_methods
from scatterxai.model import ConvNet, count_parameters, load_model


def random_net(n_channels=1200, seed=0) -> ConvNet:
    torch.manual_seed(seed)
    net = ConvNet(n_channels, n_classes=5)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def timed(net, x, *, rule, batch_size, device) -> float:
    t0 = time.perf_counter()
    res = attribute(net, x, method=rule, batch_size=batch_size, device=device)
    seconds = time.perf_counter() - t0
    assert res.relevance.shape == tuple(x.shape) and np.isfinite(res.relevance).all()
    return seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=64, help="examples explained per run (K)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size of the batched run")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of (batched, one at a time)")
    p.add_argument("--rule", default="epsilon_plus", choices=available_methods("lrp"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--model", default=None, help="trained MODEL_DIR (default: random weights)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    net = load_model(args.model, device="cpu").net if args.model else random_net()
    n_frames = 32
    x = torch.from_numpy(np.random.default_rng(0).gamma(2.0, 1.0, size=(args.examples, net.n_channels, n_frames))
                         .astype(np.float32))
    x = torch.log1p(x / 0.2)  # about the range of log-normalised scattering
    print(f"ConvNet({net.n_channels}): {count_parameters(net):,} parameters; input {tuple(x.shape)}; rule "
          f"{args.rule}; device {args.device}; {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    timed(net, x[:2], rule=args.rule, batch_size=2, device=args.device)  # warm-up
    times = {"batched": [], "single": []}
    for r in range(args.rounds):
        order = ("batched", "single") if r % 2 == 0 else ("single", "batched")
        for mode in order:
            bs = args.batch_size if mode == "batched" else 1
            times[mode].append(timed(net, x, rule=args.rule, batch_size=bs, device=args.device))
        print(f"round {r + 1}: batched (B={args.batch_size}) {times['batched'][-1]:.2f} s, one at a time "
              f"{times['single'][-1]:.2f} s for {args.examples} maps", flush=True)
    batched, single = statistics.median(times["batched"]), statistics.median(times["single"])
    print(f"per map: batched {1000 * batched / args.examples:.1f} ms, one at a time "
          f"{1000 * single / args.examples:.1f} ms")
    print(f"speedup={single / batched:.2f} maps_per_min={60 * args.examples / batched:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
