#!/usr/bin/env python3
"""Runs chaperone-masking-bench, then detect-secrets on the corpus files it wrote, in one run on
one machine, and writes the combined result (bench/results/masking.json) plus markdown tables.

Called by bench/masking/run.sh with the Python of a virtualenv that has detect-secrets.
detect-secrets is timed through its Python API in this one process (SecretsCollection.scan_file
under default_settings(): every default plugin and filter, what `detect-secrets scan` uses),
after a warm-up scan, so interpreter start-up and imports are not counted against it. One
`detect-secrets scan FILE` per size is also timed end to end, for reference.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

TARGETS = {"mb_per_s": 300.0, "ratio": 100.0, "stream_p99_us": 50.0, "recall": 0.99, "precision": 0.99}


def log(msg):
    print("[bench-masking] " + msg, file=sys.stderr, flush=True)


def busy_ticks():
    """All CPUs' non-idle time (user nice system irq softirq steal), in clock ticks."""
    with open("/proc/stat") as fh:
        f = fh.readline().split()
    return int(f[1]) + int(f[2]) + int(f[3]) + int(f[6]) + int(f[7]) + int(f[8])


TICK = os.sysconf("SC_CLK_TCK")


def wait_for_quiet(limit):
    """Up to `limit` seconds for the machine to be idle (< 0.2 busy cores over 1 s)."""
    deadline = time.monotonic() + limit
    while True:
        b0 = busy_ticks()
        time.sleep(1)
        used = (busy_ticks() - b0) / TICK
        if used < 0.2:
            return used
        if time.monotonic() >= deadline:
            log("machine still busy (%.2f cores used by others); measuring anyway" % used)
            return used


class Others:
    """CPU that processes other than the measured work used during a phase, in cores."""

    def __init__(self, who):
        self.who = who

    def __enter__(self):
        self.b0, self.t0, self.c0 = busy_ticks(), time.monotonic(), self.cpu()
        return self

    def cpu(self):
        r = resource.getrusage(self.who)
        return r.ru_utime + r.ru_stime

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        busy = (busy_ticks() - self.b0) / TICK
        ours = self.cpu() - self.c0
        self.cores = max(0.0, (busy - ours) / wall) if wall > 0 else 0.0
        self.wall = wall


def detect_secrets_times(files, runs):
    from detect_secrets import SecretsCollection
    from detect_secrets.__version__ import VERSION
    from detect_secrets.settings import default_settings, get_settings

    results = []
    with default_settings():
        plugins = sorted(get_settings().plugins)
        SecretsCollection().scan_file(files[0]["path"])  # warm-up: regexes compiled, modules loaded
        for f in files:
            times, findings = [], 0
            for _ in range(runs):
                collection = SecretsCollection()
                t0 = time.perf_counter()
                collection.scan_file(f["path"])
                times.append(time.perf_counter() - t0)
                findings = sum(len(v) for v in collection.data.values())
            med = statistics.median(times)
            results.append({
                "size": f["size"], "bytes": f["bytes"], "runs": runs, "seconds": [round(t, 4) for t in times],
                "median_s": round(med, 4), "mb_per_s": round(f["bytes"] / med / 1e6, 3), "findings": findings,
            })
    return VERSION, plugins, results


def cli_times(files):
    exe = os.path.join(os.path.dirname(sys.executable), "detect-secrets")
    out = []
    for f in files:
        t0 = time.perf_counter()
        subprocess.run([exe, "scan", os.path.basename(f["path"])], cwd=os.path.dirname(f["path"]),
                       check=True, stdout=subprocess.DEVNULL)
        out.append({"size": f["size"], "wall_s": round(time.perf_counter() - t0, 3)})
    return out


def fmt(x, places=1):
    return "{:,.{p}f}".format(x, p=places)


def tables(r):
    lines = []
    q = r["quality"]
    lines += ["### Throughput (whole-text masking, one thread)", "",
              "| input | chaperone MB/s (median of %d) | min–max | detect-secrets MB/s (median of %d) | ratio |"
              % (r["ours_runs"], r["ds_runs"]), "|---|---:|---:|---:|---:|"]
    for c in r["comparison"]:
        lines.append("| %s (%s B) | %s | %s–%s | %s | %s× |" % (
            c["size"], fmt(c["bytes"], 0), fmt(c["ours_mb_per_s"]), fmt(c["ours_min"]), fmt(c["ours_max"]),
            fmt(c["theirs_mb_per_s"], 3), fmt(c["ratio"], 0)))
    lines += ["", "### Streaming redactor: time per `feed()` (µs)", "",
              "| chunks | feeds | p50 | p90 | p99 | p99.9 | max | largest hold-back | equals whole-text |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for s in r["streaming"]["results"]:
        lines.append("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.1f | %s B | %s |" % (
            s["chunking"], fmt(s["feeds"], 0), s["p50_us"], s["p90_us"], s["p99_us"], s["p999_us"], s["max_us"],
            fmt(s["largest_hold_bytes"], 0), "yes" if s["output_equals_whole_text_masking"] else "NO"))
    lines += ["", "### Quality (labelled corpus)", "",
              "recall %.2f%% (%d/%d secrets), precision %.2f%% (%d true, %d false findings); %d positive and %d negative records"
              % (q["recall"] * 100, q["found"], q["secrets"], q["precision"] * 100, q["true_findings"], q["false_findings"],
                 q["records"]["positive"], q["records"]["negative"]), "",
              "| detector | secrets | found | recall | true findings | false findings | precision |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for det in sorted(q["per_detector"]):
        d = q["per_detector"][det]
        lines.append("| `%s` | %d | %d | %s | %d | %d | %s |" % (
            det, d["secrets"], d["found"], "–" if d["recall"] is None else "%.1f%%" % (d["recall"] * 100),
            d["true_findings"], d["false_findings"], "–" if d["precision"] is None else "%.1f%%" % (d["precision"] * 100)))
    if q["misses"]:
        lines += ["", "Missed:"] + ["- `%s` %s (%s): %s" % (m["detector"], m["record"], m["category"], m["reason"]) for m in q["misses"]]
    if q["false_positives"]:
        lines += ["", "False positives:"] + ["- `%s` %s (%s): `%s`" % (f["detector"], f["record"], f["category"], f["excerpt"]) for f in q["false_positives"]]
    lines += ["", "### Targets", "", "| target | result | met |", "|---|---|---|"]
    for t in r["targets"]:
        lines.append("| %s | %s | %s |" % (t["target"], t["result"], "yes" if t["met"] else "**no**"))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--run-seconds", type=float, default=0.3)
    ap.add_argument("--ds-runs", type=int, default=3)
    ap.add_argument("--quiet-wait", type=int, default=60)
    ap.add_argument("--meta", action="append", default=[])
    a = ap.parse_args()

    ours_json = a.out + ".chaperone.tmp"
    wait_for_quiet(a.quiet_wait)
    log("chaperone-masking-bench (throughput, streaming, quality)")
    with Others(resource.RUSAGE_CHILDREN) as ours_noise:
        subprocess.run([a.bin, "--corpus", a.corpus, "--runs", str(a.runs), "--min-run-seconds", str(a.run_seconds),
                        "--out", ours_json], check=True)
    with open(ours_json) as fh:
        ours = json.load(fh)
    os.remove(ours_json)
    files = ours["corpus"]["files"]

    wait_for_quiet(a.quiet_wait)
    log("detect-secrets on the same files (%d runs each)" % a.ds_runs)
    with Others(resource.RUSAGE_SELF) as ds_noise:
        version, plugins, theirs = detect_secrets_times(files, a.ds_runs)
    cli = cli_times(files)

    comparison = []
    for o, t in zip(ours["throughput"]["results"], theirs):
        assert o["size"] == t["size"] and o["bytes"] == t["bytes"]
        comparison.append({
            "size": o["size"], "bytes": o["bytes"], "ours_mb_per_s": o["mb_per_s"], "ours_min": o["mb_per_s_min"],
            "ours_max": o["mb_per_s_max"], "theirs_mb_per_s": t["mb_per_s"], "ratio": round(o["mb_per_s"] / t["mb_per_s"], 1),
        })
    q = ours["quality"]
    worst_p99 = max(s["p99_us"] for s in ours["streaming"]["results"])
    targets = [
        {"target": "throughput ≥ %d MB/s at every size" % TARGETS["mb_per_s"],
         "result": ", ".join("%s %s" % (c["size"], fmt(c["ours_mb_per_s"])) for c in comparison),
         "met": all(c["ours_mb_per_s"] >= TARGETS["mb_per_s"] for c in comparison)},
        {"target": "≥ %d× detect-secrets at every size" % TARGETS["ratio"],
         "result": ", ".join("%s %s×" % (c["size"], fmt(c["ratio"], 0)) for c in comparison),
         "met": all(c["ratio"] >= TARGETS["ratio"] for c in comparison)},
        {"target": "streaming p99 ≤ %d µs per feed" % TARGETS["stream_p99_us"], "result": "worst p99 %.2f µs" % worst_p99,
         "met": worst_p99 <= TARGETS["stream_p99_us"] and all(s["output_equals_whole_text_masking"] for s in ours["streaming"]["results"])},
        {"target": "recall ≥ 99%", "result": "%.2f%%" % (q["recall"] * 100), "met": q["recall"] >= TARGETS["recall"]},
        {"target": "precision ≥ 99%", "result": "%.2f%%" % (q["precision"] * 100), "met": q["precision"] >= TARGETS["precision"]},
    ]
    meta = dict(m.split("=", 1) for m in a.meta)
    with open("/proc/cpuinfo") as fh:
        cpu = next((l.split(":", 1)[1].strip() for l in fh if l.startswith("model name")), "unknown")
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "python": platform.python_version(), **meta},
        "ours_runs": a.runs, "ds_runs": a.ds_runs,
        "comparison": comparison,
        "streaming": ours["streaming"],
        "quality": q,
        "targets": targets,
        "chaperone": ours,
        "detect_secrets": {
            "version": version, "plugins": plugins,
            "how": "SecretsCollection.scan_file(path) under detect_secrets.settings.default_settings(), in one Python process, after a warm-up scan",
            "results": theirs, "cli_end_to_end": cli,
        },
        "noise": {
            "other_processes_cores_during_chaperone": round(ours_noise.cores, 2),
            "other_processes_cores_during_detect_secrets": round(ds_noise.cores, 2),
        },
    }
    with open(a.out, "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(tables(result))
    print("\nOther processes used %.2f cores during the chaperone runs and %.2f during detect-secrets'. Written to %s."
          % (ours_noise.cores, ds_noise.cores, os.path.relpath(a.out)))


if __name__ == "__main__":
    main()
