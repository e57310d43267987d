#!/usr/bin/env python3
"""Checks a `ledger audit export` file offline, with the standard library only.

    python3 verify_audit_file.py FILE      exit 0: every link holds; exit 1: the first broken one

link(v) = sha256(link(v-1) as hex || canonical(v)), link(0) = 64 zeros; canonical(v) is the
sorted, compact UTF-8 JSON of aggregate_id, version, topic, state (base64), cause, recorded_at.
"""
import base64
import hashlib
import json
import sys


def main(path: str) -> int:
    with open(path, encoding="utf-8") as lines:
        header, link, version = json.loads(next(lines)), "0" * 64, 0
        for n, text in enumerate(lines, start=2):
            e = json.loads(text)
            raw = e["state"].encode() if e["state_encoding"] == "utf-8" else base64.b64decode(e["state"])
            doc = {"aggregate_id": e["aggregate_id"], "version": e["version"], "topic": e["topic"],
                   "state": base64.b64encode(raw).decode(), "cause": e["cause"], "recorded_at": e["recorded_at"]}
            canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            link = hashlib.sha256(link.encode() + canonical).hexdigest()
            version += 1
            if e["version"] != version or e["link"] != link:
                print(f"BROKEN at line {n}: version {e['version']} of {header['account_id']}")
                return 1
    print(f"intact: {version} events of {header['account_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
