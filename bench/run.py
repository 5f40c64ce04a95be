"""make bench: every performance workload of the project, measured on both
sides (cnn and PyTorch) in one run on this machine, median of repetitions.
Prints a table with both timings, the ratio, GFLOP/s and the fraction of the
measured FMA peak, and writes the same numbers to bench/results.json
(bench/results-avx2.json with CNN_BENCH_ISA=avx2).

Environment: CNN_BENCH_QUICK=1 for fewer repetitions and smaller training
runs (a smoke test), CNN_BENCH_ONLY=substring to run matching workloads,
CNN_BENCH_ISA=avx2 to measure both sides as on a machine without AVX-512
(cnn's AVX2 kernels; PyTorch with ATEN_CPU_CAPABILITY=avx2 and
ONEDNN_MAX_CPU_ISA=AVX2; OpenBLAS with OPENBLAS_CORETYPE=Haswell).
PyTorch runs with OPENBLAS_NUM_THREADS=1 unless it is set (its faster
setting here, see TORCH_DEFAULT_ENV); the training rows also run it as
installed."""
import gzip
import json
import os
import platform
import statistics
import subprocess
import threading
import sys
import tempfile
import time

import numpy as np

ISA = os.environ.get("CNN_BENCH_ISA", "")
if ISA not in ("", "auto", "avx2", "avx512"):
    sys.exit("CNN_BENCH_ISA is auto, avx2 or avx512, got %r" % ISA)
if ISA == "avx2":  # before PyTorch and OpenBLAS load: they read these once
    os.environ.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", OPENBLAS_CORETYPE="Haswell")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
CNN = os.path.join(BUILD, "cnn")
WORKLOAD = os.path.join(BUILD, "bench", "cnn_workload")
# cnn_workload links OpenBLAS for the matrix-multiply comparison (one
# thread). Left to itself, OpenBLAS starts a worker per core at load, which
# spins in sched_yield while the layer runs: a third busy thread on the 2
# cores, measured as a quarter of the samples of a 2-thread layer run.
WORKLOAD_ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")
# PyTorch (Debian's) computes its matrix products, Linear's and those of the
# convolutions it lowers to them, with that OpenBLAS too, whose threads then
# run beside PyTorch's own OpenMP threads: on 2 cores the two pools fight
# (LeNet-5's epoch measured 4,600-5,400 images/s as installed, 11,600-17,000
# with OpenBLAS on one thread). PyTorch is measured the faster way,
# OPENBLAS_NUM_THREADS=1 unless the caller set it, before it is loaded; the
# training rows also run it as installed (TORCH_DEFAULT_ENV), the setting of
# the PyTorch figures in shared/PERF.md.
TORCH_DEFAULT_ENV = dict(os.environ)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
PEAK_CORE = 115.0  # GFLOP/s per core, measured (shared/PERF.md)
QUICK = os.environ.get("CNN_BENCH_QUICK") == "1"
ONLY = os.environ.get("CNN_BENCH_ONLY", "")
REPS = 3 if QUICK else 9
# The two sides of a row alternate over ROUNDS rounds of REPS runs each, and
# each side's figure is the median of its rounds' medians: this shared
# machine has slow phases lasting seconds (the second core shared, it
# seems: a 2-thread run then takes its 1-thread time), which would
# otherwise fall on one side only.
ROUNDS = 1 if QUICK else 5
TRAIN_ROUNDS = 1 if QUICK else 5  # a run takes seconds, a slow phase of the host as long: 5 so one or two slow runs do not set the median

CONVS = [
    # name, module (cnn syntax = PyTorch syntax), input C,H,W, batch
    ("ResNet 3x3, 64 ch, 56x56", "Conv2d(64, 64, 3, padding=1, bias=False)", (64, 56, 56), 8),
    ("ResNet 3x3, 128 ch, 28x28", "Conv2d(128, 128, 3, padding=1, bias=False)", (128, 28, 28), 8),
    ("ResNet 3x3, 256 ch, 14x14", "Conv2d(256, 256, 3, padding=1, bias=False)", (256, 14, 14), 8),
    ("1x1, 256 to 64 ch, 56x56", "Conv2d(256, 64, 1, bias=False)", (256, 56, 56), 8),
    ("VGG first layer, 3 to 64 ch, 224x224", "Conv2d(3, 64, 3, padding=1)", (3, 224, 224), 8),
    ("LeNet conv1, 1 to 6 ch, k5, 28x28", "Conv2d(1, 6, 5, padding=2)", (1, 28, 28), 64),
    ("LeNet conv2, 6 to 16 ch, k5, 14x14", "Conv2d(6, 16, 5)", (6, 14, 14), 64),
    ("depthwise 3x3, 128 ch, 56x56", "Conv2d(128, 128, 3, padding=1, groups=128, bias=False)", (128, 56, 56), 8),
    ("transposed 3x3 stride 2, 128 to 64 ch", "ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1)",
     (128, 28, 28), 8),
]


def torch_side():
    import torch
    return torch


def run_rss(cmd, env=None):
    """Runs cmd and returns (stdout, its peak resident memory in MB). The peak
    is the process's own high-water mark (VmHWM in /proc, sampled every 10 ms
    until it exits): wait4's ru_maxrss would also count the memory of this
    Python process, which the child is forked from before it execs."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.append(p.stdout.read()))
    reader.start()
    peak_kb = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.01)
    reader.join()
    if p.returncode != 0:
        raise RuntimeError("%s failed with status %d" % (" ".join(cmd[:3]), p.returncode))
    return b"".join(chunks).decode(), peak_kb / 1024.0


def median_time(fn, reps):
    for _ in range(2):
        fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def settle():
    """PyTorch's worker threads keep spinning for a moment after its last
    operation; a cnn run started then shares a core with them (measured:
    0.36 ms instead of 0.23 ms for LeNet's conv2). Wait them out."""
    time.sleep(1.0)


TWO_CORES = 1.8  # an FMA check at least this: the machine had two cores


def fma_scaling():
    """How much a second thread adds to a loop of independent FMAs right now
    (cnn_workload fma): about 2x on two free cores, about 1x when the
    machine's two virtual cores share one physical core, as they do at
    times on this host. Printed beside the runs it may explain."""
    out = subprocess.run([WORKLOAD, "fma", "3"], capture_output=True, text=True, check=True,
                         env=WORKLOAD_ENV).stdout
    r = json.loads(out)
    return r["one_thread"] / r["two_threads"]


def cnn_layer(module, shape, batch, threads, train):
    settle()
    cmd = [WORKLOAD, "layer", module, ",".join(map(str, shape)), str(batch), str(threads), str(REPS)]
    if train:
        cmd.append("train")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=WORKLOAD_ENV).stdout
    return json.loads(out)


def torch_layer(module, shape, batch, threads, train):
    torch = torch_side()
    torch.set_num_threads(threads)
    m = eval("torch.nn." + module)
    x = torch.randn(batch, *shape, requires_grad=train)
    if not train:
        with torch.no_grad():
            return median_time(lambda: m(x), REPS)
    y0 = m(x)
    gy = torch.full_like(y0, 1e-3)

    def step():
        m.zero_grad(set_to_none=False)
        x.grad = None
        m(x).backward(gy)
    return median_time(step, REPS)


def fashion_arrays(n):
    """The first n Fashion-MNIST training images (uint8) and labels."""
    d = "/usr/share/datasets/fashion-mnist"
    if not os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
        d = os.path.join(ROOT, "data", "fashion-mnist-subset")
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x[:n], y[:n], d


TORCH_TRAIN = r'''
import gzip, json, os, sys, time
import numpy as np, torch
sys.path.insert(0, %(graph)r)
import graphmodel
torch.set_num_threads(%(threads)d)
torch.manual_seed(0)
d = %(data)r
with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:%(n)d]
with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)[:%(n)d]
# As torchvision's ToTensor: the data set held as float32 in [0, 1].
ds = torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.float32) / 255, torch.tensor(y))
dl = torch.utils.data.DataLoader(ds, batch_size=%(batch)d, shuffle=True)
model, _, _ = graphmodel.build(open(%(model)r).read())
opt = %(opt)s
crit = torch.nn.CrossEntropyLoss()
model.train()
t = time.perf_counter()
seen = 0
for xb, yb in dl:
    opt.zero_grad()
    loss = crit(model(xb), yb)
    loss.backward()
    opt.step()
    seen += xb.shape[0]
el = time.perf_counter() - t
print(json.dumps({"images_per_sec": seen / el}))
'''


def train_pair(name, model, opt_cnn, opt_torch, batch, threads, n):
    x, y, src = fashion_arrays(n)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        # cnn reads the IDX folder directly; a smaller run uses a safetensors slice.
        data = src
        if n < 60000 or "subset" in src:
            import importlib
            sys.path.insert(0, os.path.join(ROOT, "tests", "torch"))
            sft = importlib.import_module("sft")
            data = os.path.join(tmp, "d.st")
            sft.save(data, {"x": x, "y": y})
        mt = os.path.join(tmp, "m.jsonl")
        cmd = [CNN, "train", os.path.join(ROOT, model), "--data", data, "--epochs", "1", "--batch-size",
               str(batch), "--optimizer", opt_cnn, "--threads", str(threads), "--metrics", mt, "--quiet"]
        if ISA:
            cmd += ["--isa", ISA]
        script = TORCH_TRAIN % {"graph": os.path.join(ROOT, "tests", "torch"), "threads": threads,
                                "data": src, "n": n, "batch": batch, "model": os.path.join(ROOT, model),
                                "opt": opt_torch}
        ips_c, rss_c, ips_t, rss_t, fma, mid, after, single = [], [], [], [], [], [], [], []
        ips_d = []  # PyTorch as installed
        for _ in range(TRAIN_ROUNDS):  # the sides alternate (see ROUNDS)
            settle()
            fma.append(fma_scaling())
            _, rss = run_rss(cmd)
            rss_c.append(rss)
            m = json.loads(open(mt).read().splitlines()[-1])
            ips_c.append(m["images_per_sec"])
            # steps that cnn's adaptive thread use ran on one thread
            single.append(m.get("one_thread_steps", 0))
            mid.append(fma_scaling())
            out, rss = run_rss([sys.executable, "-c", script])
            ips_t.append(json.loads(out.strip().splitlines()[-1])["images_per_sec"])
            rss_t.append(rss)
            after.append(fma_scaling())
            out, _ = run_rss([sys.executable, "-c", script], env=TORCH_DEFAULT_ENV)
            ips_d.append(json.loads(out.strip().splitlines()[-1])["images_per_sec"])
        res = {"name": name, "cnn_images_per_sec": statistics.median(ips_c),
               "torch_images_per_sec": statistics.median(ips_t), "cnn_max_rss_mb": max(rss_c),
               "torch_max_rss_mb": max(rss_t), "samples": n, "cnn_images_per_sec_runs": ips_c,
               "torch_images_per_sec_runs": ips_t, "cnn_one_thread_steps_runs": single,
               "torch_default_images_per_sec_runs": ips_d,
               "torch_default_images_per_sec": statistics.median(ips_d),
               "cnn_steps_per_run": -(-n // batch), "fma_two_thread_scaling_before_runs": fma,
               "fma_two_thread_scaling_between_runs": mid, "fma_two_thread_scaling_after_runs": after}
        # each side's runs whose FMA checks, before and after, both read two
        # cores (a long run can still hold a one-core phase they miss)
        free_c = [v for v, b, a in zip(ips_c, fma, mid) if min(b, a) >= TWO_CORES]
        free_t = [v for v, b, a in zip(ips_t, mid, after) if min(b, a) >= TWO_CORES]
        res["cnn_two_core_runs"], res["torch_two_core_runs"] = len(free_c), len(free_t)
        res["cnn_images_per_sec_two_core"] = statistics.median(free_c) if free_c else None
        res["torch_images_per_sec_two_core"] = statistics.median(free_t) if free_t else None
    res["ratio"] = res["cnn_images_per_sec"] / res["torch_images_per_sec"]
    res["ratio_torch_default"] = res["cnn_images_per_sec"] / res["torch_default_images_per_sec"]
    res["ratio_two_core"] = (res["cnn_images_per_sec_two_core"] / res["torch_images_per_sec_two_core"]
                             if res["cnn_two_core_runs"] and res["torch_two_core_runs"] else None)
    return res


def main():
    results = {"machine": {"cpu": platform.processor() or open("/proc/cpuinfo").read().split("model name")[1].split(":")[1].split("\n")[0].strip(),
                           "cores": os.cpu_count(), "peak_gflops_per_core": PEAK_CORE},
               "convolutions": [], "training": [], "gemm": {}, "scaling": []}
    torch = torch_side()
    results["machine"]["torch"] = torch.__version__
    results["machine"]["torch_openblas_threads"] = os.environ["OPENBLAS_NUM_THREADS"]

    def want(name):
        return not ONLY or ONLY.lower() in name.lower()

    results["machine"]["isa"] = ISA or "auto"
    print("cnn vs PyTorch %s on %s, %d cores (FMA peak %.0f GFLOP/s per core)%s; median of %d rounds of %d, "
          "the sides alternating; PyTorch with OPENBLAS_NUM_THREADS=%s\n" % (
              torch.__version__, results["machine"]["cpu"], os.cpu_count(), PEAK_CORE,
              ", both sides limited to AVX2" if ISA == "avx2" else "", ROUNDS, REPS,
              os.environ["OPENBLAS_NUM_THREADS"]))
    print("%-40s %-9s %10s %10s %7s %9s %6s" % ("convolution (2 threads)", "pass", "cnn ms", "torch ms", "ratio",
                                                "GFLOP/s", "peak"))
    for name, module, shape, batch in CONVS:
        if not want(name):
            continue
        for train in (False, True):
            cs, ts = [], []
            for _ in range(ROUNDS):
                cs.append(cnn_layer(module, shape, batch, 2, train))
                ts.append(torch_layer(module, shape, batch, 2, train))
            c = dict(cs[0], seconds=statistics.median(x["seconds"] for x in cs))
            t = statistics.median(ts)
            flops = 2.0 * c["macs"] * (3 if train else 1)
            gf = flops / c["seconds"] / 1e9
            r = {"name": name, "pass": "fwd+bwd" if train else "forward", "cnn_ms": c["seconds"] * 1e3,
                 "torch_ms": t * 1e3, "ratio": t / c["seconds"], "gflops": gf, "peak_fraction": gf / (2 * PEAK_CORE)}
            results["convolutions"].append(r)
            print("%-40.40s %-9s %10.3f %10.3f %6.2fx %9.1f %5.0f%%" % (name, r["pass"], r["cnn_ms"], r["torch_ms"],
                                                                       r["ratio"], gf, 100 * r["peak_fraction"]))
            sys.stdout.flush()
    ratios = [r["ratio"] for r in results["convolutions"]]
    if ratios:
        results["conv_geomean_ratio"] = float(np.exp(np.mean(np.log(ratios))))
        print("%-40s %-9s %10s %10s %6.2fx" % ("geometric mean", "", "", "", results["conv_geomean_ratio"]))

    if want("scaling"):
        print("\n%-40s %-9s %10s %10s %7s" % ("thread scaling (fwd+bwd)", "", "1 thread", "2 threads", "speedup"))
        for name, module, shape, batch in CONVS[:3]:
            ones, twos, steps, step_fma = [], [], [], []
            for _ in range(ROUNDS):
                # one process times both, its steps alternating between a
                # 1-thread and a 2-thread graph, so that a slow phase of the
                # machine falls on both alike; it runs an FMA check before
                # each pair of steps and after the last
                r = cnn_layer(module, shape, batch, "1,2", True)
                one, two = r["seconds_by_threads"]
                ones.append(one)
                twos.append(two)
                fma = r["fma_scaling_by_step"]
                for i, sp in enumerate(r["speedup_by_step"]):
                    steps.append(sp)
                    step_fma.append(min(fma[i], fma[i + 1]))
            one, two = statistics.median(ones), statistics.median(twos)
            # the step pairs the machine had two cores for, by the FMA
            # checks on either side of them (a phase on one core gives
            # about 1x whatever the code does)
            free = [sp for sp, f in zip(steps, step_fma) if f >= TWO_CORES]
            entry = {"name": name, "one_ms": one * 1e3, "two_ms": two * 1e3, "speedup": one / two,
                     "speedup_by_round": [o / t for o, t in zip(ones, twos)],
                     "speedup_by_step": steps, "fma_two_thread_scaling_around_steps": step_fma,
                     "speedup_two_core_steps": statistics.median(free) if free else None,
                     "two_core_steps": len(free)}
            results["scaling"].append(entry)
            print("%-40.40s %-9s %10.3f %10.3f %6.2fx   (all %d step pairs)" % (
                name, "", one * 1e3, two * 1e3, one / two, len(steps)))
            print("%-40s %-9s %10s %10s %s" % (
                "", "", "", "", "pairs with two free cores (FMA check >= %.1fx on both sides): %d, median speedup %s" % (
                    TWO_CORES, len(free), "%.2fx" % entry["speedup_two_core_steps"] if free else "-")))

    if want("gemm"):
        n = 1024
        cs, os_ = [], []
        for _ in range(ROUNDS):  # the sides alternate (see ROUNDS)
            c = json.loads(subprocess.run([WORKLOAD, "gemm", str(n), "1", str(REPS)], capture_output=True,
                                          text=True, check=True, env=WORKLOAD_ENV).stdout)
            cs.append(c["seconds"])
            ob = subprocess.run([WORKLOAD, "gemm", str(n), "1", str(REPS), "openblas"], capture_output=True,
                                text=True, env=WORKLOAD_ENV)
            if ob.returncode == 0:
                os_.append(json.loads(ob.stdout)["seconds"])
        gf = 2.0 * c["macs"] / statistics.median(cs) / 1e9
        g = {"n": n, "cnn_gflops": gf, "peak_fraction": gf / PEAK_CORE}
        if os_:
            g["openblas_gflops"] = 2.0 * c["macs"] / statistics.median(os_) / 1e9
        results["gemm"] = g
        print("\nmatrix multiply %dx%dx%d, 1 thread: cnn %.1f GFLOP/s (%.0f%% of one core's peak)%s" % (
            n, n, n, gf, 100 * g["peak_fraction"],
            ", OpenBLAS %.1f GFLOP/s, ratio %.2fx" % (g["openblas_gflops"], gf / g["openblas_gflops"])
            if "openblas_gflops" in g else ""))

    n_train = 12800 if QUICK else 60000
    trains = [("LeNet-5, batch 64, SGD momentum, 2 threads", "models/lenet5.txt", "SGD(lr=0.1, momentum=0.9)",
               "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)", 64, 2, n_train),
              ("main job CNN, batch 128, Adam, 2 threads", "models/fashion_cnn.txt", "Adam(lr=0.001)",
               "torch.optim.Adam(model.parameters(), lr=0.001)", 128, 2, 12800 if QUICK else 25600)]
    for tr in trains:
        if not want(tr[0]):
            continue
        r = train_pair(*tr)
        results["training"].append(r)
        print("\n%s, %d images: cnn %.0f images/s, PyTorch %.0f images/s, ratio %.2fx; peak memory cnn %.0f MB, "
              "PyTorch %.0f MB (%.1fx less)" % (r["name"], r["samples"], r["cnn_images_per_sec"],
                                                r["torch_images_per_sec"], r["ratio"], r["cnn_max_rss_mb"],
                                                r["torch_max_rss_mb"], r["torch_max_rss_mb"] / r["cnn_max_rss_mb"]))
        print("  cnn runs %s images/s; FMA check before each: 2 threads %s one" % (
            ", ".join("%.0f" % v for v in r["cnn_images_per_sec_runs"]),
            ", ".join("%.2fx" % v for v in r["fma_two_thread_scaling_before_runs"])))
        print("  cnn steps on one thread (adaptive thread use), of %d: %s" % (
            r["cnn_steps_per_run"], ", ".join("%d" % v for v in r["cnn_one_thread_steps_runs"])))
        print("  PyTorch runs %s images/s; FMA check after each: %s" % (
            ", ".join("%.0f" % v for v in r["torch_images_per_sec_runs"]),
            ", ".join("%.2fx" % v for v in r["fma_two_thread_scaling_after_runs"])))
        print("  runs with two free cores (FMA check >= %.1fx before and after): cnn %d of %d%s, PyTorch %d of %d%s%s" % (
            TWO_CORES, r["cnn_two_core_runs"], len(r["cnn_images_per_sec_runs"]),
            ", median %.0f" % r["cnn_images_per_sec_two_core"] if r["cnn_two_core_runs"] else "",
            r["torch_two_core_runs"], len(r["torch_images_per_sec_runs"]),
            ", median %.0f" % r["torch_images_per_sec_two_core"] if r["torch_two_core_runs"] else "",
            ", ratio %.2fx" % r["ratio_two_core"] if r["ratio_two_core"] else ""))
        print("  PyTorch as installed (OpenBLAS starting its own threads): runs %s images/s, median %.0f, "
              "ratio %.2fx" % (", ".join("%.0f" % v for v in r["torch_default_images_per_sec_runs"]),
                               r["torch_default_images_per_sec"], r["ratio_torch_default"]))
        sys.stdout.flush()
    out = os.path.join(HERE, "results-avx2.json" if ISA == "avx2" else "results.json")
    with open(out + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(out + ".tmp", out)
    print("\nwritten to %s" % out)


if __name__ == "__main__":
    main()
