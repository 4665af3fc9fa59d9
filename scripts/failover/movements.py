"""Stock movements at a steady rate, keeping the client's own ledger.

    python3 movements.py BASE_URL SKUS SECONDS RATE LOG REASON

Restocks (+1, so none is refused) round-robin over the comma-separated
SKUS, each with its own Idempotency-Key, sent to BASE_URL for SECONDS at
RATE per second, one at a time, each with REASON (so the ledger's rows of
this run can be counted). The bearer token comes from ATELIER_TOKEN.
A movement that gets no 201 (a 503, a timeout, a broken connection) is
sent again later with the same key and body, as a careful client does, until
it is acknowledged or 30 s after the end. LOG gets one line per attempt,
"sent_at answered_at status key", and the last line is the ledger as JSON:
the acknowledged sum per sku and how many stayed unacknowledged.
"""
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid

base, skus, seconds, rate, log_path, reason = (
    sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6])
url = urllib.parse.urlsplit(base)
token = os.environ["ATELIER_TOKEN"]
acked = {sku: 0 for sku in skus}
pending = []  # (key, sku)
conn = None


def post(key, sku):
    global conn
    body = json.dumps({"delta": 1, "reason": reason})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key}
    try:
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        conn.request("POST", f"/skus/{sku}/movements", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        if conn is not None:
            conn.close()
        conn = None
        return 0


with open(log_path, "w") as log:
    def attempt(key, sku):
        sent = time.time()
        status = post(key, sku)
        log.write(f"{sent:.3f} {time.time():.3f} {status} {key}\n")
        if status == 201:
            acked[sku] += 1
        else:
            pending.append((key, sku))

    started = time.time()
    n = 0
    while time.time() - started < seconds:
        sku = skus[n % len(skus)]
        n += 1
        if pending:
            attempt(*pending.pop(0))
        attempt(str(uuid.uuid4()), sku)
        next_at = started + n / rate
        time.sleep(max(0.0, next_at - time.time()))
    ends = time.time() + 30
    while pending and time.time() < ends:
        attempt(*pending.pop(0))
        time.sleep(0.1)
    log.write(json.dumps({"acked": acked, "unacknowledged": len(pending), "sent": n}) + "\n")
