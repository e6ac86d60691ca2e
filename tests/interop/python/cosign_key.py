"""cosign's encrypted private key format, written from its documentation (not from our
Rust code), so the tests can check that key files cross between cosign-format tools.

PEM label "ENCRYPTED SIGSTORE PRIVATE KEY" (or the older "ENCRYPTED COSIGN PRIVATE KEY");
body = JSON {"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt": b64},
"cipher": {"name": "nacl/secretbox", "nonce": b64}, "ciphertext": b64}; key =
scrypt(password, salt, N, r, p, 32); plaintext = the PKCS#8 DER private key.

  python cosign_key.py decrypt KEY_FILE PASSWORD OUT_PKCS8_PEM
  python cosign_key.py encrypt PKCS8_PEM PASSWORD OUT_KEY_FILE [LABEL]
  python cosign_key.py generate OUT_PKCS8_PEM OUT_PUBLIC_PEM
"""

import base64
import hashlib
import json
import os
import sys

import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def pem_blocks(text):
    lines = text.strip().splitlines()
    label = lines[0][len("-----BEGIN ") : -len("-----")]
    body = "".join(l for l in lines[1:] if not l.startswith("-----"))
    return label, base64.b64decode(body)


def to_pem(label, der):
    b = base64.b64encode(der).decode()
    rows = [b[i : i + 64] for i in range(0, len(b), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(rows) + f"\n-----END {label}-----\n"


def derive(password, salt, n, r, p):
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


def decrypt(path, password, out):
    label, body = pem_blocks(open(path).read())
    assert label in ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"), label
    sealed = json.loads(body)
    assert sealed["kdf"]["name"] == "scrypt" and sealed["cipher"]["name"] == "nacl/secretbox"
    prm = sealed["kdf"]["params"]
    key = derive(password.encode(), base64.b64decode(sealed["kdf"]["salt"]), prm["N"], prm["r"], prm["p"])
    der = nacl.secret.SecretBox(key).decrypt(
        base64.b64decode(sealed["ciphertext"]), base64.b64decode(sealed["cipher"]["nonce"])
    )
    serialization.load_der_private_key(der, password=None)  # it is a PKCS#8 key
    open(out, "w").write(to_pem("PRIVATE KEY", der))


def encrypt(pem_path, password, out, label="ENCRYPTED SIGSTORE PRIVATE KEY"):
    _, der = pem_blocks(open(pem_path).read())
    salt, nonce = os.urandom(32), os.urandom(24)
    n, r, p = 65536, 8, 1
    key = derive(password.encode(), salt, n, r, p)
    ct = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
    sealed = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ct).decode(),
    }
    open(out, "w").write(to_pem(label, json.dumps(sealed).encode()))


def generate(out_key, out_pub):
    k = ec.generate_private_key(ec.SECP256R1())
    open(out_key, "wb").write(
        k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    open(out_pub, "wb").write(
        k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    {"decrypt": decrypt, "encrypt": encrypt, "generate": generate}[cmd](*args)
