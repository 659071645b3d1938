#!/usr/bin/env python3
"""Scaling model of model-parallel inference (docs/scaling.md).

Inputs, both produced by ppnn itself:
  partition.json  ppnn bench partition --arch A --params P --ranks 1,2,4,...,64
                  per stage and rank: bytes sent / received (exactly what the MPI executor
                  moves: tests/mpi/test_mpi_dist.c checks it), multiply-adds of A and B,
                  activations, finished outputs
  steps.json      ppnn bench infer --arch A --params P --threads 1 --json
                  measured single-process seconds of every plan step ("steps")

Model, per stage g and R ranks (no overlap of communication and compute, as implemented):
  compute_r = sum over the stage's steps k of  T_k * share_r(k)
              share = a_terms_r / a_terms(R=1) for A, acts_r / acts(R=1) for the activation,
              b_terms_r / b_terms(R=1) for B (halo recomputation shows up as shares summing
              to more than 1)
  comm      = max over ranks of max(sent_r, recv_r) / bandwidth  (full-duplex links, one rank
              per node; every stage ends with an exchange, so stages add up)
  time(R)   = sum over stages of (max_r compute_r + comm)
Prints a markdown table of time, speedup and the communication share for each R and link.

With --calibrate CAL_PARTITION CAL_STEPS (a model that was measured, e.g. cryptonets at n13),
the step times of the target are not measured but derived from unit costs fitted on the
calibration run: a multiply-add per coefficient and prime (A steps: 2 components; B: 3 after
an activation), a square per coefficient and prime, and a relinearize + rescale per finished
output costing (l+1)^2 N (key switching); the two B steps of the calibration model fix the
last two. Used for the deep net at n14, which needs more memory than this machine allows a
single helper process.
"""
import json
import sys


def load(path):
    with open(path) as f:
        d = json.load(f)
    if "steps" in d and "layers" not in d and isinstance(d["steps"], list) and \
            d["steps"] and "seconds" in d["steps"][0]:
        d["layers"] = d["steps"]  # ppnn bench infer --json names them "steps"
    # A single-thread run on a loaded machine: its wall-clock step times include the time
    # the thread waited for a core. Rescale them to the run's CPU seconds (reading the batch
    # file is in that CPU time too, so this slightly overstates compute: conservative).
    if d.get("threads") == 1 and d.get("server_cpu_seconds") and "layers" in d:
        wall = sum(s["seconds"] for s in d["layers"])
        if wall > d["server_cpu_seconds"]:
            f = d["server_cpu_seconds"] / wall
            for s in d["layers"]:
                s["seconds"] *= f
            d["cpu_normalized"] = f
    return d


def stage_steps(name):
    return name.split("+")


def model(partition, steps, gbps):
    step_t = {s["step"]: s["seconds"] for s in steps["layers"]}
    names = [s["name"] for s in steps["layers"]]
    # map stages to plan step indices in order
    runs = {r["ranks"]: r for r in partition["partitions"]}
    base = runs[1]
    out = []
    for R in sorted(runs):
        run = runs[R]
        k = 0
        total = comm_total = 0.0
        for g, st in enumerate(run["stages"]):
            parts = stage_steps(st["steps"])
            idx = list(range(k, k + len(parts)))
            assert [names[i] for i in idx] == parts, (parts, names)
            k += len(parts)
            b1 = base["stages"][g]["per_rank"][0]
            has_a = len(parts) == 3
            has_act = len(parts) >= 2
            worst = 0.0
            for pr in st["per_rank"]:
                c = 0.0
                if has_a:
                    c += step_t[idx[0]] * pr["a_terms"] / max(b1["a_terms"], 1)
                if has_act:
                    c += step_t[idx[-2]] * pr["acts"] / max(b1["acts"], 1)
                c += step_t[idx[-1]] * pr["b_terms"] / max(b1["b_terms"], 1)
                worst = max(worst, c)
            comm = max(max(pr["bytes_sent"], pr["bytes_recv"]) for pr in st["per_rank"])
            comm_s = comm * 8 / (gbps * 1e9)
            total += worst + comm_s
            comm_total += comm_s
        out.append((R, total, comm_total))
    return out


def stage_costs(partition):
    """Per plan step (in order): (kind, units) from the R = 1 partition."""
    n = partition["n"]
    base = [r for r in partition["partitions"] if r["ranks"] == 1][0]
    out = []
    for st in base["stages"]:
        parts, lv, pr = stage_steps(st["steps"]), st["levels_in"], st["per_rank"][0]
        has_a, has_act = len(parts) == 3, len(parts) >= 2
        i = 0
        if has_a:
            out.append(("mac", pr["a_terms"] * (lv[i] + 1) * 2 * n, 0.0))
            i += 1
        if has_act:
            out.append(("sq", pr["acts"] * (lv[i] + 1) * n, 0.0))
            i += 1
        size = 3 if has_act else 2
        out.append(("b", pr["b_terms"] * (lv[i] + 1) * size * n,
                    pr["finishes"] * (lv[i] + 1) ** 2 * n))
    return out


def calibrate(cal_partition, cal_steps, target):
    cal = stage_costs(cal_partition)
    t = [s["seconds"] for s in cal_steps["layers"]]
    c_mac = sum(ti for (k, _, _), ti in zip(cal, t) if k == "mac") / \
        sum(u for k, u, _ in cal if k == "mac")
    c_sq = sum(ti for (k, _, _), ti in zip(cal, t) if k == "sq") / \
        sum(u for k, u, _ in cal if k == "sq")
    bs = [(u, f, ti) for (k, u, f), ti in zip(cal, t) if k == "b"]
    (u1, f1, t1), (u2, f2, t2) = bs[0], bs[1]  # t = c_b * u + c_fin * f
    det = u1 * f2 - u2 * f1
    c_b, c_fin = (t1 * f2 - t2 * f1) / det, (u1 * t2 - u2 * t1) / det
    c_b, c_fin = max(c_b, 0.0), max(c_fin, 0.0)
    layers = []
    for k, (kind, u, f) in enumerate(stage_costs(target)):
        sec = c_mac * u if kind == "mac" else c_sq * u if kind == "sq" else c_b * u + c_fin * f
        layers.append({"step": k, "seconds": sec, "name": None})
    names = []
    for st in [r for r in target["partitions"] if r["ranks"] == 1][0]["stages"]:
        names += stage_steps(st["steps"])
    for l, nm in zip(layers, names):
        l["name"] = nm
    return {"layers": layers}


def main():
    args = sys.argv[1:]
    cal = None
    if len(args) == 4 and args[0] == "--calibrate":
        cal = (load(args[1]), load(args[2]))
        args = args[3:]
    if len(args) not in (1, 2) or (cal is None and len(args) != 2):
        sys.exit("usage: scaling_model.py partition.json steps.json\n"
                 "       scaling_model.py --calibrate cal_partition.json cal_steps.json "
                 "partition.json")
    partition = load(args[0])
    steps = calibrate(cal[0], cal[1], partition) if cal else load(args[1])
    t1 = sum(s["seconds"] for s in steps["layers"])
    src = cal[1] if cal else steps
    how = "derived from the calibration run" if cal else "measured, sum of steps"
    if src.get("cpu_normalized"):
        how += f"; wall-clock step times scaled by {src['cpu_normalized']:.2f} to the CPU seconds"
    print(f"{partition['arch']} on {partition['preset']}, single process 1 thread: "
          f"{t1:.3f} s per batch ({how})\n")
    print("| R | 10 Gb/s: time (s) | speedup | comm share | 100 Gb/s: time (s) | speedup "
          "| comm share |")
    print("|---|---|---|---|---|---|---|")
    m10, m100 = model(partition, steps, 10), model(partition, steps, 100)
    for (R, t10, c10), (_, t100, c100) in zip(m10, m100):
        print(f"| {R} | {t10:.3f} | {t1 / t10:.2f} | {100 * c10 / t10:.0f} % | {t100:.3f} | "
              f"{t1 / t100:.2f} | {100 * c100 / t100:.0f} % |")


if __name__ == "__main__":
    main()
