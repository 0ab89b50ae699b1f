"""Helpers shared by benches/kill_trials.sh and benches/two_processes.sh.

Everything is checked from the files on disk, independently of stemflow:
markers are parsed here and every listed file is compared with a clean run.
"""
import json, os, sys

def tree(out):
    """Every file under OUT except the state folder and summary.json."""
    rows = {}
    for d, dirs, fs in os.walk(out):
        if d == out:
            dirs[:] = [x for x in dirs if x != ".stemflow"]
        for f in fs:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, out)
            if rel == "summary.json":
                continue
            rows[rel] = open(p, "rb").read()
    return rows

def incomplete(out, clean, ids):
    """Song folders of OUT that exist but are not complete by their marker
    (a listed file missing, of another size, or not the clean bytes)."""
    bad = []
    for i in ids:
        d = os.path.join(out, i)
        if not os.path.exists(d):
            continue
        try:
            m = json.load(open(os.path.join(d, ".stemflow-song")))
        except Exception as e:
            bad.append(f"{i}: marker: {e}")
            continue
        for f in m["files"]:
            p = os.path.join(d, f["path"])
            if not os.path.isfile(p) or os.path.getsize(p) != f["bytes"]:
                bad.append(f"{i}: {f['path']} missing or wrong size")
            else:
                c = os.path.join(clean, i, f["path"])
                if open(p, "rb").read() != open(c, "rb").read():
                    bad.append(f"{i}: {f['path']} differs from the clean run")
    return bad

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "incomplete":
        out, clean = sys.argv[2], sys.argv[3]
        ids = sys.argv[4].split(",")
        bad = incomplete(out, clean, ids)
        print("\n".join(bad))
        sys.exit(1 if bad else 0)
    if cmd == "same":
        a, b = tree(sys.argv[2]), tree(sys.argv[3])
        if a != b:
            diff = sorted(set(a) ^ set(b)) + [k for k in a if k in b and a[k] != b[k]]
            print("differs:", diff[:10])
            sys.exit(1)
        sys.exit(0)
    if cmd == "ok-on-disk":
        # Songs a --json summary reports ok must be complete on disk.
        out, clean, summary = sys.argv[2], sys.argv[3], sys.argv[4]
        try:
            s = json.load(open(summary))
        except Exception:
            sys.exit(0)  # a killed or failed run printed no summary
        oks = [x["id"] for x in s["songs"] if x["status"] == "ok"]
        bad = [i for i in oks if not os.path.isdir(os.path.join(out, i))]
        bad += incomplete(out, clean, oks)
        busy = sum(1 for x in s["songs"] if x["status"] == "busy")
        print(f"busy={busy}")
        if bad:
            print("reported ok but not on disk:", bad)
            sys.exit(1)
        sys.exit(0)
