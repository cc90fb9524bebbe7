#!/usr/bin/python3
"""bench_torch.py: the PyTorch side of launch/bench.sh, the same job as `mpifit bench`.

torchvision MobileNetV2 (width_mult = --width, 3 classes; its classifier is
Dropout(0.2) + Linear after global average pooling, as mpifit's head), channels-last,
SGD momentum 0.9 lr 0.01, trained on synthetic in-memory tensors (3 distinct batches
cycled): --warmup steps, then --steps timed ones. --frozen: `model.features` runs in
eval() under torch.no_grad() and only the classifier trains (mpifit's freeze_base).

    /usr/bin/python3 launch/bench_torch.py --threads 2 --size 128 --batch 32
    mpirun -np 2 --bind-to none /usr/bin/python3 launch/bench_torch.py --threads 1 ...

Under mpirun (OMPI_COMM_WORLD_SIZE > 1) it runs DistributedDataParallel over gloo
(MASTER_ADDR 127.0.0.1, MASTER_PORT from the environment or 29533). Rank 0 prints one
    RESULT impl=torch mode=train ranks=R threads=T size=S width=A batch=B frozen=0|1 img_per_s=... step_ms=... rss_mb=...
with batch per rank, img_per_s global and rss_mb the largest peak RSS of any rank.
Exit status 3 when torch/torchvision cannot be imported. Use /usr/bin/python3
(Debian's python3-torch); a pyenv python on PATH usually has no torch.
"""
import argparse
import os
import resource
import sys
import time

N_BATCHES = 3


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="intra-op threads per rank")
    p.add_argument("--size", type=int, default=128, help="input side in pixels")
    p.add_argument("--width", type=float, default=1.0, help="MobileNetV2 width multiplier (alpha)")
    p.add_argument("--batch", type=int, default=32, help="batch per rank")
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--frozen", action="store_true", help="train only the classifier")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.threads < 1 or a.size < 32 or a.batch < 1 or a.steps < 1 or a.warmup < 0 or a.width <= 0:
        p.error("need --threads >= 1, --size >= 32, --batch >= 1, --steps >= 1, --warmup >= 0, --width > 0")
    return a


def main():
    a = parse_args()
    world = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    # the thread pools read these when torch loads: set them first
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    try:
        import torch
        import torch.distributed as dist
        import torch.nn as nn
        import torchvision
    except ImportError as e:
        print(f"bench_torch.py: cannot import torch/torchvision with {sys.executable}: {e}\n"
              "  (install python3-torch and python3-torchvision, or run with /usr/bin/python3)",
              file=sys.stderr)
        return 3
    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(a.seed + rank)

    if world > 1:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29533")
        dist.init_process_group("gloo", rank=rank, world_size=world)

    model = torchvision.models.mobilenet_v2(width_mult=a.width, num_classes=3)
    model = model.to(memory_format=torch.channels_last)
    if a.frozen:
        for p in model.features.parameters():
            p.requires_grad_(False)
        model.features.eval()  # BatchNorm in inference mode, as Keras' frozen BatchNorm
        trained = model.classifier
    else:
        trained = model
    if world > 1:
        # DDP over what trains (frozen: the classifier; the base is the same on every rank)
        trained = nn.parallel.DistributedDataParallel(trained)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    xs = [(torch.rand(a.batch, 3, a.size, a.size) * 2 - 1).contiguous(memory_format=torch.channels_last)
          for _ in range(N_BATCHES)]
    ys = [torch.randint(0, 3, (a.batch,)) for _ in range(N_BATCHES)]

    def step(k):
        x, y = xs[k % N_BATCHES], ys[k % N_BATCHES]
        opt.zero_grad(set_to_none=True)
        if a.frozen:
            with torch.no_grad():
                f = model.features(x)
                f = nn.functional.adaptive_avg_pool2d(f, 1).flatten(1)
            out = trained(f)
        else:
            out = trained(x)
        loss = loss_fn(out, y)
        loss.backward()
        opt.step()

    model.train()
    if a.frozen:
        model.features.eval()
    for k in range(a.warmup):
        step(k)
    if world > 1:
        dist.barrier()
    times = []
    t_start = time.perf_counter()
    for k in range(a.warmup, a.warmup + a.steps):
        t0 = time.perf_counter()
        step(k)
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_start

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB
    if world > 1:
        t = torch.tensor([rss_mb, wall], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        rss_mb, wall = float(t[0]), float(t[1])
    times.sort()
    n = len(times)
    step_ms = 1e3 * (times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2]))
    ips = world * a.batch * a.steps / wall
    if rank == 0:
        print(f"torch {torch.__version__}, torchvision {torchvision.__version__}: MobileNetV2 {a.width:g} at {a.size} px,"
              f" batch {a.batch} per rank x {world} rank(s), {a.threads} thread(s) per rank"
              f"{', frozen base' if a.frozen else ''}")
        print(f"RESULT impl=torch mode=train ranks={world} threads={a.threads} size={a.size} width={a.width:g}"
              f" batch={a.batch} frozen={int(a.frozen)} img_per_s={ips:.2f} step_ms={step_ms:.1f} rss_mb={rss_mb:.0f}",
              flush=True)
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
