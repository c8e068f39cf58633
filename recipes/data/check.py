#!/usr/bin/env python3
"""Verify a corpus made by digits.sh or piano.sh (or the Assets subsets).

    python3 recipes/data/check.py DIR --kind digits|piano [--quiet]

WAV is read with the standard library's `wave`; FLAC with `soundfile` when it
is installed (PyPI `soundfile`), otherwise decoded by `sox`.  numpy is used
for the arithmetic.  Exit status 0 when every check passes.

digits (SC09-like):
  - every file: 16 kHz, mono, exactly 16000 frames
  - label folders are exactly the ten words zero ... nine
  - non-silent: whole-clip RMS >= -45 dBFS and loudest 10 ms frame >= -35 dBFS
  - the word lies inside the second: the first and the last 10 ms frame are
    each at least 20 dB below the loudest 10 ms frame, and no sample in them
    reaches -20 dBFS
  - splits.json (or splits.tsv) lists every file exactly once; the speakers
    (and the voice groups, where given) of train / valid / test are disjoint
piano:
  - every file: 16 kHz, mono, at least 1 s long
  - non-silent: whole-file RMS >= -45 dBFS, and no more than 20 % of its
    1 s windows below -60 dBFS
  - splits.json / splits.tsv lists every file; pieces of the splits are disjoint
  - total duration per split is reported
"""
import argparse
import json
import os
import subprocess
import sys
import wave

import numpy as np

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RMS_FLOOR_DB = -45.0
FRAME_FLOOR_DB = -35.0
EDGE_REL_DB = -20.0
EDGE_PEAK_DB = -20.0


def db(x):
    return 20 * np.log10(max(float(x), 1e-12))


def read_audio(path):
    """-> (float samples in [-1, 1] of channel 0, sample rate, channels, frames)"""
    if path.endswith(".wav"):
        with wave.open(path, "rb") as w:
            sr, ch, sw, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            raw = w.readframes(n)
        if sw == 2:
            x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
        elif sw == 1:
            x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
        else:
            raise ValueError("%s: %d-byte samples" % (path, sw))
        return x.reshape(-1, ch)[:, 0], sr, ch, n
    try:
        import soundfile as sf
        x, sr = sf.read(path, dtype="float64", always_2d=True)
        return x[:, 0], sr, x.shape[1], x.shape[0]
    except ImportError:
        info = subprocess.run(["soxi", path], capture_output=True, text=True, check=True).stdout
        sr = int(float(_field(info, "Sample Rate")))
        ch = int(_field(info, "Channels"))
        raw = subprocess.run(["sox", "-V1", path, "-t", "raw", "-e", "signed", "-b", "16", "-"],
                             capture_output=True, check=True).stdout
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64).reshape(-1, ch) / 32768.0
        return x[:, 0], sr, ch, x.shape[0]


def _field(info, name):
    for line in info.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def audio_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if f.endswith((".wav", ".flac")):
                out.append(os.path.relpath(os.path.join(d, f), root))
    return out


def load_splits(root):
    """-> {path: row dict with at least 'split'} from splits.tsv or splits.json"""
    tsv = os.path.join(root, "splits.tsv")
    if os.path.exists(tsv):
        with open(tsv) as f:
            cols = f.readline().rstrip("\n").split("\t")
            rows = [dict(zip(cols, line.rstrip("\n").split("\t"))) for line in f if line.strip()]
        return {r["path"]: r for r in rows}
    js = os.path.join(root, "splits.json")
    if os.path.exists(js):
        d = json.load(open(js))
        return {p: {"split": sp} for sp, v in d["splits"].items() for p in v["files"]}
    return None


def frame_rms(x, hop):
    n = len(x) // hop
    return np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))


def check_digits(root, files, errors, quiet):
    words = sorted({f.split(os.sep)[0] for f in files})
    if sorted(words) != sorted(WORDS) or any(f.count(os.sep) != 1 for f in files):
        errors.append("label folders are %s, expected exactly the ten words" % words)
    stats = dict(rms=[], edge=[])
    for f in files:
        x, sr, ch, n = read_audio(os.path.join(root, f))
        bad = []
        if sr != 16000:
            bad.append("rate %d" % sr)
        if ch != 1:
            bad.append("%d channels" % ch)
        if n != 16000:
            bad.append("%d frames" % n)
        fr = frame_rms(x, 160)
        rms = db(np.sqrt(np.mean(x ** 2)))
        top = db(fr.max()) if len(fr) else -240
        stats["rms"].append(rms)
        if rms < RMS_FLOOR_DB or top < FRAME_FLOOR_DB:
            bad.append("silent (RMS %.1f dBFS, loudest frame %.1f dBFS)" % (rms, top))
        if len(fr):
            edge = max(db(fr[0]), db(fr[-1])) - top
            edge_peak = db(max(np.abs(x[:160]).max(), np.abs(x[-160:]).max()))
            stats["edge"].append(edge)
            if edge > EDGE_REL_DB or edge_peak > EDGE_PEAK_DB:
                bad.append("speech at the edges (edge frame %.1f dB re. loudest, edge peak %.1f dBFS)"
                           % (edge, edge_peak))
        if bad:
            errors.append("%s: %s" % (f, "; ".join(bad)))
    return stats


def check_piano(root, files, errors, quiet):
    stats = dict(seconds={}, rms=[])
    for f in files:
        x, sr, ch, n = read_audio(os.path.join(root, f))
        bad = []
        if sr != 16000:
            bad.append("rate %d" % sr)
        if ch != 1:
            bad.append("%d channels" % ch)
        if n < sr:
            bad.append("shorter than 1 s (%d frames)" % n)
        rms = db(np.sqrt(np.mean(x ** 2)))
        stats["rms"].append(rms)
        if rms < RMS_FLOOR_DB:
            bad.append("silent (RMS %.1f dBFS)" % rms)
        win = frame_rms(x, sr) if n >= sr else np.array([np.sqrt(np.mean(x ** 2))])
        quiet_frac = float(np.mean(20 * np.log10(np.maximum(win, 1e-12)) < -60))
        if quiet_frac > 0.2:
            bad.append("%.0f %% of 1 s windows below -60 dBFS" % (100 * quiet_frac))
        stats["seconds"][f] = n / float(sr)
        if bad:
            errors.append("%s: %s" % (f, "; ".join(bad)))
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--kind", choices=["digits", "piano"], required=True)
    ap.add_argument("--quiet", action="store_true", help="print only the summary")
    a = ap.parse_args()
    root = a.dir
    errors = []
    files = audio_files(root)
    if not files:
        print("FAIL: no .wav/.flac files under %s" % root)
        return 1
    if a.kind == "digits":
        stats = check_digits(root, files, errors, a.quiet)
    else:
        stats = check_piano(root, files, errors, a.quiet)

    # splits: every file listed once, speakers / groups / pieces disjoint
    rows = load_splits(root)
    per_split = {}
    if rows is None:
        errors.append("no splits.tsv or splits.json in %s" % root)
    else:
        fs = set(files)
        unlisted = sorted(fs - set(rows))
        absent = sorted(set(rows) - fs)
        if unlisted:
            errors.append("%d files not in the splits file, e.g. %s" % (len(unlisted), unlisted[:3]))
        if absent:
            errors.append("%d listed files missing, e.g. %s" % (len(absent), absent[:3]))
        keys = ["speaker", "group"] if a.kind == "digits" else ["piece"]
        for p, r in rows.items():
            if r["split"] not in ("train", "valid", "test"):
                errors.append("%s: unknown split %r" % (p, r["split"]))
            if a.kind == "piano" and "piece" not in r:
                r["piece"] = os.path.basename(p).rsplit("_v", 1)[0]
            if a.kind == "digits" and "speaker" not in r:
                r["speaker"] = os.path.basename(p).rsplit("_", 1)[0]
            per_split.setdefault(r["split"], []).append(r)
        for k in keys:
            sets = {sp: {r[k] for r in rr if k in r} for sp, rr in per_split.items()}
            sps = sorted(sets)
            for i in range(len(sps)):
                for j in range(i + 1, len(sps)):
                    common = sets[sps[i]] & sets[sps[j]]
                    if common:
                        errors.append("%s shared by %s and %s: %s" % (k, sps[i], sps[j], sorted(common)[:5]))
        if a.kind == "digits":
            for p, r in rows.items():
                if p in fs and "speaker" in r and not os.path.basename(p).startswith(r["speaker"] + "_"):
                    errors.append("%s: file name does not start with its speaker %s" % (p, r["speaker"]))

    # summary
    print("%s corpus %s: %d files" % (a.kind, root, len(files)))
    if a.kind == "digits":
        r = np.array(stats["rms"])
        e = np.array(stats["edge"])
        print("  clip RMS dBFS: min %.1f, median %.1f, max %.1f (floor %.0f)"
              % (r.min(), np.median(r), r.max(), RMS_FLOOR_DB))
        print("  louder edge frame re. loudest frame: max %.1f dB, median %.1f dB (limit %.0f)"
              % (e.max(), np.median(e), EDGE_REL_DB))
        print("  per word: " + ", ".join("%s %d" % (w, sum(1 for f in files if f.startswith(w + os.sep)))
                                        for w in WORDS))
        for sp in ("train", "valid", "test"):
            rr = per_split.get(sp, [])
            print("  %-5s: %4d clips, %3d speakers, %2d groups" % (
                sp, len(rr), len({x.get("speaker") for x in rr}), len({x.get("group") for x in rr})))
    else:
        secs = stats["seconds"]
        r = np.array(stats["rms"])
        print("  total %.1f min (%.2f h); file RMS dBFS min %.1f, median %.1f (floor %.0f)"
              % (sum(secs.values()) / 60, sum(secs.values()) / 3600, r.min(), np.median(r), RMS_FLOOR_DB))
        for sp in ("train", "valid", "test"):
            rr = per_split.get(sp, [])
            print("  %-5s: %4d files, %3d pieces, %6.1f min" % (
                sp, len(rr), len({x.get("piece") for x in rr}),
                sum(secs.get(x["path"] if "path" in x else "", 0) for x in rr) / 60
                if rr and "path" in rr[0] else 0.0))
    if errors:
        print("FAIL: %d problem(s)" % len(errors))
        for e in errors[: (10 if a.quiet else 200)]:
            print("  - " + e)
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
