"""A tiled-log reader written from the C2SP specifications alone (signed-note,
tlog-checkpoint, tlog-tiles) and RFC 6962, with no code from the log under test.

    tiles_reader.py BASE_URL ORIGIN KEY_B64 [--previous CHECKPOINT_FILE] [--mirror DIR]
                    [--save-checkpoint FILE]

Fetches BASE_URL/checkpoint and verifies its Ed25519 signature line by ORIGIN (key ID =
SHA-256(origin || 0x0A || 0x01 || key)[:4]); fetches every entry bundle and every tile
the checkpoint's tree size implies; checks that each entry hashes to its level-0 tile
hash, that each tile hash of level l >= 1 is the Merkle tree hash of the full tile below,
and that the root of the leaves is the checkpoint's root. With --previous, checks that the
earlier checkpoint (same key) is consistent: its root is the root of the first N leaves.
With --mirror, writes every fetched resource under DIR at its path, so that a static file
server can serve the copy. Prints a JSON summary; exits 1 on any mismatch.
"""

import base64
import hashlib
import json
import os
import sys
import urllib.request

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TILE = 256


def fail(msg):
    print(f"tiles_reader: {msg}", file=sys.stderr)
    sys.exit(1)


def fetch(base, path, mirror):
    url = f"{base.rstrip('/')}/{path}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
    except Exception as e:  # noqa: BLE001 - report any failure the same way
        fail(f"GET {url}: {e}")
    if mirror:
        dest = os.path.join(mirror, path)
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        with open(dest, "wb") as f:
            f.write(body)
    return body


def verify_note(note, origin, key):
    """Returns (size, root) of a checkpoint note signed by `key` under `origin`."""
    if not note.endswith("\n"):
        fail("the checkpoint does not end with a newline")
    cut = note.rfind("\n\n")
    if cut < 0:
        fail("the checkpoint has no signature block")
    text, sigs = note[: cut + 1], note[cut + 2 :]
    key_id = hashlib.sha256(origin.encode() + b"\n" + b"\x01" + key).digest()[:4]
    pub = Ed25519PublicKey.from_public_bytes(key)
    verified = False
    for line in sigs.splitlines():
        if not line.startswith("\u2014 "):
            fail(f"malformed signature line {line!r}")
        name, _, b64 = line[2:].partition(" ")
        blob = base64.b64decode(b64)
        if name == origin and blob[:4] == key_id:
            pub.verify(blob[4:], text.encode())  # raises on a bad signature
            verified = True
    if not verified:
        fail(f"no signature by {origin} with the given key")
    lines = text.split("\n")
    if lines[0] != origin:
        fail(f"origin {lines[0]!r} is not {origin!r}")
    if not lines[1].isdigit() or (len(lines[1]) > 1 and lines[1][0] == "0"):
        fail(f"bad tree size {lines[1]!r}")
    return int(lines[1]), base64.b64decode(lines[2])


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(hashes):
    """RFC 6962 Merkle tree hash over already-hashed leaves."""
    n = len(hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def index_path(n):
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level, index, width):
    p = f"tile/{level}/{index_path(index)}" if level is not None else f"tile/entries/{index_path(index)}"
    return p if width == TILE else f"{p}.p/{width}"


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        fail(__doc__)
    base, origin, key = args[0], args[1], base64.b64decode(args[2])
    opts = dict(zip(args[3::2], args[4::2]))
    mirror = opts.get("--mirror")
    note = fetch(base, "checkpoint", mirror).decode()
    size, root = verify_note(note, origin, key)
    if "--save-checkpoint" in opts:
        with open(opts["--save-checkpoint"], "w") as f:
            f.write(note)

    # entries and level-0 tiles
    leaves = []
    tiles_read = 0
    for t in range((size + TILE - 1) // TILE):
        width = min(TILE, size - t * TILE)
        bundle = fetch(base, tile_path(None, t, width), mirror)
        entries, at = [], 0
        while at < len(bundle):
            if at + 2 > len(bundle):
                fail(f"entry bundle {t}: truncated length")
            n = int.from_bytes(bundle[at : at + 2], "big")
            entries.append(bundle[at + 2 : at + 2 + n])
            at += 2 + n
        if at != len(bundle) or len(entries) != width:
            fail(f"entry bundle {t}: {len(entries)} entries, expected {width}")
        tile = fetch(base, tile_path(0, t, width), mirror)
        tiles_read += 1
        if len(tile) != 32 * width:
            fail(f"tile 0/{t}: {len(tile)} bytes, expected {32 * width}")
        for i, e in enumerate(entries):
            if leaf_hash(e) != tile[32 * i : 32 * i + 32]:
                fail(f"entry {t * TILE + i} does not hash to its level-0 tile hash")
            leaves.append(leaf_hash(e))

    # higher levels: each hash is the MTH of a full tile's worth of leaves below
    level, span = 1, TILE
    while size // span > 0:
        count = size // span
        for t in range((count + TILE - 1) // TILE):
            width = min(TILE, count - t * TILE)
            tile = fetch(base, tile_path(level, t, width), mirror)
            tiles_read += 1
            if len(tile) != 32 * width:
                fail(f"tile {level}/{t}: {len(tile)} bytes, expected {32 * width}")
            for i in range(width):
                lo = (t * TILE + i) * span
                if mth(leaves[lo : lo + span]) != tile[32 * i : 32 * i + 32]:
                    fail(f"tile {level}/{t} hash {i} is not the hash of the tile below")
        level += 1
        span *= TILE

    if mth(leaves) != root:
        fail("the root of the entries is not the checkpoint's root")

    result = {"size": size, "root": base64.b64encode(root).decode(), "tiles": tiles_read, "levels": level}
    if "--previous" in opts:
        with open(opts["--previous"]) as f:
            old_size, old_root = verify_note(f.read(), origin, key)
        if old_size > size:
            fail(f"the earlier checkpoint ({old_size}) is larger than the current one ({size})")
        if mth(leaves[:old_size]) != old_root:
            fail("the earlier checkpoint is not consistent with the current tree")
        result["consistent_with"] = old_size
    print(json.dumps(result))


if __name__ == "__main__":
    main()
