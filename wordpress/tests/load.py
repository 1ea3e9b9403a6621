#!/usr/bin/env python3
"""Concurrent POSTs to the credit route; prints counts by status as JSON.

Usage: load.py URL REQUESTS CLIENTS [nolock]
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, total, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
nolock = len(sys.argv) > 4 and sys.argv[4] == "nolock"
parts = urllib.parse.urlsplit(url)
lock = threading.Lock()
counts, retry_after, messages, done = {}, 0, {}, [0]
started = time.time()


def worker(n):
    global retry_after
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    for _ in range(n):
        body = "nolock=1" if nolock else ""
        try:
            conn.request("POST", parts.path + "?" + parts.query, body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            header = resp.getheader("Retry-After")
        except Exception as e:  # a dropped connection counts as its own outcome
            status, header, data = "error:" + type(e).__name__, None, b""
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1
            if status == 429 and header:
                retry_after += 1
            if status not in (200,) and str(status) not in messages:
                try:
                    messages[str(status)] = json.loads(data).get("message", "")
                except Exception:
                    messages[str(status)] = data[:200].decode("utf-8", "replace")


per = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
threads = [threading.Thread(target=worker, args=(n,)) for n in per]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"counts": counts, "retry_after_on_429": retry_after, "messages": messages,
                  "seconds": round(time.time() - started, 2)}))
