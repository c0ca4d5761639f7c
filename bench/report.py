#!/usr/bin/env python3
"""Helper of bench/run.sh: turns wrk outputs into JSON records, then the records into
bench/results/latest.json and a markdown report on stdout.

  report.py record  --scenario S --target T ... --wrk-output FILE   -> one JSON line on stdout
  report.py oneline < record-line                                   -> a short log line
  report.py finish  --records FILE --idle FILE --out FILE --meta k=v ...
  report.py render  [FILE]                                          -> markdown from a result file

Exit status of `finish`: 1 when a run had errors (connect/read/write/timeout errors or
non-2xx answers): such a benchmark is not valid.
"""

import argparse
import json
import re
import sys

MiB = 1024  # kB per MiB (VmRSS is in kB = KiB)
IDLE_RSS_TARGET_KB = 24 * MiB
OTHER_LOAD_WARNING = 0.3  # cores used by processes outside the benchmark during a run


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    match = re.search(r"^BENCH_JSON (\{.*\})\s*$", text, re.M)
    if not match:
        raise SystemExit(f"no BENCH_JSON line in {path}:\n{text}")
    result = json.loads(match.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
    result["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    return result


def cmd_record(args):
    wrk = parse_wrk(args.wrk_output)
    warmup = parse_wrk(args.warmup_output) if args.warmup_output else None
    samples = []
    if args.rss_samples:
        for line in open(args.rss_samples):
            line = line.strip()
            if line.isdigit() and int(line) > 0:
                samples.append(int(line))
    record = {
        "scenario": args.scenario,
        "target": args.target,
        "connections": args.connections,
        "wrk_threads": args.wrk_threads,
        "stream": bool(args.stream),
        "wrk": wrk,
    }
    if args.wall_s:
        # CPU the rest of the machine used during the measured run: all busy time minus the
        # mock, the proxies and wrk. Other work on the 2 cores skews a run; it is reported.
        other = args.system_busy_ticks / args.clk_tck - args.bench_ticks / args.clk_tck - args.wrk_cpu_s
        record["machine"] = {
            "wall_s": round(args.wall_s, 2),
            "wrk_cpu_s": round(args.wrk_cpu_s, 2),
            "system_busy_cores": round(args.system_busy_ticks / args.clk_tck / args.wall_s, 2),
            "other_cpu_cores": round(max(0.0, other) / args.wall_s, 2),
        }
    if warmup:
        record["warmup"] = {"requests": warmup["requests"], "errors": errors_of(warmup)}
    if samples:
        cpu_s = args.cpu_ticks / args.clk_tck
        record["process"] = {
            "rss_max_kb": max(samples),
            "rss_median_kb": sorted(samples)[len(samples) // 2],
            "rss_samples": len(samples),
            "vm_hwm_kb": args.hwm_kb,
            "threads": args.threads,
            "cpu_s": round(cpu_s, 3),
            "cpu_us_per_request": round(cpu_s * 1e6 / wrk["requests"], 1) if wrk["requests"] else None,
            "cpu_cores_busy": round(cpu_s / (wrk["duration_us"] / 1e6), 2),
        }
    print(json.dumps(record, sort_keys=True))


def errors_of(wrk):
    return sum(wrk["errors"].values()) + wrk.get("non_2xx_3xx", 0)


def cmd_oneline(_args):
    r = json.loads(sys.stdin.read())
    w = r["wrk"]
    lat = w["latency_us"]
    line = (f"{r['scenario']:<12} {r['target']:<10} p50 {lat['p50']:>6} us  p99 {lat['p99']:>6} us  "
            f"{w['rps']:>9.0f} req/s  errors {errors_of(w)}")
    p = r.get("process")
    if p:
        line += f"  rss max {p['rss_max_kb'] / MiB:.1f} MiB  cpu {p['cpu_us_per_request']} us/req"
    m = r.get("machine")
    if m:
        line += f"  other load {m['other_cpu_cores']} cores"
    print(line)


def cmd_quiet(_args):
    """Exit 0 when the record on stdin was measured on an otherwise quiet machine."""
    r = json.loads(sys.stdin.read())
    return 0 if r.get("machine", {}).get("other_cpu_cores", 0) <= OTHER_LOAD_WARNING else 1


def parse_metrics(path):
    """Counters of the proxy's Prometheus endpoint that carry an HTTP status label."""
    found = {}
    if not path:
        return found
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return found
    for line in text.splitlines():
        if not line.startswith("chaperone_proxy_requests_total"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            found[key] = float(value)
        except ValueError:
            pass
    return found


def audit_check(path, runs, extra_requests):
    """What chaperone-proxy audited, against what wrk and curl saw completed."""
    if not path:
        return None
    kinds, outcomes = {}, {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                event = json.loads(line)
                kinds[event["kind"]] = kinds.get(event["kind"], 0) + 1
                if event["kind"] == "llm.response":
                    key = f"{event.get('outcome')}/{event.get('http', {}).get('status')}"
                    outcomes[key] = outcomes.get(key, 0) + 1
    except OSError:
        return None
    completed = extra_requests + sum(r["wrk"]["requests"] + r.get("warmup", {}).get("requests", 0)
                                     for r in runs if r["target"] == "chaperone")
    return {
        "events_by_kind": kinds,
        "response_outcomes": outcomes,
        "requests_completed_by_clients": completed,
        "every_completed_request_audited": kinds.get("llm.request", 0) >= completed
        and kinds.get("llm.response", 0) >= completed,
    }


def summarize(runs):
    summary = {}
    for r in runs:
        lat = r["wrk"]["latency_us"]
        entry = {
            "connections": r["connections"],
            "stream": r["stream"],
            "p50_us": lat["p50"],
            "p99_us": lat["p99"],
            "rps": r["wrk"]["rps"],
            "requests": r["wrk"]["requests"],
            "errors": errors_of(r["wrk"]),
        }
        if "process" in r:
            entry.update({
                "rss_max_kb": r["process"]["rss_max_kb"],
                "vm_hwm_kb": r["process"]["vm_hwm_kb"],
                "cpu_us_per_request": r["process"]["cpu_us_per_request"],
                "cpu_cores_busy": r["process"]["cpu_cores_busy"],
            })
        summary.setdefault(r["scenario"], {})[r["target"]] = entry
    for targets in summary.values():
        direct = targets.get("direct")
        if not direct:
            continue
        for name, entry in targets.items():
            if name == "direct":
                continue
            entry["added_p50_us"] = entry["p50_us"] - direct["p50_us"]
            entry["added_p99_us"] = entry["p99_us"] - direct["p99_us"]
    return summary


def pct(a, b):
    return (a - b) / b * 100 if b else float("nan")


def evaluate_targets(summary, idle, loaded_scenario):
    results = []
    chap_envoy = [(s, t) for s, t in summary.items() if "chaperone" in t and "envoy" in t]
    for scenario, t in chap_envoy:
        if t["chaperone"]["stream"]:
            continue
        c, e = t["chaperone"]["added_p50_us"], t["envoy"]["added_p50_us"]
        met = c <= e
        detail = f"chaperone {c:+,} µs vs Envoy {e:+,} µs"
        if not met:
            detail += f": missed by {c - e:,} µs"
            if e > 0:
                detail += f" ({c / e:.1f}× Envoy's added p50)"
        results.append({"target": f"added p50 <= Envoy's ({scenario})", "met": met, "detail": detail})
    if loaded_scenario in summary and {"chaperone", "envoy"} <= summary[loaded_scenario].keys():
        c = summary[loaded_scenario]["chaperone"]["rps"]
        e = summary[loaded_scenario]["envoy"]["rps"]
        met = c >= e
        detail = f"chaperone {c:,.0f} req/s vs Envoy {e:,.0f} req/s ({pct(c, e):+.1f}%)"
        if not met:
            detail += f": missed by {e - c:,.0f} req/s"
        results.append({"target": f"throughput >= Envoy's ({loaded_scenario})", "met": met, "detail": detail})
    if "chaperone" in idle:
        rss = idle["chaperone"]["rss_kb"]
        met = rss <= IDLE_RSS_TARGET_KB
        detail = f"{rss / MiB:.1f} MiB ({rss:,} kB) vs 24 MiB"
        if not met:
            detail += f": missed by {(rss - IDLE_RSS_TARGET_KB) / MiB:.1f} MiB ({pct(rss, IDLE_RSS_TARGET_KB):+.0f}%)"
        results.append({"target": "idle RSS <= 24 MiB", "met": met, "detail": detail})
    return results


def cmd_finish(args):
    runs = [json.loads(line) for line in open(args.records) if line.strip()]
    idle = json.load(open(args.idle))
    meta = {}
    for item in args.meta:
        key, _, value = item.partition("=")
        meta[key] = value
    summary = summarize(runs)
    loaded = max((r["connections"] for r in runs), default=1)
    targets = evaluate_targets(summary, idle, f"c{loaded}")
    invalid = [f"{r['scenario']}/{r['target']}: {r['wrk']['errors']}, non-2xx {r['wrk']['non_2xx_3xx']}"
               for r in runs if errors_of(r["wrk"])]
    result = {
        "meta": meta,
        "idle": idle,
        "summary": summary,
        "targets": targets,
        "valid": not invalid,
        "invalid_runs": invalid,
        "proxy_status_counters": parse_metrics(args.proxy_metrics),
        "audit": audit_check(args.audit, runs, args.extra_requests),
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")
    print(render(result))
    if invalid:
        print("\nINVALID BENCHMARK: runs with errors:\n  " + "\n  ".join(invalid), file=sys.stderr)
        return 1
    return 0


def us(v):
    return "–" if v is None else f"{v:,}"


def added(v):
    return "–" if v is None else f"{v:+,}"


def kb_mib(v):
    return "–" if not v else f"{v / MiB:.1f}"


def render(result):
    s = result["summary"]
    meta = result["meta"]
    idle = result["idle"]
    out = []
    loaded = max((r["connections"] for r in result["runs"]), default=1)
    c1, cn = "c1", f"c{loaded}"
    names = {"direct": "direct (mock)", "chaperone": "chaperone-proxy", "envoy": "Envoy"}
    order = [t for t in ("direct", "chaperone", "envoy") if t in s.get(c1, {})]

    def latency_table(prefix, title):
        a, b = s.get(prefix + c1), s.get(prefix + cn)
        if not a or not b:
            return
        out.append(f"**{title}** (latency in µs; added = through the proxy minus direct, same load)\n")
        out.append(f"| target | p50 @1 | p99 @1 | p50 @{loaded} | p99 @{loaded} | added p50 @1 | added p99 @1 "
                   f"| added p50 @{loaded} | added p99 @{loaded} | req/s @{loaded} |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in order:
            x, y = a[t], b[t]
            out.append(f"| {names[t]} | {us(x['p50_us'])} | {us(x['p99_us'])} | {us(y['p50_us'])} | {us(y['p99_us'])} "
                       f"| {added(x.get('added_p50_us'))} | {added(x.get('added_p99_us'))} "
                       f"| {added(y.get('added_p50_us'))} | {added(y.get('added_p99_us'))} | {y['rps']:,.0f} |")
        out.append("")

    latency_table("", "Non-streamed chat completion")
    latency_table("stream-", "Streamed chat completion (SSE)")

    out.append(f"**Proxy process** (RSS in MiB; CPU per request from utime+stime over the measured @{loaded} run)\n")
    out.append(f"| proxy | RSS idle | RSS max @{loaded} | VmHWM | threads | CPU µs/req @{loaded} | cores busy @{loaded} "
               f"| CPU µs/req stream @{loaded} |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in ("chaperone", "envoy"):
        if t not in idle:
            continue
        loaded_runs = [e for e in (s.get(cn, {}).get(t), s.get("stream-" + cn, {}).get(t)) if e]
        rss_max = max((e["rss_max_kb"] for e in loaded_runs), default=None)
        hwm = max((e["vm_hwm_kb"] for e in loaded_runs), default=None)
        y = s.get(cn, {}).get(t, {})
        z = s.get("stream-" + cn, {}).get(t, {})
        out.append(f"| {names[t]} | {kb_mib(idle[t]['rss_kb'])} | {kb_mib(rss_max)} | {kb_mib(hwm)} "
                   f"| {idle[t]['threads']} | {y.get('cpu_us_per_request', '–')} | {y.get('cpu_cores_busy', '–')} "
                   f"| {z.get('cpu_us_per_request', '–')} |")
    out.append("")

    if result["targets"]:
        out.append("**Targets**\n")
        out.append("| target | result | detail |")
        out.append("|---|---|---|")
        for t in result["targets"]:
            out.append(f"| {t['target']} | {'met' if t['met'] else 'MISSED'} | {t['detail']} |")
        out.append("")

    errors = sum(e["errors"] for targets in s.values() for e in targets.values())
    out.append(f"Errors (wrk connect/read/write/timeout + non-2xx) over all measured runs: {errors}.")
    audit = result.get("audit")
    if audit:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(audit["response_outcomes"].items()))
        out.append(f"chaperone-proxy audit file: {audit['events_by_kind'].get('llm.request', 0)} llm.request and "
                   f"{audit['events_by_kind'].get('llm.response', 0)} llm.response events for "
                   f"{audit['requests_completed_by_clients']} requests completed by the clients "
                   f"(warm-ups included); response outcomes {outcomes}; every completed request audited: "
                   f"{'yes' if audit['every_completed_request_audited'] else 'NO'}.")
    disturbed = [f"{r['scenario']}/{r['target']} ({r['machine']['other_cpu_cores']} cores)"
                 for r in result["runs"] if r.get("machine", {}).get("other_cpu_cores", 0) > OTHER_LOAD_WARNING]
    busiest = max((r.get("machine", {}).get("other_cpu_cores", 0) for r in result["runs"]), default=0)
    if disturbed:
        out.append(f"WARNING: other processes used more than {OTHER_LOAD_WARNING} of the 2 cores during: "
                   + ", ".join(disturbed) + "; those numbers are skewed.")
    else:
        out.append(f"Other processes on the machine used at most {busiest} cores during any measured run.")
    if result["idle"].get("chaperone", {}).get("rss_after_load_kb"):
        parts = [f"{names[t]} {kb_mib(v['rss_after_load_kb'])} MiB" for t, v in result["idle"].items()
                 if v.get("rss_after_load_kb")]
        out.append("RSS idle again after all loads: " + ", ".join(parts) + ".")
    out.append(f"Run {meta.get('date', '?')}: {meta.get('nproc', '?')} cores ({meta.get('cpu', '?')}), "
               f"kernel {meta.get('kernel', '?')}, Swift {meta.get('swift', '?')}, wrk {meta.get('wrk', '?')}, "
               f"Envoy {meta.get('envoy') or meta.get('envoy_note') or 'n/a'}; chaperone {meta.get('chaperone_commit', '?')} "
               f"with {meta.get('chaperone_threads', '?')}, log level {meta.get('chaperone_log_level', '?')}; "
               f"{meta.get('duration', '?')} measured after {meta.get('warmup', '?')} warm-up per run.")
    return "\n".join(out)


def cmd_render(args):
    result = json.load(open(args.file))
    loaded = max((r["connections"] for r in result["runs"]), default=1)
    result["targets"] = evaluate_targets(result["summary"], result["idle"], f"c{loaded}")
    print(render(result))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--scenario", required=True)
    rec.add_argument("--target", required=True)
    rec.add_argument("--connections", type=int, required=True)
    rec.add_argument("--wrk-threads", type=int, required=True)
    rec.add_argument("--stream", type=int, default=0)
    rec.add_argument("--wrk-output", required=True)
    rec.add_argument("--warmup-output")
    rec.add_argument("--rss-samples")
    rec.add_argument("--hwm-kb", type=int, default=0)
    rec.add_argument("--threads", type=int, default=0)
    rec.add_argument("--cpu-ticks", type=int, default=0)
    rec.add_argument("--clk-tck", type=int, default=100)
    rec.add_argument("--system-busy-ticks", type=int, default=0)
    rec.add_argument("--bench-ticks", type=int, default=0)
    rec.add_argument("--wrk-cpu-s", type=float, default=0.0)
    rec.add_argument("--wall-s", type=float, default=0.0)
    sub.add_parser("oneline")
    sub.add_parser("quiet")
    fin = sub.add_parser("finish")
    fin.add_argument("--records", required=True)
    fin.add_argument("--idle", required=True)
    fin.add_argument("--out", required=True)
    fin.add_argument("--meta", action="append", default=[])
    fin.add_argument("--proxy-metrics")
    fin.add_argument("--audit", help="chaperone-proxy's audit file")
    fin.add_argument("--extra-requests", type=int, default=0,
                     help="requests sent to chaperone-proxy outside wrk (sanity, idle warm-up)")
    ren = sub.add_parser("render")
    ren.add_argument("file", nargs="?", default="bench/results/latest.json")
    args = parser.parse_args()
    handler = {"record": cmd_record, "oneline": cmd_oneline, "quiet": cmd_quiet, "finish": cmd_finish, "render": cmd_render}[args.cmd]
    sys.exit(handler(args) or 0)


if __name__ == "__main__":
    main()
