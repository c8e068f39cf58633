#!/usr/bin/env python3
"""Helper for recipes/data/piano.sh: a YouTubeMix-like solo-piano corpus
rendered from music21's bundled scores with fluidsynth and Debian soundfonts.

Subcommands (piano.sh drives them; run `piano.sh --help` for the options):

  plan      --out DIR --seed N --minutes M [--variants V] [--clip S --clips-per-piece K]
            [--jobs J] [--format wav|flac]
            parses scores in a fixed order, assigns each piece a split from
            the seed, fills each split's share of M minutes, writes the note
            lists to DIR/.work/<piece>.json and the jobs to DIR/plan.tsv
  render    --out DIR --job LINE   renders one plan line (xargs runs J at once)
  finalize  --out DIR [--cmd "..."]  splits.tsv, splits.json, MANIFEST.md
  inventory [--jobs J]  parses every candidate score and prints its duration

Scores: music21's corpus (PyPI `music21`, bundled, offline).  Candidates in
priority order: (1) keyboard works and songs with piano (Joplin, Chopin,
Schoenberg op. 19, C. P. E. Bach, Mozart K. 545, Clara Schumann, ...), then
(2) string quartets and other ensemble movements (Beethoven, Haydn, Mozart,
R. Schumann, ...) interleaved with (3) Bach's four-part chorales.  Every part
is played on General MIDI program 0 (acoustic grand piano), one MIDI channel
per part.

Determinism: the split of a piece and each variant's parameters (tempo
factor, base velocity, soundfont, reverb, level, per-note velocity and onset
jitter) come from random.Random seeded with strings of (seed, piece,
variant), so they do not depend on --minutes, --jobs or the order of
rendering; a small corpus with the same seed holds pieces in the same splits
as the full one.  Only the standard library, numpy and music21 are used.
"""
import argparse
import json
import multiprocessing as mp
import os
import random
import struct
import subprocess
import sys
import tempfile
import wave

import numpy as np

SR = 16000
RENDER_SR = 44100
SPLIT_FRAC = {"train": 0.8, "valid": 0.1, "test": 0.1}

KEYBOARD = [
    "joplin/maple_leaf_rag.mxl",
    "chopin/mazurka06-2.krn",
    "mozart/k545/movement1_exposition.mxl",
    "cpebach/h186.mxl",
    "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
    "schumann_clara/opus17/movement3.xml",
    "beach/prayer_of_a_tired_child.musicxml",
    "schubert/Lindenbaum.xml",
    "schumann_robert/dichterliebe_no2.xml",
    "liliuokalani/aloha_oe.mxl",
    "johnson_j_r/lift_every_voice.mxl",
    "leadSheet/berlinAlexandersRagtime.mxl",
    "handel/rinaldo/Lascia_chio_pianga.mxl",
    "verdi/laDonnaEMobile.mxl",
    "corelli/opus3no1/1grave.xml",
]
ENSEMBLE_DIRS = ["beethoven", "haydn", "mozart", "schumann_robert", "weber"]
DEFAULT_QPM = {"keyboard": 100.0, "ensemble": 120.0, "chorale": 76.0}
SOUNDFONTS = [  # (file, Debian package)
    ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
    ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
    ("/usr/share/sounds/sf3/MuseScore_General_Full.sf3", "musescore-general-soundfont"),
]


def rng_for(*parts):
    return random.Random(":".join(str(p) for p in parts))


def piece_id(path):
    stem = path.rsplit(".", 1)[0]
    return stem.replace("/", "-").replace(".", "_")


def candidates():
    """(category, corpus path) in priority order."""
    from music21 import corpus
    core = sorted(str(p).split("/corpus/")[-1] for p in corpus.getCorePaths())
    kb = [p for p in KEYBOARD if p in core]
    ens = [p for p in core if p.split("/")[0] in ENSEMBLE_DIRS and p.endswith(".mxl")
           and p not in KEYBOARD and "k545" not in p and "dichterliebe" not in p]
    chor = [p for p in core if p.startswith("bach/bwv") and p.endswith(".mxl")]
    out = [("keyboard", p) for p in kb]
    # interleave: one ensemble movement, then three chorales
    i = j = 0
    while i < len(ens) or j < len(chor):
        if i < len(ens):
            out.append(("ensemble", ens[i]))
            i += 1
        for _ in range(3):
            if j < len(chor):
                out.append(("chorale", chor[j]))
                j += 1
    return out


def split_of(seed, pid):
    u = rng_for(seed, "split", pid).random()
    return "test" if u < SPLIT_FRAC["test"] else (
        "valid" if u < SPLIT_FRAC["test"] + SPLIT_FRAC["valid"] else "train")


def score_notes(cat_path):
    """Parse a score: ([(start_s, dur_s, midi, part)], seconds) at the
    score's own tempo (category default where it has none)."""
    cat, path = cat_path
    try:
        from music21 import corpus, tempo
        s = corpus.parse(path)
        # tempo map: numbered metronome marks only, clamped to 40..240 qpm
        marks = []
        for mm in s.flatten().getElementsByClass(tempo.MetronomeMark):
            if mm.number:
                qpm = float(mm.number) * float(mm.referent.quarterLength)
                marks.append((float(mm.offset), min(240.0, max(40.0, qpm))))
        marks.sort()
        if not marks or marks[0][0] > 0:
            marks.insert(0, (0.0, marks[0][1] if marks else DEFAULT_QPM[cat]))
        starts = np.array([m[0] for m in marks])
        qpms = np.array([m[1] for m in marks])
        sec_at = np.concatenate([[0.0], np.cumsum(np.diff(starts) * 60.0 / qpms[:-1])])

        def to_sec(ql):
            k = int(np.searchsorted(starts, ql, side="right") - 1)
            return float(sec_at[k] + (ql - starts[k]) * 60.0 / qpms[k])

        parts = list(s.parts) if s.parts else [s]
        notes = []
        for pi, part in enumerate(parts):
            open_ties = {}   # midi -> index of the sounding note a tie continues
            for n in part.flatten().notes:
                if n.duration.isGrace:
                    continue
                off = float(n.offset)
                ql = float(n.quarterLength)
                if ql <= 0:
                    continue
                t0, t1 = to_sec(off), to_sec(off + ql)
                subs = list(n.notes) if n.isChord else [n]
                for sn in subs:
                    if not hasattr(sn, "pitch"):
                        continue
                    m = int(sn.pitch.midi)
                    if not 21 <= m <= 108:
                        continue
                    tie = sn.tie if sn.tie is not None else n.tie
                    kind = tie.type if tie is not None else None
                    if kind in ("stop", "continue") and m in open_ties:
                        k = open_ties[m]          # tied on: lengthen, no new attack
                        notes[k][1] = round(t1 - notes[k][0], 4)
                        if kind == "stop":
                            del open_ties[m]
                        continue
                    notes.append([round(t0, 4), round(t1 - t0, 4), m, pi])
                    if kind == "start":
                        open_ties[m] = len(notes) - 1
                    else:
                        open_ties.pop(m, None)
        if not notes:
            return cat_path, None, 0.0, "no notes"
        notes = sorted(tuple(x) for x in notes)
        end = max(a + d for a, d, _, _ in notes)
        return cat_path, notes, end, ""
    except Exception as e:  # some corpus files do not parse: skip them
        return cat_path, None, 0.0, "%s: %s" % (type(e).__name__, e)


def variant_params(seed, pid, v, n_sf):
    r = rng_for(seed, "variant", pid, v)
    sf0 = rng_for(seed, "sf", pid).randrange(n_sf)
    return dict(variant="v%d" % v,
                tempo=round(r.uniform(0.88, 1.12), 3),
                velocity=r.randint(52, 92),
                vel_jitter=round(r.uniform(3, 9), 1),
                onset_jitter_ms=round(r.uniform(2, 8), 1),
                soundfont=(sf0 + v) % n_sf,       # variants of a piece cycle soundfonts
                room=round(r.uniform(0.2, 0.75), 2),
                reverb_level=round(r.uniform(0.15, 0.6), 2),
                peak_db=round(r.uniform(-4.0, -1.0), 2),
                note_seed=r.getrandbits(32))


def cmd_plan(a):
    from music21 import __version__ as m21v  # noqa: F401  (import check)
    work = os.path.join(a.out, ".work")
    os.makedirs(work, exist_ok=True)
    cands = candidates()
    budget = {sp: a.minutes * 60.0 * f for sp, f in SPLIT_FRAC.items()}
    got = {sp: 0.0 for sp in SPLIT_FRAC}
    chosen, skipped = [], []
    todo = list(cands)
    sfs = [sf for sf in SOUNDFONTS if os.path.exists(sf[0])]
    # parse in candidate order (ordered imap over a pool), stop once every
    # split has its share; pieces of an already-full split are not parsed
    def wanted(c):
        return got[split_of(a.seed, piece_id(c[1]))] < budget[split_of(a.seed, piece_id(c[1]))]
    with mp.Pool(a.jobs) as pool:
        pending = []
        idx = 0
        while idx < len(todo) or pending:
            while idx < len(todo) and len(pending) < 2 * a.jobs:
                c = todo[idx]
                idx += 1
                if wanted(c):
                    pending.append(pool.apply_async(score_notes, (c,)))
            if not pending:
                break
            cat_path, notes, dur, err = pending.pop(0).get()
            cat, path = cat_path
            pid = piece_id(path)
            sp = split_of(a.seed, pid)
            if notes is None:
                skipped.append((path, err))
                continue
            if got[sp] >= budget[sp]:
                continue
            use = dur if not a.clip else min(dur, a.clip * a.clips_per_piece)
            got[sp] += use
            chosen.append(dict(piece=pid, path=path, category=cat, split=sp, seconds=round(dur, 2)))
            with open(os.path.join(work, pid + ".json"), "w") as f:
                json.dump(notes, f)
            if all(got[s] >= budget[s] for s in got):
                break
        pool.terminate()
    cols = ["job", "piece", "corpus_path", "category", "split", "score_seconds", "variant", "tempo",
            "velocity", "vel_jitter", "onset_jitter_ms", "soundfont", "room", "reverb_level",
            "peak_db", "note_seed"]
    with open(os.path.join(a.out, "plan.tsv"), "w") as f:
        f.write("\t".join(cols) + "\n")
        k = 0
        for c in chosen:
            for v in range(a.variants):
                p = variant_params(a.seed, c["piece"], v, len(sfs))
                p["soundfont"] = sfs[p["soundfont"]][0]
                row = dict(job=k, piece=c["piece"], corpus_path=c["path"], category=c["category"],
                           split=c["split"], score_seconds=c["seconds"], **p)
                f.write("\t".join(str(row[x]) for x in cols) + "\n")
                k += 1
    with open(os.path.join(a.out, "plan.json"), "w") as f:
        json.dump(dict(seed=a.seed, minutes=a.minutes, variants=a.variants, clip=a.clip,
                       clips_per_piece=a.clips_per_piece, format=a.format, bits=a.bits,
                       candidates=len(cands), skipped=skipped,
                       soundfonts=[s for s in sfs]), f, indent=1)
    print("planned %d pieces (%s), %d renderings; skipped %d unparsable"
          % (len(chosen), ", ".join("%s %.1f min" % (s, got[s] / 60) for s in got),
             k, len(skipped)))


def read_plan(out):
    with open(os.path.join(out, "plan.tsv")) as f:
        cols = f.readline().rstrip("\n").split("\t")
        return [dict(zip(cols, line.rstrip("\n").split("\t"))) for line in f]


def write_midi(path, notes, p):
    """Format-0 MIDI, 1 tick = 1 ms (500 ticks per quarter at 120 qpm)."""
    r = np.random.default_rng(int(p["note_seed"]))
    tf = float(p["tempo"])
    base = int(p["velocity"])
    n = len(notes)
    vj = r.normal(0, float(p["vel_jitter"]), n)
    oj = r.normal(0, float(p["onset_jitter_ms"]) / 1000.0, n)
    # the highest sounding part (part 0, usually melody / soprano) a bit louder
    ev = []
    nparts = 1 + max(x[3] for x in notes)
    chans = [c for c in range(16) if c != 9]
    for i, (t0, d, m, part) in enumerate(notes):
        ch = chans[part % len(chans)]
        on = max(0.0, t0 / tf + oj[i])
        off = max(on + 0.03, (t0 + d) / tf - 0.01)
        vel = int(np.clip(base + vj[i] + (6 if part == 0 else 0), 20, 127))
        ev.append((int(round(on * 1000)) + 200, 1, ch, m, vel))   # 200 ms lead-in
        ev.append((int(round(off * 1000)) + 200, 0, ch, m, 0))
    ev.sort(key=lambda e: (e[0], e[1]))
    data = bytearray()

    def vlq(x):
        out = [x & 0x7F]
        x >>= 7
        while x:
            out.append(0x80 | (x & 0x7F))
            x >>= 7
        return bytes(reversed(out))
    data += vlq(0) + b"\xff\x51\x03" + (500000).to_bytes(3, "big")
    for c in chans[:min(nparts, len(chans))]:
        data += vlq(0) + bytes([0xC0 | c, 0])              # program 0: acoustic grand
        data += vlq(0) + bytes([0xB0 | c, 7, 100])         # channel volume
    last = 0
    for t, kind, ch, m, vel in ev:
        data += vlq(t - last)
        last = t
        data += bytes([(0x90 if kind else 0x80) | ch, m, vel])
    data += vlq(1500) + b"\xff\x2f\x00"                   # let the last notes ring
    with open(path, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 500))
        f.write(b"MTrk" + struct.pack(">I", len(data)) + bytes(data))


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


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


def write_wav(path, y):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(y.astype("<i2").tobytes())


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def cmd_render(a):
    meta = json.load(open(os.path.join(a.out, "plan.json")))
    p = read_plan(a.out)[a.job]
    notes = json.load(open(os.path.join(a.out, ".work", p["piece"] + ".json")))
    ext = meta["format"]
    d = os.path.join(a.out, p["split"])
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="piano-") as tmp:
        mid = os.path.join(tmp, "x.mid")
        hi = os.path.join(tmp, "hi.wav")
        lo = os.path.join(tmp, "lo.wav")
        write_midi(mid, notes, p)
        run(["fluidsynth", "-n", "-i", "-q", "-R", "1", "-C", "0", "-g", "0.6",
             "-r", str(RENDER_SR), "-O", "float", "-T", "wav", "-F", hi,
             "-o", "synth.reverb.room-size=%s" % p["room"],
             "-o", "synth.reverb.level=%s" % p["reverb_level"],
             "-o", "synth.cpu-cores=1",
             # load only the samples played (the piano): the same output, and
             # much faster with the 86 MB compressed MuseScore soundfont
             "-o", "synth.dynamic-sample-loading=1", p["soundfont"], mid])
        # mono 16 kHz, trim the silent ends, normalise to the variant's peak
        run(["sox", "-R", "-V1", hi, "-r", str(SR), "-c", "1", "-b", "16", lo,
             "remix", "-", "highpass", "30", "rate", "-v", str(SR),
             "silence", "1", "0.02", "-60d", "reverse", "silence", "1", "0.02", "-60d", "reverse",
             "gain", "-n", p["peak_db"]])
        y, sr = read_wav(lo)
        assert sr == SR
        outs = []
        if not meta["clip"]:
            outs.append(("%s_%s" % (p["piece"], p["variant"]), y))
        else:
            L = int(meta["clip"] * SR)
            K = int(meta["clips_per_piece"])
            r = rng_for(meta["seed"], "clips", p["piece"], p["variant"])
            fr = y.astype(np.float64) / 32768.0
            if len(fr) < L:
                starts = [0]
            else:
                # K windows spread over the piece, each nudged to a seeded spot
                # inside its slot; quiet windows (RMS < -45 dBFS) are skipped
                slot = (len(fr) - L) / K
                starts = [int(i * slot + r.random() * max(0, slot - 1)) for i in range(K)]
            for k, s0 in enumerate(starts):
                seg = y[s0:s0 + L]
                if np.sqrt(np.mean((seg / 32768.0) ** 2)) < 10 ** (-45 / 20):
                    continue
                outs.append(("%s_%s_c%d" % (p["piece"], p["variant"], k), seg))
        bits = int(meta.get("bits", 16))
        qrng = np.random.default_rng(int(p["note_seed"]) + 1)
        for name, seg in outs:
            seg = reduce_precision(seg, bits, qrng)
            dst = os.path.join(d, name + "." + ext)
            if ext == "wav":
                write_wav(dst, seg)
            else:
                w = os.path.join(tmp, "seg.wav")
                write_wav(w, seg)
                run(["sox", "-R", "-V1", w, "-b", "16", dst])


def tool_versions():
    def deb(pkg):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
        return r.stdout.strip() or "not installed"
    import music21
    d = {p: deb(p) for p in ["fluidsynth", "sox"] + [s[1] for s in SOUNDFONTS]}
    d["music21 (PyPI)"] = music21.__version__
    d["numpy"] = np.__version__
    d["python3"] = sys.version.split()[0]
    return d


def cmd_finalize(a):
    meta = json.load(open(os.path.join(a.out, "plan.json")))
    plan = read_plan(a.out)
    ext = meta["format"]
    rows = []
    for p in plan:
        d = os.path.join(a.out, p["split"])
        stem = "%s_%s" % (p["piece"], p["variant"])
        names = sorted(f for f in os.listdir(d) if f.startswith(stem + ".") or f.startswith(stem + "_c")) \
            if os.path.isdir(d) else []
        for f in names:
            with wave.open(os.path.join(d, f)) if ext == "wav" else _sox_info(os.path.join(d, f)) as w:
                n = w.getnframes()
            rows.append(dict(path="%s/%s" % (p["split"], f), split=p["split"], piece=p["piece"],
                             variant=p["variant"], corpus_path=p["corpus_path"],
                             category=p["category"], soundfont=os.path.basename(p["soundfont"]),
                             tempo=p["tempo"], velocity=p["velocity"], seconds=round(n / SR, 3)))
    cols = ["path", "split", "piece", "variant", "category", "corpus_path", "soundfont", "tempo",
            "velocity", "seconds"]
    with open(os.path.join(a.out, "splits.tsv"), "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            f.write("\t".join(str(r[c]) for c in cols) + "\n")
    splits = {}
    for sp in ("train", "valid", "test"):
        rr = [r for r in rows if r["split"] == sp]
        splits[sp] = dict(pieces=sorted({r["piece"] for r in rr}), files=[r["path"] for r in rr],
                          seconds=round(sum(r["seconds"] for r in rr), 1))
    json.dump(dict(kind="piano", sample_rate=SR, seed=meta["seed"], splits=splits),
              open(os.path.join(a.out, "splits.json"), "w"), indent=1)
    missing = [p["job"] for p in plan if not any(r["piece"] == p["piece"] and r["variant"] == p["variant"]
                                                  for r in rows)]
    tot = sum(r["seconds"] for r in rows)
    pieces = {}
    for p in plan:
        pieces[p["piece"]] = float(p["score_seconds"])
    cats = {}
    for p in plan:
        cats.setdefault(p["category"], set()).add(p["piece"])
    L = ["# Piano corpus (YouTubeMix-like)", "",
         "Made by `recipes/data/piano.sh` (helper `piano.py`): scores from music21's",
         "bundled corpus, every part on General MIDI program 0 (acoustic grand piano),",
         "rendered by fluidsynth at 44.1 kHz, mixed to mono and resampled to 16 kHz by sox.", "",
         "Command: `%s`" % (a.cmd or "(not recorded)"), "",
         "- seed: %d; requested distinct music: %s min; variants per piece: %d%s"
         % (meta["seed"], meta["minutes"], meta["variants"],
            "; clips of %s s, up to %d per rendering" % (meta["clip"], meta["clips_per_piece"])
            if meta["clip"] else ""),
         "- distinct pieces: %d (score duration at written tempo, without repeats: %.1f min)"
         % (len(pieces), sum(pieces.values()) / 60),
         "- files: %d, total audio %.1f min (%s, 16 kHz, mono, 16-bit)"
         % (len(rows), tot / 60, ext.upper()),
         "- sample precision: %d bits%s" % (meta.get("bits", 16), "" if meta.get("bits", 16) >= 16
             else " (16-bit samples rounded to multiples of %d with TPDF dither, so that FLAC's"
                  " wasted-bits coding stores %d bits per sample)"
             % (2 ** (16 - meta["bits"]), meta["bits"])),
         "- by category: " + ", ".join("%s %d pieces" % (c, len(v)) for c, v in sorted(cats.items())),
         "- candidate scores in the music21 corpus: %d (keyboard works and songs, ensemble"
         " movements, Bach chorales); unparsable ones skipped: %d" % (meta["candidates"],
                                                                       len(meta["skipped"])),
         "- layout: `{train,valid,test}/<piece>_<variant>%s.%s`; `splits.tsv` / `splits.json`"
         " list every file's split and piece, `plan.tsv` every rendering's parameters."
         % ("_c<k>" if meta["clip"] else "", ext), "",
         "| split | pieces | files | minutes |", "|---|---|---|---|"]
    for sp in ("train", "valid", "test"):
        L.append("| %s | %d | %d | %.1f |" % (sp, len(splits[sp]["pieces"]), len(splits[sp]["files"]),
                                             splits[sp]["seconds"] / 60))
    L += ["", "Split by piece: each piece's split is drawn from the seed alone (10 % test,",
          "10 % valid, 80 % train) and pieces are taken in a fixed candidate order until",
          "each split holds its share of the requested minutes.", "",
          "Per-rendering variation (seeded): tempo factor 0.88-1.12, base velocity 52-92",
          "with per-note jitter and onset jitter, soundfont (variants of one piece cycle",
          "through them), fluidsynth reverb room size and level, peak level -4..-1 dBFS.",
          "Soundfonts: " + ", ".join(os.path.basename(s[0]) for s in meta["soundfonts"]) + ".", "",
          "Tool versions: " + ", ".join("%s %s" % kv for kv in tool_versions().items()) + ".", "",
          "Pieces:", ""]
    for sp in ("train", "valid", "test"):
        L.append("- %s: %s" % (sp, ", ".join(splits[sp]["pieces"])))
    if missing:
        L += ["", "Failed renderings (plan jobs): %s" % missing]
    open(os.path.join(a.out, "MANIFEST.md"), "w").write("\n".join(L) + "\n")
    print("finalized: %d files, %.1f min, %d pieces, %d failed" % (len(rows), tot / 60, len(pieces),
                                                                    len(missing)))
    if missing:
        sys.exit(1)


class _sox_info:
    """Frame count of a non-WAV file through soxi (context-manager shim)."""
    def __init__(self, path):
        self.n = int(subprocess.run(["soxi", "-s", path], capture_output=True, text=True,
                                    check=True).stdout.strip())

    def getnframes(self):
        return self.n

    def __enter__(self):
        return self

    def __exit__(self, *x):
        return False


def cmd_inventory(a):
    cands = candidates()
    tot = {}
    cnt = {}
    bad = 0
    with mp.Pool(a.jobs) as pool:
        for (cat, path), notes, dur, err in pool.imap(score_notes, cands, chunksize=2):
            if notes is None:
                bad += 1
                print("skip %s: %s" % (path, err), file=sys.stderr)
                continue
            tot[cat] = tot.get(cat, 0.0) + dur
            cnt[cat] = cnt.get(cat, 0) + 1
            print("%s\t%s\t%.1f" % (cat, path, dur), flush=True)
    for c in tot:
        print("# %s: %d pieces, %.1f min" % (c, cnt[c], tot[c] / 60))
    print("# total: %d pieces, %.1f min; unparsable %d" % (sum(cnt.values()), sum(tot.values()) / 60, bad))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=75.0)
    p.add_argument("--variants", type=int, default=1)
    p.add_argument("--clip", type=float, default=0.0)
    p.add_argument("--clips-per-piece", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--format", choices=["wav", "flac"], default="wav")
    p.add_argument("--bits", type=int, default=16, choices=range(8, 17), metavar="8..16",
                   help="sample precision (stored as 16-bit; fewer bits compress better as FLAC)")
    p = sub.add_parser("render")
    p.add_argument("--out", required=True)
    p.add_argument("--job", type=int, required=True)
    p = sub.add_parser("finalize")
    p.add_argument("--out", required=True)
    p.add_argument("--cmd", default="")
    p = sub.add_parser("inventory")
    p.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    {"plan": cmd_plan, "render": cmd_render, "finalize": cmd_finalize,
     "inventory": cmd_inventory}[a.sub](a)


if __name__ == "__main__":
    main()
