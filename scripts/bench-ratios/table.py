"""Reads what scripts/bench-ratios.sh wrote under out/bench/ and prints one
Markdown table of the rows, then the ratios issue 14 sets targets for.

usage: table.py OUT PRODUCTS SECONDS CONNECTIONS CLIENTS RATE
"""
import json
import re
import sys
from pathlib import Path


def oha(path):
    """requests/s, p50 ms, p99 ms, share of answers that were not 2xx/304."""
    data = json.loads(Path(path).read_text())
    summary, pct = data["summary"], data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    answered = sum(codes.values())
    bad = sum(n for code, n in codes.items() if not (code.startswith("2") or code == "304"))
    # Requests still open when the run's time is up are cut off by oha and
    # counted as "aborted due to deadline": not failures of the server.
    errors = sum(n for kind, n in data.get("errorDistribution", {}).items() if kind != "aborted due to deadline")
    total = answered + errors
    failed = (bad + errors) / total if total else 1.0
    return summary["requestsPerSec"], pct["p50"] * 1000, pct["p99"] * 1000, failed


def pgbench(path):
    """transactions/s and mean latency in ms."""
    text = Path(path).read_text()
    tps = float(re.search(r"tps = ([0-9.]+)", text).group(1))
    latency = float(re.search(r"latency average = ([0-9.]+) ms", text).group(1))
    return tps, latency


def stress(path):
    """achieved rps, p50, p99 of the one row of a stress.md."""
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 8 and cells[1].isdigit():
            return float(cells[2]), float(cells[3]), float(cells[5]), cells[7]
    raise SystemExit(f"no row in {path}")


def main():
    out, products, seconds, connections, clients, rate = sys.argv[1:7]
    out = Path(out)
    r = {}
    rows = [
        ("nginx-styles", "nginx, the styles document as a file", "/products/:id/styles"),
        ("cache-on-styles", "atelier, cache warm", "/products/:id/styles"),
        ("cache-off-styles", "atelier, cache off", "/products/:id/styles"),
        ("cache-on-detail", "atelier, cache warm", "/products/:id"),
        ("cache-off-detail", "atelier, cache off", "/products/:id"),
        ("cache-on-list", "atelier, cache warm", "/products?page=1000..9999&count=5"),
        ("cache-off-list", "atelier, cache off", "/products?page=1000..9999&count=5"),
        ("cache-off-deep", "atelier, cache off", "/products, deepest tenth of pages"),
    ]
    print(f"Catalog {products} products; oha closed loop, {connections} connections, {seconds} s per row;")
    print(f"pgbench {clients} clients, -M prepared, on replica1. One machine: every row shares its cores.\n")
    print("| row | route | req/s | p50 ms | p99 ms | failed |")
    print("|---|---|---:|---:|---:|---:|")
    for key, what, route in rows:
        rps, p50, p99, failed = oha(out / f"{key}.json")
        r[key] = rps
        print(f"| {what} | `{route}` | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {failed:.2%} |")
    for key, what in [("pgbench-styles", "pgbench: the styles lookup on a replica"),
                      ("pgbench-list", "pgbench: `products_page(offset, 5)` on a replica")]:
        tps, latency = pgbench(out / f"{key}.txt")
        r[key] = tps
        print(f"| {what} | SQL | {tps:,.0f} | (mean {latency:.2f}) | | |")

    rps, p50, p99, failed = oha(out / "cache-off-deep-at-rate.json")
    print(f"\nList route, deepest pages, cache off, at {rate} req/s (open loop, latency-corrected): "
          f"{rps:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, failed {failed:.2%} (target p99 < 5 ms).\n")

    print("| ratio | measured | target |")
    print("|---|---:|---:|")
    def ratio(label, a, b, target):
        value = r[a] / r[b]
        mark = "met" if value >= target else "not met"
        print(f"| {label} | {value:.2f} | {target} ({mark}) |")
    ratio("styles, cache warm / nginx same bytes", "cache-on-styles", "nginx-styles", 0.8)
    ratio("styles, cache off / pgbench lookup", "cache-off-styles", "pgbench-styles", 0.6)
    ratio("list (pages 1000-9999), cache off / styles, cache off", "cache-off-list", "cache-off-styles", 0.8)
    ratio("list (deepest pages), cache off / styles, cache off", "cache-off-deep", "cache-off-styles", 0.8)
    ratio("detail, cache warm / nginx same-size file", "cache-on-detail", "nginx-styles", 0.8)

    crps, cp50, cp99, cfailed = oha(out / "cross-oha-styles.json")
    srps, sp50, sp99, serrors = stress(out / "cross-stress" / "stress.md")
    print(f"\nCross-check at {rate} req/s, styles, cache off (open loop):\n")
    print("| generator | achieved req/s | p50 ms | p99 ms | failed |")
    print("|---|---:|---:|---:|---:|")
    print(f"| `oha -q {rate} --latency-correction` | {crps:,.0f} | {cp50:.2f} | {cp99:.2f} | {cfailed:.2%} |")
    print(f"| `atelier stress --rates {rate}` | {srps:,.0f} | {sp50:.2f} | {sp99:.2f} | {serrors} |")


if __name__ == "__main__":
    main()
