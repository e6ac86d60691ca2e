#!/usr/bin/env python3
"""Times `sigstackd dev` until all five services answer /healthz: 5 starts on a new data
directory, 5 restarts on the same one.  Usage: bench-dev-startup.py PATH/TO/sigstackd"""
import subprocess, time, urllib.request, json, os, sys, shutil, statistics
B = sys.argv[1]
def ready(d):
    try:
        s = json.load(open(os.path.join(d, "stack.json")))
    except Exception:
        return False
    for k in ["log", "ca", "ctlog", "oidc", "tuf"]:
        try:
            u = s["services"][k]["url"]
            if urllib.request.urlopen(u + "/healthz", timeout=1).status != 200:
                return False
        except Exception:
            return False
    return True
def run(d):
    t = time.monotonic()
    p = subprocess.Popen([B, "dev", "--data-dir", d] + sum([[f, "0"] for f in ["--log-port","--ca-port","--ctlog-port","--oidc-port","--tuf-port","--tsa-port","--log-v2-port","--witness-port","--monitor-port"]], []),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, SIGSTACK_LOG="warn"))
    try:
        while not ready(d):
            time.sleep(0.005)
        return time.monotonic() - t
    finally:
        p.terminate(); p.wait()
first, again = [], []
for i in range(5):
    d = f"/tmp/startup-{i}"
    shutil.rmtree(d, ignore_errors=True)
    if os.path.exists(d + "/stack.json"): os.remove(d + "/stack.json")
    first.append(run(d))
    os.remove(d + "/stack.json")
    again.append(run(d))
print("first start (new data dir): median %.3f s, max %.3f s" % (statistics.median(first), max(first)))
print("restart (existing data):    median %.3f s, max %.3f s" % (statistics.median(again), max(again)))
