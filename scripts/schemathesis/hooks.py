"""Schemathesis hooks: the fuzzer behaves as the contract's careful client.

- A write's `X-Read-After` token is sent back on the following reads. Without
  it a GET may be served by a replica that has not yet applied the write (the
  contract allows that), and a stateful check such as "a deleted resource is
  gone" would see the replica's older state.
- Each request that carries an `Idempotency-Key` gets a fresh one: a real
  client reuses a key only to retry the same request, and the generator would
  otherwise reuse short keys across different requests (answered 422, as the
  contract says) or replay a first answer whose resource was since deleted.
"""
import re
import threading
import uuid

import schemathesis

_lock = threading.Lock()
_last_token = {"value": None}
_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


def _lsn(token):
    high, low = token.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers if case.headers is not None else {}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    if case.method.upper() in ("GET", "HEAD"):
        with _lock:
            token = _last_token["value"]
        generated = headers.get("X-Read-After")
        # Keep malformed tokens (they test the 400); raise well-formed ones
        # that are older than the last write to the last write's.
        if token and (generated is None or (_LSN.match(generated) and _lsn(generated) < _lsn(token))):
            headers["X-Read-After"] = token
    case.headers = headers


@schemathesis.hook
def after_call(context, case, response):
    token = response.headers.get("X-Read-After")
    if isinstance(token, list):
        token = token[0] if token else None
    if token and _LSN.match(token):
        with _lock:
            if _last_token["value"] is None or _lsn(token) > _lsn(_last_token["value"]):
                _last_token["value"] = token

