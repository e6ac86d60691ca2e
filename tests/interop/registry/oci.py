"""Plain OCI distribution API calls (no sigstack code), for the container tests:

  python oci.py push-image REGISTRY REPO TAG              -> prints the manifest digest
  python oci.py push-index REGISTRY REPO TAG              -> two images and an index; prints the index digest
  python oci.py cosign-legacy REGISTRY REPO DIGEST PAYLOAD SIG_B64 CERT_PEM CHAIN_PEM BUNDLE_JSON
       pushes a signature in cosign's documented legacy layout: tag sha256-<hex>.sig, one
       layer of media type application/vnd.dev.cosign.simplesigning.v1+json whose blob is
       the payload, with the annotations dev.cosignproject.cosign/signature,
       dev.sigstore.cosign/certificate, dev.sigstore.cosign/chain, dev.sigstore.cosign/bundle
  python oci.py payload REGISTRY REPO DIGEST OUT          -> writes cosign's simple-signing payload
  python oci.py cosign-legacy-from-bundle REGISTRY REPO DIGEST PAYLOAD SIGSTORE_BUNDLE CHAIN_PEM
       the same layout, with signature, certificate and log entry taken from a Sigstore bundle
       (e.g. sigstore-python's) for the payload
  python oci.py copy-manifest REGISTRY REPO FROM_REF TO_TAG
  python oci.py get-manifest REGISTRY REPO REF            -> prints the manifest (404 -> exit 4)
  python oci.py tags REGISTRY REPO                        -> prints the tags, one per line
  python oci.py tamper-layer REGISTRY REPO TAG            -> rewrites the first layer's signature annotation

Registry is host:port spoken to over plain HTTP (a loopback test registry).
"""

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ",".join(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def push_blob(reg, repo, data):
    d = digest(data)
    st, h, _ = req("POST", f"http://{reg}/v2/{repo}/blobs/uploads/")
    assert st == 202, st
    loc = h["Location"]
    if loc.startswith("/"):
        loc = f"http://{reg}{loc}"
    sep = "&" if "?" in loc else "?"
    st, _, body = req("PUT", f"{loc}{sep}digest={d}", data, {"Content-Type": "application/octet-stream"})
    assert st == 201, (st, body)
    return {"digest": d, "size": len(data)}


def push_manifest(reg, repo, ref, manifest, media_type):
    body = json.dumps(manifest).encode()
    st, _, resp = req("PUT", f"http://{reg}/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})
    assert st == 201, (st, resp)
    return digest(body), len(body)


def image(reg, repo, tag, arch="amd64"):
    layer = os.urandom(256)
    l = push_blob(reg, repo, layer)
    config = json.dumps(
        {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [l["digest"]]}, "config": {}}
    ).encode()
    c = push_blob(reg, repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **l}],
    }
    return push_manifest(reg, repo, tag, manifest, OCI_MANIFEST)


def main():
    cmd, reg, repo, *rest = sys.argv[1:]
    if cmd == "push-image":
        print(image(reg, repo, rest[0])[0])
    elif cmd == "push-index":
        entries = []
        for arch in ["amd64", "arm64"]:
            d, size = image(reg, repo, f"{rest[0]}-{arch}", arch)
            entries.append({"mediaType": OCI_MANIFEST, "digest": d, "size": size, "platform": {"architecture": arch, "os": "linux"}})
        print(push_manifest(reg, repo, rest[0], {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, OCI_INDEX)[0])
    elif cmd == "cosign-legacy":
        img_digest, payload, sig, cert, chain, bundle = rest
        payload = open(payload, "rb").read()
        p = push_blob(reg, repo, payload)
        layer = {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            **p,
            "annotations": {
                "dev.cosignproject.cosign/signature": open(sig).read().strip(),
                "dev.sigstore.cosign/certificate": open(cert).read(),
                "dev.sigstore.cosign/chain": open(chain).read(),
                "dev.sigstore.cosign/bundle": open(bundle).read().strip(),
            },
        }
        config = json.dumps(
            {"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [p["digest"]]}, "config": {}}
        ).encode()
        c = push_blob(reg, repo, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
            "layers": [layer],
        }
        tag = img_digest.replace(":", "-", 1) + ".sig"
        print(push_manifest(reg, repo, tag, manifest, OCI_MANIFEST)[0])
    elif cmd == "payload":
        img_digest, out = rest
        payload = {
            "critical": {
                "identity": {"docker-reference": f"{reg}/{repo}"},
                "image": {"docker-manifest-digest": img_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
        open(out, "w").write(json.dumps(payload))
    elif cmd == "cosign-legacy-from-bundle":
        import base64

        img_digest, payload_path, bundle_path, chain_path = rest
        b = json.load(open(bundle_path))
        vm = b["verificationMaterial"]
        cert_der = base64.b64decode(vm["certificate"]["rawBytes"])
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(
            base64.b64encode(cert_der).decode()[i : i + 64] for i in range(0, len(base64.b64encode(cert_der)), 64)
        ) + "\n-----END CERTIFICATE-----\n"
        e = vm["tlogEntries"][0]
        rekor_bundle = {
            "SignedEntryTimestamp": e["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": e["canonicalizedBody"],
                "integratedTime": int(e["integratedTime"]),
                "logIndex": int(e["logIndex"]),
                "logID": base64.b64decode(e["logId"]["keyId"]).hex(),
            },
        }
        payload = open(payload_path, "rb").read()
        p = push_blob(reg, repo, payload)
        layer = {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            **p,
            "annotations": {
                "dev.cosignproject.cosign/signature": b["messageSignature"]["signature"],
                "dev.sigstore.cosign/certificate": pem,
                "dev.sigstore.cosign/chain": open(chain_path).read(),
                "dev.sigstore.cosign/bundle": json.dumps(rekor_bundle),
            },
        }
        config = json.dumps(
            {"architecture": "", "os": "", "rootfs": {"type": "layers", "diff_ids": [p["digest"]]}, "config": {}}
        ).encode()
        c = push_blob(reg, repo, config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **c},
            "layers": [layer],
        }
        tag = img_digest.replace(":", "-", 1) + ".sig"
        print(push_manifest(reg, repo, tag, manifest, OCI_MANIFEST)[0])
    elif cmd == "copy-manifest":
        src, to = rest
        st, _, body = req("GET", f"http://{reg}/v2/{repo}/manifests/{src}", headers={"Accept": ACCEPT})
        assert st == 200, st
        m = json.loads(body)
        print(push_manifest(reg, repo, to, m, m["mediaType"])[0])
    elif cmd == "get-manifest":
        st, _, body = req("GET", f"http://{reg}/v2/{repo}/manifests/{rest[0]}", headers={"Accept": ACCEPT})
        if st == 404:
            sys.exit(4)
        assert st == 200, st
        sys.stdout.write(body.decode())
    elif cmd == "tags":
        st, _, body = req("GET", f"http://{reg}/v2/{repo}/tags/list")
        assert st == 200, st
        for t in json.loads(body).get("tags") or []:
            print(t)
    elif cmd == "tamper-layer":
        st, _, body = req("GET", f"http://{reg}/v2/{repo}/manifests/{rest[0]}", headers={"Accept": ACCEPT})
        assert st == 200, st
        m = json.loads(body)
        ann = m["layers"][0]["annotations"]
        sig = bytearray(__import__("base64").b64decode(ann["dev.cosignproject.cosign/signature"]))
        sig[-1] ^= 1
        ann["dev.cosignproject.cosign/signature"] = __import__("base64").b64encode(bytes(sig)).decode()
        print(push_manifest(reg, repo, rest[0], m, m["mediaType"])[0])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
