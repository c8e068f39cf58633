#!/usr/bin/env python3
"""Helper for recipes/data/digits.sh: an SC09-like spoken-digit corpus from
Debian's text-to-speech tools (espeak-ng, flite, festival) and sox.

Subcommands (digits.sh drives them; run `digits.sh --help` for the options):

  plan     --out DIR --seed N --reps R [--max-speakers S] [--format wav|flac]
           writes DIR/plan.tsv (one line per clip with every parameter) and
           DIR/speakers.tsv (speaker -> engine, voice, group, split)
  render   --out DIR --chunk I --nchunks K
           renders the plan lines I, I+K, I+2K, ... (xargs runs K of these)
  finalize --out DIR [--cmd "..."]
           writes DIR/splits.tsv, DIR/splits.json and DIR/MANIFEST.md

Determinism: every random choice is drawn from random.Random seeded with a
string built from (seed, speaker, word, n) -- Python's str seeding is
SHA-512 based and independent of PYTHONHASHSEED -- so the same seed gives
the same speakers, splits, file list and per-clip parameters regardless of
--max-speakers, chunking or parallelism.  A speaker's split depends only on
the seed, so a small corpus (the Assets subset) is a consistent subset of
the full one made with the same seed.

Only the Python standard library and numpy are used.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import wave

import numpy as np

SR = 16000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# espeak-ng English voices (dialects) and the voice variants (timbres) used.
# Variants that are deliberately non-human (robots, whisper, croak, ...) are
# left out.  A speaker is one (dialect, variant) pair; the *group* used for
# the split is the variant (the timbre), so one timbre never appears in two
# splits even under different accents.
ESPEAK_DIALECTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp",
                   "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3",
                   "f4", "f5", "klatt", "klatt3", "Andy", "Annie", "adam",
                   "aunty", "benjamin", "boris", "david", "edward", "grandma",
                   "grandpa", "john", "linda", "max", "michel", "norbert",
                   "quincy", "rob", "steph", "travis", "victor"]
# flite's built-in voices (awb_time is a talking clock and cannot say digits
# on their own) and festival's English voices from Debian main.  These are
# recordings of real people; the group is the person (kal, slt, ...), so
# flite's and festival's versions of one person share a split.  Each base
# voice is used at three speaker-level pitch offsets (cents).
FLITE_VOICES = [("kal", "kal"), ("kal16", "kal"), ("awb", "awb"),
                ("rms", "rms"), ("slt", "slt")]
FESTIVAL_VOICES = [("kal_diphone", "kal", "festvox-kallpc16k"),
                   ("ked_diphone", "ked", "festvox-kdlpc16k"),
                   ("cmu_us_slt_arctic_hts", "slt", "festvox-us-slt-hts")]
PITCH_OFFSETS = [("lo", -250), ("mid", 0), ("hi", 250)]

SPLIT_FRAC = (0.8, 0.1, 0.1)


def rng_for(*parts):
    return random.Random(":".join(str(p) for p in parts))


def all_speakers(seed):
    """Every speaker configuration with its base parameters and split."""
    spk = []
    for d in ESPEAK_DIALECTS:
        for v in ESPEAK_VARIANTS:
            name = "es_%s_%s" % (d.replace("-", ""), v.lower())
            r = rng_for(seed, "speaker", name)
            spk.append(dict(speaker=name, engine="espeak-ng", voice="%s+%s" % (d, v),
                            group="espeak:" + v, family="espeak",
                            rate=r.randint(135, 185), pitch=r.randint(30, 70),
                            cents=0))
    for v, person in FLITE_VOICES:
        for tag, cents in PITCH_OFFSETS:
            spk.append(dict(speaker="fl_%s_%s" % (v, tag), engine="flite", voice=v,
                            group="person:" + person, family="recorded",
                            rate=0, pitch=0, cents=cents))
    for v, person, _pkg in FESTIVAL_VOICES:
        short = v.split("_")[0] if v.endswith("diphone") else "slthts"
        for tag, cents in PITCH_OFFSETS:
            spk.append(dict(speaker="fe_%s_%s" % (short, tag), engine="festival", voice=v,
                            group="person:" + person, family="recorded",
                            rate=0, pitch=0, cents=cents))
    # split by group, stratified by family (synthetic espeak timbres vs.
    # recorded persons), shuffled with the seed
    split_of_group = {}
    for fam in ("espeak", "recorded"):
        groups = sorted({s["group"] for s in spk if s["family"] == fam})
        rng_for(seed, "split", fam).shuffle(groups)
        n = len(groups)
        n_test = max(1, round(n * SPLIT_FRAC[2]))
        n_valid = max(1, round(n * SPLIT_FRAC[1]))
        for i, g in enumerate(groups):
            split_of_group[g] = "test" if i < n_test else ("valid" if i < n_test + n_valid else "train")
    for s in spk:
        s["split"] = split_of_group[s["group"]]
    return spk


def select_speakers(spk, seed, max_speakers):
    """A split-balanced, engine-mixed subset of max_speakers speakers."""
    if not max_speakers or max_speakers >= len(spk):
        return spk
    chosen = []
    n_valid = max(1, round(max_speakers * SPLIT_FRAC[1]))
    n_test = max(1, round(max_speakers * SPLIT_FRAC[2]))
    wants = {"train": max(1, max_speakers - n_valid - n_test), "valid": n_valid, "test": n_test}
    for split in ("train", "valid", "test"):
        want = wants[split]
        pool = [s for s in spk if s["split"] == split]
        rng_for(seed, "select", split).shuffle(pool)
        # round-robin over groups so a small subset still has many timbres,
        # recorded persons first (they are rarer)
        by_group = {}
        for s in pool:
            by_group.setdefault(s["group"], []).append(s)
        order = sorted(by_group, key=lambda g: (not g.startswith("person:"),
                                                rng_for(seed, "gorder", g).random()))
        picked = []
        while len(picked) < min(want, len(pool)):
            for g in order:
                if by_group[g] and len(picked) < want:
                    picked.append(by_group[g].pop(0))
        chosen += picked
    names = {s["speaker"] for s in chosen}
    return [s for s in spk if s["speaker"] in names]


def utterance_params(seed, s, word, n):
    r = rng_for(seed, "utt", s["speaker"], word, n)
    p = dict(speaker=s["speaker"], word=word, n=n)
    p["rate"] = int(round(s["rate"] * r.uniform(0.88, 1.12))) if s["engine"] == "espeak-ng" else 0
    p["pitch"] = max(0, min(99, s["pitch"] + r.randint(-10, 10))) if s["engine"] == "espeak-ng" else 0
    p["stretch"] = round(r.uniform(0.85, 1.2), 3)        # flite / festival diphone durations
    p["f0"] = round(r.uniform(0.9, 1.1), 3)              # flite f0 mean factor
    p["cents"] = s["cents"] + r.randint(-60, 60)         # sox pitch (speaker offset + jitter)
    p["tempo"] = round(r.uniform(0.92, 1.08), 3)         # sox tempo
    if r.random() < 0.6:                                 # light room reverb
        p["reverb"] = "%d %d %d 100 %d %d" % (r.randint(5, 35), r.randint(30, 70),
                                              r.randint(5, 40), r.randint(0, 8),
                                              r.randint(-8, -3))
    else:
        p["reverb"] = "-"
    p["peak_db"] = round(r.uniform(-12.0, -1.5), 2)       # final peak level
    p["snr_db"] = round(r.uniform(28.0, 50.0), 1)         # noise vs. speech RMS
    p["noise"] = r.choice(["white", "pink", "brown"])
    p["pos"] = round(r.random(), 4)                       # position of the word in the free space
    p["noise_seed"] = r.getrandbits(32)
    return p


PLAN_COLS = ["path", "speaker", "word", "n", "split", "engine", "voice", "rate", "pitch",
             "stretch", "f0", "cents", "tempo", "reverb", "peak_db", "snr_db", "noise",
             "pos", "noise_seed", "bits"]


def cmd_plan(a):
    spk = select_speakers(all_speakers(a.seed), a.seed, a.max_speakers)
    os.makedirs(a.out, exist_ok=True)
    ext = a.format
    with open(os.path.join(a.out, "speakers.tsv"), "w") as f:
        f.write("speaker\tengine\tvoice\tgroup\tsplit\tbase_rate\tbase_pitch\tpitch_offset_cents\n")
        for s in spk:
            f.write("%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n" % (s["speaker"], s["engine"], s["voice"],
                                                          s["group"], s["split"], s["rate"],
                                                          s["pitch"], s["cents"]))
    rows = []
    for s in spk:
        for w in WORDS:
            for n in range(a.reps):
                p = utterance_params(a.seed, s, w, n)
                p.update(path="%s/%s_%d.%s" % (w, s["speaker"], n, ext), split=s["split"],
                         engine=s["engine"], voice=s["voice"], bits=a.bits)
                rows.append(p)
    with open(os.path.join(a.out, "plan.tsv"), "w") as f:
        f.write("\t".join(PLAN_COLS) + "\n")
        for p in rows:
            f.write("\t".join(str(p[c]) for c in PLAN_COLS) + "\n")
    with open(os.path.join(a.out, "plan.json"), "w") as f:
        json.dump(dict(seed=a.seed, reps=a.reps, max_speakers=a.max_speakers,
                       format=a.format, bits=a.bits), f)
    print("planned %d clips from %d speakers" % (len(rows), len(spk)))


def read_plan(out):
    with open(os.path.join(out, "plan.tsv")) as f:
        cols = f.readline().rstrip("\n").split("\t")
        return [dict(zip(cols, line.rstrip("\n").split("\t"))) for line in f]


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
        return x, w.getframerate()


def reduce_precision(y, bits, rng):
    """Round 16-bit samples to `bits` bits of precision (multiples of
    2**(16-bits), TPDF dither), still stored as 16-bit: FLAC's wasted-bits
    coding then spends only `bits` bits per sample."""
    if bits >= 16:
        return y
    q = float(2 ** (16 - bits))
    d = (rng.random(len(y)) - rng.random(len(y))) * q
    z = np.round((y.astype(np.float64) + d) / q) * q
    return np.clip(z, -32768, 32768 - q).astype("<i2")


def write_wav(path, x, bits=16, rng=None):
    y = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    if bits < 16:
        y = reduce_precision(y, bits, rng)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(y.tobytes())


def run(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def tts(p, raw):
    word = p["word"]
    if p["engine"] == "espeak-ng":
        run(["espeak-ng", "-v", p["voice"], "-s", p["rate"], "-p", p["pitch"], "-w", raw, word])
    elif p["engine"] == "flite":
        # flite's f0 target mean: the voice's own mean scaled by f0 factor;
        # 'kal' voices ~105 Hz, awb/rms ~110 Hz, slt ~170 Hz
        base = 170.0 if p["voice"] == "slt" else 108.0
        run(["flite", "-voice", p["voice"], "-t", word, "--setf",
             "duration_stretch=%s" % p["stretch"], "--setf",
             "int_f0_target_mean=%.1f" % (base * float(p["f0"])), "-o", raw])
    elif p["engine"] == "festival":
        ev = ["-eval", "(voice_%s)" % p["voice"]]
        if p["voice"].endswith("diphone"):
            ev += ["-eval", "(Parameter.set 'Duration_Stretch %s)" % p["stretch"]]
        subprocess.run(["text2wave", "-o", raw] + ev, input=word.encode(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    else:
        raise ValueError(p["engine"])


def frame_rms(x, hop=160):
    n = len(x) // hop
    return np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)


def trim(x, rel_db=-40.0, pad=160):
    """Cut leading/trailing silence: keep from the first to the last 10 ms
    frame within rel_db of the loudest frame, plus pad samples."""
    fr = frame_rms(x)
    act = np.nonzero(fr > fr.max() * 10 ** (rel_db / 20))[0]
    a = max(0, act[0] * 160 - pad)
    b = min(len(x), (act[-1] + 1) * 160 + pad)
    return x[a:b]


def coloured_noise(kind, n, rng):
    """Unit-RMS white, pink (sum of three one-pole lowpasses, after Paul
    Kellet's economy filter) or brown (leaky integrator) noise."""
    w = rng.standard_normal(n + 2048)
    if kind == "pink":
        y = 0.1848 * w
        for a_, g in ((0.99765, 0.0990460), (0.96300, 0.2965164), (0.57000, 1.0526913)):
            y = y + g * lfilter1(w, a_)
        w = y
    elif kind == "brown":
        w = lfilter1(w, 0.98)
    w = w[2048:]
    return w / (np.sqrt(np.mean(w ** 2)) + 1e-12)


def lfilter1(x, a):
    """y[n] = a*y[n-1] + x[n], via blocks of exact closed form (numpy only)."""
    y = np.empty_like(x)
    acc = 0.0
    B = 512
    k = np.arange(B)
    pw = a ** k
    for i in range(0, len(x), B):
        blk = x[i:i + B]
        m = len(blk)
        # y[i+j] = a^(j+1)*acc + sum_{t<=j} a^(j-t) x[t]
        conv = np.convolve(blk, pw[:m])[:m]
        y[i:i + m] = conv + acc * pw[:m] * a
        acc = y[i + m - 1]
    return y


def render_one(p, out, tmp):
    raw = os.path.join(tmp, "raw.wav")
    mid = os.path.join(tmp, "mid.wav")
    tts(p, raw)
    tempo = float(p["tempo"])
    for attempt in range(4):
        chain = ["sox", "-R", "-V1", raw, "-r", str(SR), "-c", "1", "-b", "16", mid,
                 "highpass", "60", "pitch", p["cents"], "tempo", "-s", "%.4f" % tempo]
        if p["reverb"] != "-":
            chain += ["reverb"] + p["reverb"].split()
        chain += ["rate", "-v", str(SR), "gain", "-n", "-3"]
        run(chain)
        x, sr = read_wav(mid)
        assert sr == SR
        x = trim(x)
        if len(x) <= int(0.92 * SR):
            break
        tempo *= len(x) / (0.88 * SR)   # too long for the second: speak faster
    else:
        x = x[: int(0.92 * SR)]
        x *= np.concatenate([np.ones(len(x) - 480), np.linspace(1, 0, 480)])
    # place in the second like SC09: somewhere between 30 ms margins
    margin = int(0.03 * SR)
    free = SR - len(x) - 2 * margin
    start = margin + int(round(float(p["pos"]) * max(0, free)))
    y = np.zeros(SR)
    y[start:start + len(x)] = x
    # level, then background noise at the planned SNR (relative to speech RMS)
    peak = np.max(np.abs(y)) + 1e-12
    y *= 10 ** (float(p["peak_db"]) / 20) / peak
    speech_rms = np.sqrt(np.mean(x ** 2)) * 10 ** (float(p["peak_db"]) / 20) / peak
    rng = np.random.default_rng(int(p["noise_seed"]))
    y += coloured_noise(p["noise"], SR, rng) * speech_rms * 10 ** (-float(p["snr_db"]) / 20)
    dst = os.path.join(out, p["path"])
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    bits = int(p.get("bits", 16))
    if dst.endswith(".wav"):
        write_wav(dst, y, bits, rng)
    else:
        tmpw = os.path.join(tmp, "final.wav")
        write_wav(tmpw, y, bits, rng)
        run(["sox", "-R", "-V1", tmpw, "-b", "16", dst])


def cmd_render(a):
    plan = read_plan(a.out)
    mine = plan[a.chunk::a.nchunks]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="digits-") as tmp:
        for p in mine:
            try:
                render_one(p, a.out, tmp)
            except Exception as e:  # report, keep going; finalize lists the misses
                failed += 1
                msg = e.stderr.decode(errors="replace") if hasattr(e, "stderr") and e.stderr else str(e)
                sys.stderr.write("FAILED %s: %s\n" % (p["path"], msg.strip()[:300]))
    if failed:
        sys.exit(1)


def tool_versions():
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            txt = (r.stdout or r.stderr).strip().splitlines()
            return txt[0] if txt else "?"
        except FileNotFoundError:
            return "missing"

    def deb(pkg):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "not installed"
    pkgs = ["espeak-ng", "espeak-ng-data", "flite", "festival", "sox"] + [f[2] for f in FESTIVAL_VOICES]
    return {p: deb(p) for p in pkgs}, {"python3": sys.version.split()[0], "numpy": np.__version__}


def cmd_finalize(a):
    plan = read_plan(a.out)
    meta = json.load(open(os.path.join(a.out, "plan.json")))
    present = [p for p in plan if os.path.exists(os.path.join(a.out, p["path"]))]
    missing = [p["path"] for p in plan if not os.path.exists(os.path.join(a.out, p["path"]))]
    spk = {}
    with open(os.path.join(a.out, "speakers.tsv")) as f:
        cols = f.readline().rstrip("\n").split("\t")
        for line in f:
            d = dict(zip(cols, line.rstrip("\n").split("\t")))
            spk[d["speaker"]] = d
    with open(os.path.join(a.out, "splits.tsv"), "w") as f:
        f.write("path\tsplit\tword\tspeaker\tgroup\n")
        for p in present:
            f.write("%s\t%s\t%s\t%s\t%s\n" % (p["path"], p["split"], p["word"], p["speaker"],
                                              spk[p["speaker"]]["group"]))
    splits = {}
    for sp in ("train", "valid", "test"):
        ss = sorted({p["speaker"] for p in present if p["split"] == sp})
        splits[sp] = dict(speakers=ss,
                          groups=sorted({spk[s]["group"] for s in ss}),
                          files=[p["path"] for p in present if p["split"] == sp])
    with open(os.path.join(a.out, "splits.json"), "w") as f:
        json.dump(dict(kind="digits", sample_rate=SR, seed=meta["seed"], words=WORDS,
                       splits=splits), f, indent=1)
    debs, py = tool_versions()
    engines = {}
    for s in spk.values():
        engines.setdefault(s["engine"], set()).add(s["voice"])
    lines = ["# Spoken-digit corpus (SC09-like)", "",
             "Made by `recipes/data/digits.sh` (helper `digits.py`) from Debian's",
             "text-to-speech tools; no recorded speech is used.", "",
             "Command: `%s`" % (a.cmd or "(not recorded)"), "",
             "- seed: %d, repetitions per speaker and word: %d, speaker cap: %s"
             % (meta["seed"], meta["reps"], meta["max_speakers"] or "none (all)"),
             "- clips: %d (%s, 16 kHz, mono, 16-bit, exactly 16000 frames)"
             % (len(present), meta["format"].upper()),
             "- sample precision: %d bits%s" % (meta.get("bits", 16), "" if meta.get("bits", 16) >= 16
                 else " (16-bit samples rounded to multiples of %d with TPDF dither, so that FLAC's"
                      " wasted-bits coding stores %d bits per sample)"
                 % (2 ** (16 - meta["bits"]), meta["bits"])),
             "- speakers (voice configurations): %d; split groups (timbres / persons): %d"
             % (len(spk), len({s["group"] for s in spk.values()})),
             "- layout: `<word>/<speaker>_<n>.%s`; `splits.tsv` / `splits.json` give each"
             " file's split, speaker and group; `speakers.tsv` the voice of each speaker;"
             " `plan.tsv` every per-clip parameter." % meta["format"], ""]
    lines += ["| split | speakers | groups | clips |", "|---|---|---|---|"]
    for sp in ("train", "valid", "test"):
        lines.append("| %s | %d | %d | %d |" % (sp, len(splits[sp]["speakers"]),
                                             len(splits[sp]["groups"]), len(splits[sp]["files"])))
    lines += ["", "Clips per word: " + ", ".join(
        "%s %d" % (w, sum(1 for p in present if p["word"] == w)) for w in WORDS), ""]
    lines += ["Voices by engine:", ""]
    for e in sorted(engines):
        vs = sorted(engines[e])
        if e == "espeak-ng":
            dia = sorted({v.split("+")[0] for v in vs})
            var = sorted({v.split("+")[1] for v in vs}, key=str.lower)
            lines.append("- espeak-ng (%d configurations): dialects %s x variants %s"
                         % (len(vs), ", ".join(dia), ", ".join(var)))
        else:
            lines.append("- %s (%d): %s" % (e, len(vs), ", ".join(vs)))
    lines += ["", "Split groups:", ""]
    for sp in ("train", "valid", "test"):
        lines.append("- %s: %s" % (sp, ", ".join(splits[sp]["groups"])))
    lines += ["", "Per-clip variation (seeded): TTS rate/pitch (espeak-ng), duration stretch",
              "(flite, festival diphone voices), f0 mean (flite), sox pitch shift (speaker",
              "offset of -250/0/+250 cents for flite/festival voices plus +-60 cents jitter),",
              "sox tempo 0.92-1.08, light sox reverb on 60 % of clips, peak level -12..-1.5",
              "dBFS, white/pink/brown background noise at 28-50 dB SNR. Silence is trimmed",
              "(-40 dB re. loudest 10 ms frame) and the word placed at a seeded position",
              "between 30 ms margins within the second.", "",
              "Tool versions (Debian packages): " + ", ".join("%s %s" % kv for kv in debs.items())
              + "; " + ", ".join("%s %s" % kv for kv in py.items()) + "."]
    if missing:
        lines += ["", "Missing (failed) clips: %d: %s" % (len(missing), ", ".join(missing[:20]))]
    with open(os.path.join(a.out, "MANIFEST.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("finalized: %d clips, %d missing" % (len(present), len(missing)))
    if missing:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--max-speakers", type=int, default=0)
    p.add_argument("--format", choices=["wav", "flac"], default="wav")
    p.add_argument("--bits", type=int, default=16, choices=range(8, 17), metavar="8..16",
                   help="sample precision (stored as 16-bit; fewer bits compress better as FLAC)")
    p = sub.add_parser("render")
    p.add_argument("--out", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--nchunks", type=int, required=True)
    p = sub.add_parser("finalize")
    p.add_argument("--out", required=True)
    p.add_argument("--cmd", default="")
    a = ap.parse_args()
    {"plan": cmd_plan, "render": cmd_render, "finalize": cmd_finalize}[a.sub](a)


if __name__ == "__main__":
    main()
