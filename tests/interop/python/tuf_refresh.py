#!/usr/bin/env python3
"""python-tuf's ngclient (the TUF client sigstore-python uses) against a repository.

    tuf_refresh.py BASE_URL ROOT_JSON METADATA_DIR TARGET_DIR [TARGET ...]

Bootstraps from ROOT_JSON (unless METADATA_DIR already holds trusted metadata from an
earlier run, as a client's cache does), refreshes, downloads each TARGET (default:
trusted_root.json and signing_config.v0.2.json) and prints one JSON line with the
trusted root version and each target's path. Exits 1 with the error when the client
refuses the repository.
"""
import json
import sys
from pathlib import Path

from tuf.ngclient import Updater, UpdaterConfig


def main() -> int:
    base, root, meta_dir, target_dir = sys.argv[1:5]
    names = sys.argv[5:] or ["trusted_root.json", "signing_config.v0.2.json"]
    Path(meta_dir).mkdir(parents=True, exist_ok=True)
    Path(target_dir).mkdir(parents=True, exist_ok=True)
    cached = Path(meta_dir) / "root.json"
    bootstrap = None if cached.exists() else Path(root).read_bytes()
    try:
        u = Updater(
            metadata_dir=meta_dir,
            metadata_base_url=f"{base}/",
            target_base_url=f"{base}/targets/",
            target_dir=target_dir,
            config=UpdaterConfig(app_user_agent="sigstack-tests/1"),
            bootstrap=bootstrap,
        )
        u.refresh()
        out = {"root_version": u._trusted_set.root.version, "targets": {}}
        for name in names:
            info = u.get_targetinfo(name)
            if info is None:
                raise RuntimeError(f"no target {name}")
            path = u.find_cached_target(info) or u.download_target(info)
            out["targets"][name] = path
    except Exception as e:  # the client's refusal is the result
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
