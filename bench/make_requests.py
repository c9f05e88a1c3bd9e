#!/usr/bin/env python3
"""Writes N unique, signed webhook requests, ready to send byte for byte, for bench/vs_nginx.sh.

  bench/make_requests.py generic N OUT    ~530-byte generic messages (dev-secret-change-me)
  bench/make_requests.py x N OUT          ~3 KB X Account Activity bodies (bench-consumer-secret)

Texts come from the labelled brand messages in tests/fixtures/triage, authors and conversation
ids vary, every id is unique (no duplicates in a run). OUT holds, per request, its length in
decimal, a newline, then the raw HTTP/1.1 request (bench/replay.lua reads it).
"""
import base64, hashlib, hmac, json, os, random, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERIC_SECRET = b"dev-secret-change-me"
X_SECRET = b"bench-consumer-secret"


def texts():
    out = []
    for name in ("brand-test.jsonl", "brand-tune.jsonl", "labelled.jsonl"):
        with open(os.path.join(ROOT, "tests/fixtures/triage", name), encoding="utf-8") as f:
            out += [json.loads(line)["text"] for line in f if line.strip()]
    return out


def request(path, headers, body):
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def generic(i, rng, pool):
    author = rng.randrange(1, 200000)
    message = {
        "id": f"bench-{i}",
        "platform": rng.choice(["x", "facebook", "instagram", "whatsapp"]),
        "text": rng.choice(pool),
        "created_at": "2026-11-23T10:00:00Z",
        "author": {"id": str(author), "handle": f"user{author}", "name": f"Customer {author}",
                   "followers": rng.choice([12, 150, 980, 4200, 48210, 250000]), "verified": rng.random() < 0.05},
        "conversation_id": f"conv-{rng.randrange(1, 100000)}",
        "url": f"https://x.com/user{author}/status/{10**17 + i}",
    }
    body = json.dumps(message, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(GENERIC_SECRET, body, hashlib.sha256).hexdigest()
    return request("/webhooks/generic", [("X-Triage-Signature", signature)], body)


def x_body(i, rng, pool, template):
    event = json.loads(json.dumps(template))
    tweet = event["tweet_create_events"][0]
    tweet_id = str(1900000000000000000 + i)
    tweet["id"] = int(tweet_id)
    tweet["id_str"] = tweet_id
    text = rng.choice(pool)
    tweet["text"] = text[:140]
    tweet["extended_tweet"]["full_text"] = text
    author = 2000000000000000000 + rng.randrange(1, 200000)
    tweet["user"]["id"] = author
    tweet["user"]["id_str"] = str(author)
    tweet["user"]["screen_name"] = f"user{author % 1000000}"
    tweet["user"]["followers_count"] = rng.choice([12, 150, 980, 4200, 48210, 250000])
    body = json.dumps(event, ensure_ascii=False, indent=2).encode()  # about 3 KB, as measured
    signature = "sha256=" + base64.b64encode(hmac.new(X_SECRET, body, hashlib.sha256).digest()).decode()
    return request("/webhooks/x", [("X-Twitter-Webhooks-Signature", signature)], body)


def main():
    kind, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(20261130)
    pool = texts()
    with open(os.path.join(ROOT, "tests/fixtures/inbound/x_aaa_tweet_create_mention.json"), encoding="utf-8") as f:
        template = json.load(f)
    with open(out, "wb") as f:
        for i in range(count):
            raw = generic(i, rng, pool) if kind == "generic" else x_body(i, rng, pool, template)
            f.write(f"{len(raw)}\n".encode())
            f.write(raw)


if __name__ == "__main__":
    main()
