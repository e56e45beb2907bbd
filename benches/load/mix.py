#!/usr/bin/env python3
"""The mixed workload of benches/load/run (issue 15): requests drawn from the seeded policy file
(benches/load/seed; what it needs of it is cached beside it as SEED.digest.json), each with
the status Portcullis must answer, and a checker.

  mix.py roots SEED N                 the keys of the first N top-level document nodes
  mix.py requests SEED KEYS PEM OUT MODE [LINES] [TOKENS]
        KEYS: lines "full key<TAB>subtree root or -" (keys made by `portcullis keys create`).
        Writes OUT/requests.tsv (the load, shuffled) and OUT/checks.tsv (checked before the
        load), lines "status<TAB>path<TAB>header<TAB>value". 70 % Delivery `content/item/{id}`
        with an API key, 30 % Management `GET document/{id}` with an RS256 JWT; 10 % of each
        are denies by construction (a subtree-scoped key outside its subtree: 403
        outside_key_scope; a user below one of its group's entries without Read: 403
        missing_verb). Management callers are 64 random users. MODE cached: LINES lines
        (default 20000), one JWT per user. MODE uncached: TOKENS distinct JWTs (default
        60000), one per Management line, so no token is presented twice until the load wraps.
  mix.py check PORT FILE [plain]      sends every line over one connection; exit 1 on any
                                      status other than the line's (plain: other than 200)
  mix.py send PORT FILE START COUNT [plain]
                                      COUNT lines from line START (0-based, wrapping at the
                                      end) over one connection, each status checked as check
                                      does; exit 1 at the first other status (instructions)
  mix.py verdict CONNS < WRK_OUTPUT   checks mixed.lua's counts (see verdict)

The expected statuses come from the data by Umbraco's rules as far as this data needs them
(content section, root start nodes, nearest-ancestor entry per group else the group's
defaults, Read for GET document; a key's subtree by ancestry); the checks and the load's
status counts hold the gateway to them.
"""
import base64, http.client, json, os, random, sys, time, tomllib

ISS, AUD = "https://bench.portcullis.invalid", "portcullis-bench"
DOC, ITEM = "/umbraco/management/api/v1/document/", "/umbraco/delivery/api/v2/content/item/"
DENY_SHARE, DELIVERY_SHARE = 0.10, 0.70
TRIES = 10000  # draws per line before giving up (the data cannot give that kind)


def load_seed(path):
    """The parts of the policy file the oracle needs (cached as PATH.digest.json)."""
    cache = path + ".digest.json"
    if os.path.exists(cache) and os.path.getmtime(cache) >= os.path.getmtime(path):
        return json.load(open(cache))
    with open(path, "rb") as f:
        p = tomllib.load(f)
    docs = [n for n in p.get("nodes", []) if n.get("kind") == "document" and not n.get("trashed")]
    d = {
        "parent": {n["key"]: n.get("parent") for n in docs},
        "groups": {g["alias"]: {"sections": g.get("sections", []), "verbs": g.get("default_verbs", []),
                                "start": g.get("content_start")} for g in p.get("groups", [])},
        "users": [{"sub": u["external_id"], "groups": u.get("groups", []), "state": u.get("state", "active"),
                   "start": u.get("content_start", [])} for u in p.get("users", [])
                  if u["external_id"].startswith("bulk-user-")],
        "entries": {f'{e["group"]}|{e["node"]}': e["verbs"] for e in p.get("permissions", [])},
    }
    json.dump(d, open(cache, "w"))
    return d


def ancestry(seed, node):  # node, parent, …, top
    out = []
    while node:
        out.append(node)
        node = seed["parent"].get(node)
    return out


def management_status(seed, user, node):
    """GET document/{node} by `user`: 200 or 403 by Umbraco's rules for this data."""
    groups = [seed["groups"][g] for g in user["groups"]]
    if user["state"] != "active" or not any("content" in g["sections"] for g in groups):
        return 403
    path = ancestry(seed, node)
    starts = user["start"] or [g["start"] for g in groups if g["start"]]
    if "root" not in starts and not set(starts) & set(path):
        return 403
    verbs = set()
    for alias, g in zip(user["groups"], groups):
        entry = next((seed["entries"][f"{alias}|{n}"] for n in path if f"{alias}|{n}" in seed["entries"]), None)
        verbs |= set(g["verbs"] if entry is None else entry)
    return 200 if "Umb.Document.Read" in verbs else 403


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def minter(pem):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding
    key = serialization.load_pem_private_key(open(pem, "rb").read(), None)
    head, now, serial = b64(b'{"alg":"RS256","typ":"JWT","kid":"bench"}'), int(time.time()), iter(range(10**9))

    def mint(sub):
        body = b64(json.dumps({"iss": ISS, "aud": AUD, "sub": sub, "iat": now, "exp": now + 7200,
                               "jti": f"bench-{next(serial)}"}, separators=(",", ":")).encode())
        signing = f"{head}.{body}".encode()
        return f"{head}.{body}.{b64(key.sign(signing, padding.PKCS1v15(), hashes.SHA256()))}"
    return mint


class Mix:
    def __init__(self, seed, keys, mint, rng):
        self.seed, self.keys, self.mint, self.rng = seed, keys, mint, rng
        self.nodes = list(seed["parent"])
        self.denied = {}  # group alias -> nodes of its entries without Read
        for k, verbs in seed["entries"].items():
            alias, node = k.split("|")
            if "Umb.Document.Read" not in verbs and node in seed["parent"]:
                self.denied.setdefault(alias, []).append(node)

    def delivery(self, deny):
        for _ in range(TRIES):
            key, root = self.rng.choice(self.keys)
            if deny and root == "-":
                continue
            node = self.rng.choice(self.nodes)
            status = 200 if root == "-" or root in ancestry(self.seed, node) else 403
            if (status == 403) == deny:
                return f"{status}\t{ITEM}{node}\tApi-Key\t{key}"
        sys.exit(f"no Delivery {'deny' if deny else 'allow'} in {TRIES} tries")

    def management(self, deny, users, token):
        for _ in range(TRIES):
            user = self.rng.choice(users)
            if deny:
                node = self.rng.choice(self.denied.get(user["groups"][0], [None]))
                if node is None:
                    continue
            else:
                node = self.rng.choice(self.nodes)
            status = management_status(self.seed, user, node)
            if (status == 403) == deny:
                return f"{status}\t{DOC}{node}\tAuthorization\tBearer {token(user)}"
        sys.exit(f"no Management {'deny' if deny else 'allow'} in {TRIES} tries")

    def lines(self, count, mgmt_count, users, token):
        """`count` lines, `mgmt_count` of them Management, 10 % of each kind denies, shuffled."""
        deliv = count - mgmt_count
        out = [self.delivery(i < round(deliv * DENY_SHARE)) for i in range(deliv)]
        out += [self.management(i < round(mgmt_count * DENY_SHARE), users, token) for i in range(mgmt_count)]
        self.rng.shuffle(out)
        return out


def requests(seed_path, keys_path, pem, out, mode, lines=20000, tokens=60000):
    seed, rng, mint = load_seed(seed_path), random.Random(15), minter(pem)
    keys = [tuple(l.split("\t")) for l in open(keys_path).read().split("\n") if l]
    mix = Mix(seed, keys, mint, rng)
    users = rng.sample(seed["users"], 64)  # the same users in both modes: only the tokens differ
    if mode == "cached":
        pool = {u["sub"]: mint(u["sub"]) for u in users}
        token = lambda u: pool[u["sub"]]
        load = mix.lines(lines, round(lines * (1 - DELIVERY_SHARE)), users, token)
    elif mode == "uncached":
        token = lambda u: mint(u["sub"])
        load = mix.lines(round(tokens / (1 - DELIVERY_SHARE)), tokens, users, token)
    else:
        sys.exit(f"mode must be cached or uncached, not {mode}")
    # Checked before the load (their tokens are their own in uncached mode, so the load's are
    # still unseen): 400 lines of the same mix.
    checks = mix.lines(400, 120, users, token)
    for name, ls in (("requests.tsv", load), ("checks.tsv", checks)):
        with open(os.path.join(out, name), "w") as f:
            f.write("\n".join(ls) + "\n")
    denies = sum(1 for l in load if not l.startswith("200"))
    jwts = sum(1 for l in load if "\tAuthorization\t" in l)
    print(f"mix {mode}: {len(load)} requests ({len(load) - jwts} Delivery with {len(keys)} API keys, "
          f"{jwts} Management with {len({l.rsplit(chr(9), 1)[1] for l in load if chr(9) + 'Authorization' in l})} "
          f"distinct JWTs of {len(users)} users), {denies} denies ({denies / len(load):.1%})")


def check(port, path, plain=""):
    c, bad, n = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30), 0, 0
    for line in open(path):
        want, target, name, value = line.rstrip("\n").split("\t")
        want = "200" if plain else want
        c.request("GET", target, headers={name: value})
        r = c.getresponse()
        r.read()
        n += 1
        if r.status != int(want):
            bad += 1
            if bad <= 5:
                print(f"  {name} GET {target}: expected {want}, got {r.status}", file=sys.stderr)
    if bad:
        sys.exit(f"FAIL: {bad} of {n} requests of {path} answered another status than expected")
    print(f"check ok: {n} requests of {path}, each with its expected status")


def send(port, path, start, count, plain=""):
    lines = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=120)
    for i in range(int(start), int(start) + int(count)):
        want, target, name, value = lines[i % len(lines)]
        c.request("GET", target, headers={name: value, "User-Agent": "bench"})
        r = c.getresponse()
        r.read()
        if r.status != (200 if plain else int(want)):
            sys.exit(f"FAIL: line {i % len(lines)} {name} GET {target}: expected "
                     f"{200 if plain else want}, got {r.status}")


def verdict(conns, wrk_output):
    """Checks mixed.lua's line: every answered status is one that was sent, each status was
    answered as often as sent, less at most `conns` still in flight at the end and the one
    request wrk builds (and never sends) to verify the script; no socket errors. Prints the
    deny shares; exits 1 on any violation."""
    line = next((l for l in wrk_output.splitlines() if l.startswith("mix: sent ")), None)
    if line is None or "Socket errors" in wrk_output:
        sys.exit("FAIL: socket errors, or no mix: line in the wrk output")
    sent_part, rest = line[len("mix: sent "):].split(" answered ")
    answered_part, wrapped = rest.rsplit(" wrapped=", 1)
    parse = lambda part: {int(k): int(v) for k, v in (kv.split("=") for kv in part.split())}
    sent, answered = parse(sent_part), parse(answered_part)
    problems = [f"status {s} answered {answered[s]} times, never expected" for s in answered if s not in sent]
    problems += [f"status {s}: sent {sent[s]}, answered {answered.get(s, 0)}" for s in sent
                 if not 0 <= sent[s] - answered.get(s, 0) <= conns + 1]
    deny = lambda c: sum(v for k, v in c.items() if k != 200) / max(1, sum(c.values()))
    print(f"mix verdict: denies {deny(answered):.2%} of answers (expected {deny(sent):.2%} of the "
          f"requests sent), tokens presented again after the list wrapped: {wrapped}")
    if problems:
        sys.exit("FAIL: " + "; ".join(problems))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "roots":
        seed = load_seed(args[0])
        print("\n".join([k for k, p in seed["parent"].items() if p is None][: int(args[1])]))
    elif cmd == "requests":
        requests(*args[:5], *(int(a) for a in args[5:]))
    elif cmd == "check":
        check(*args)
    elif cmd == "send":
        send(*args)
    elif cmd == "verdict":
        verdict(int(args[0]), sys.stdin.read())
    else:
        sys.exit(__doc__)
