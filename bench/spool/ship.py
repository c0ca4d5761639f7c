"""Shipping throughput: a real chaperone-proxy delivers a pre-filled spool to a real
chaperone-collector (SQLite, TLS, loopback); prints one JSON object."""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

import httpx  # noqa: E402

from collector_support import Collector, TLSFiles  # noqa: E402
from conftest import binary, free_port, poll, stop_process  # noqa: E402
from delivery_support import metric  # noqa: E402

work = Path(sys.argv[1])
tls = TLSFiles.make(work / "tls")
(work / "collector").mkdir(parents=True, exist_ok=True)
collector = Collector(work / "collector", tls=tls).start()
(work / "token").write_text(collector.issuer.token(lifetime=7200))
spool_bytes = sum(p.stat().st_size for p in (work / "spool").glob("segment-*"))
admin = free_port()
(work / "proxy.yaml").write_text(f"""
listen: {{ host: 127.0.0.1, port: {free_port()} }}
admin: {{ host: 127.0.0.1, port: {admin} }}
audit: {{ stdout: false }}
collector:
  url: {collector.url}
  token_file: {work / 'token'}
  ca_bundle: {tls.ca}
spool:
  directory: {work / 'spool'}
  max_size: 4GiB
""")
started = time.monotonic()
proxy = subprocess.Popen([str(binary("chaperone-proxy")), "--config", str(work / "proxy.yaml")],
                         stdout=subprocess.DEVNULL, stderr=open(work / "proxy.log", "wb"))
admin_url = f"http://127.0.0.1:{admin}"


def drained():
    try:
        return metric(admin_url, "chaperone_proxy_shipped_events_total") > 0 and metric(admin_url, "chaperone_proxy_spool_events") == 0
    except httpx.HTTPError:
        return False


poll(drained, timeout=1800, interval=0.05, what="the spool to drain")
seconds = time.monotonic() - started
events = int(metric(admin_url, "chaperone_proxy_shipped_events_total"))
batches = int(metric(admin_url, "chaperone_proxy_ship_attempts_total"))
failures = int(metric(admin_url, "chaperone_proxy_ship_failures_total"))
stop_process(proxy)
collector.stop()
print(json.dumps({"events": events, "mb": round(spool_bytes / 1e6, 1), "seconds": round(seconds, 2),
                  "events_per_second": int(events / seconds), "batches": batches, "failures": failures}))
