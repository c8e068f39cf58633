import Foundation

/// The self-contained HTML report: metrics table (with the real-vs-real ceiling), label
/// histogram, training curves as inline SVG, and example clips as spectrogram PNGs and
/// audio players, all embedded as data: URIs so the one file can be mailed or archived.
public struct Report {
    /// One example clip shown in the report.
    public struct Clip {
        public var name: String
        /// "generated" or "reference".
        public var group: String
        public var samples: [Float]
        public var sampleRate: Int
        /// (frames, nMels) natural-log mel power.
        public var logMel: [Float]
        public var frames: Int
        public var nMels: Int
        public var predicted: String
        public var confidence: Double

        public init(name: String, group: String, samples: [Float], sampleRate: Int, logMel: [Float], frames: Int, nMels: Int,
                    predicted: String, confidence: Double) {
            self.name = name
            self.group = group
            self.samples = samples
            self.sampleRate = sampleRate
            self.logMel = logMel
            self.frames = frames
            self.nMels = nMels
            self.predicted = predicted
            self.confidence = confidence
        }
    }

    public var result: EvaluationResult
    public var clips: [Clip]
    public var curves: TrainingCurves?
    /// Where the curves came from (shown under them).
    public var runFolder: String?

    public init(result: EvaluationResult, clips: [Clip], curves: TrainingCurves? = nil, runFolder: String? = nil) {
        self.result = result
        self.clips = clips
        self.curves = curves
        self.runFolder = runFolder
    }

    /// One row of the metrics table: name, value for generated, ceiling, direction, meaning.
    struct Row {
        var name: String
        var generated: String
        var ceiling: String
        var better: String
        var note: String
    }

    static func rows(_ r: EvaluationResult) -> [Row] {
        let m = r.metrics, c = r.ceiling
        func v(_ x: Double, _ digits: Int = 3) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "n/a" }
        var rows = [
            Row(name: "clips", generated: "\(m.clips) vs \(m.referenceClips)", ceiling: "\(c.clips) vs \(c.referenceClips)", better: "", note: "scored set vs reference set"),
            Row(name: "FID", generated: v(m.fid), ceiling: v(c.fid), better: "lower", note: "Fréchet distance of classifier embeddings"),
            Row(name: "IS", generated: v(m.inceptionScore), ceiling: v(c.inceptionScore), better: "higher", note: "exp E KL(p(y|x) ‖ p(y)); 1 … \(r.classifier.labels.count)"),
            Row(name: "mIS", generated: v(m.modifiedInceptionScore), ceiling: v(c.modifiedInceptionScore), better: "higher", note: "exp E KL(p(y|x) ‖ p(y|x′))"),
            Row(name: "AM", generated: v(m.amScore), ceiling: v(c.amScore), better: "lower", note: "KL(p_ref(y) ‖ p_gen(y)) + E H(p(y|x))"),
            Row(name: "mel FD", generated: v(m.melFrechetDistance), ceiling: v(c.melFrechetDistance), better: "lower", note: "Fréchet distance of per-clip mean log-mel (no classifier)"),
            Row(name: "flatness W1", generated: v(m.flatnessWasserstein, 4), ceiling: v(c.flatnessWasserstein, 4), better: "lower", note: "Wasserstein-1 of per-clip spectral flatness"),
            Row(name: "flatness KS", generated: v(m.flatnessKS), ceiling: v(c.flatnessKS), better: "lower", note: "Kolmogorov–Smirnov statistic of the same"),
            Row(name: "centroid W1 (Hz)", generated: v(m.centroidWasserstein, 1), ceiling: v(c.centroidWasserstein, 1), better: "lower", note: "Wasserstein-1 of per-clip spectral centroid"),
            Row(name: "centroid KS", generated: v(m.centroidKS), ceiling: v(c.centroidKS), better: "lower", note: "Kolmogorov–Smirnov statistic of the same"),
            Row(name: "confidence", generated: v(m.meanConfidence), ceiling: v(c.meanConfidence), better: "higher", note: "mean top-class probability"),
        ]
        if m.accuracy != nil || c.accuracy != nil {
            rows.append(Row(name: "accuracy", generated: m.accuracy.map { v($0) } ?? "n/a", ceiling: c.accuracy.map { v($0) } ?? "n/a", better: "higher",
                            note: "classifier vs folder labels"))
        }
        if let g = m.eventRate, let ref = m.referenceEventRate {
            rows.append(Row(name: "event rate (scored / reference)", generated: "\(v(g)) / \(v(ref))",
                            ceiling: c.eventRate.map { "\(v($0)) / \(v(c.referenceEventRate ?? .nan))" } ?? "", better: "near reference",
                            note: "fraction of clips whose loudest 50 ms frame is ≥ 25 dB above their median frame (silence and steady noise: 0)"))
        }
        if let nll = r.nll {
            rows.append(Row(name: "test NLL (bits/sample)", generated: v(nll.bitsPerSample, 4), ceiling: "", better: "lower",
                            note: "\((nll.checkpoint as NSString).lastPathComponent) on \(nll.clips) reference clips (\(nll.clipsFrom))"))
        }
        return rows
    }

    public func html() -> String {
        let r = result
        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>wavemamba evaluation</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; padding: 0 16px; }
        h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        .meta { color: #555; font-size: 13px; line-height: 1.5; }
        table { border-collapse: collapse; font-size: 14px; }
        th, td { padding: 5px 10px; border-bottom: 1px solid #e5e5e5; text-align: left; }
        td.num { text-align: right; font-variant-numeric: tabular-nums; }
        th { background: #f5f5f5; }
        .note { color: #666; font-size: 12px; }
        .warn { background: #fff4e0; border: 1px solid #f0c36d; padding: 8px 12px; font-size: 13px; margin: 12px 0; }
        .clips { display: grid; grid-template-columns: repeat(auto-fill, minmax(270px, 1fr)); gap: 14px; }
        .clip { border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fafafa; }
        .clip img { display: block; width: 252px; height: 192px; image-rendering: pixelated; border: 1px solid #ccc; }
        .clip audio { width: 252px; margin-top: 6px; }
        .clip .name { font-size: 12px; word-break: break-all; margin-bottom: 4px; }
        .tag { display: inline-block; font-size: 11px; padding: 1px 6px; border-radius: 8px; color: #fff; }
        .generated { background: #1f77b4; } .reference { background: #2ca02c; }
        </style></head><body>
        <h1>wavemamba evaluation</h1>
        <div class="meta">
        generated: <b>\(htmlEscape(r.generated.folder))</b> (\(r.generated.clips) clips\(r.generated.skippedFiles > 0 ? ", \(r.generated.skippedFiles) files skipped" : ""))<br>
        \(r.selection.map { "selection: " + htmlEscape($0.summary) + "<br>" } ?? "")
        reference: <b>\(htmlEscape(r.reference.folder))</b> (\(r.reference.clips) clips\(r.reference.skippedFiles > 0 ? ", \(r.reference.skippedFiles) files skipped" : ""))<br>
        classifier: \(htmlEscape((r.classifier.file as NSString).lastPathComponent)), \(r.classifier.parameters) parameters, \(r.classifier.labels.count) labels, \(r.classifier.embeddingDimension)-d embedding\(r.classifier.testAccuracy.map { ", test accuracy \($0)" } ?? "")<br>
        features: log-mel, \(r.features.sampleRate) Hz, \(r.features.clipLength) samples per clip, Hann \(r.features.nFFT), hop \(r.features.hop), \(r.features.nMels) mels · \(htmlEscape(r.date))
        </div>

        """
        for w in r.warnings { h += "<div class=\"warn\">⚠ \(htmlEscape(w))</div>\n" }
        h += "<h2>Metrics</h2>\n<table><tr><th>metric</th><th>generated vs reference</th><th>reference vs reference (ceiling)</th><th>better</th><th>what</th></tr>\n"
        for row in Self.rows(r) {
            h += "<tr><td>\(htmlEscape(row.name))</td><td class=\"num\">\(row.generated)</td><td class=\"num\">\(row.ceiling)</td><td>\(row.better)</td><td class=\"note\">\(htmlEscape(row.note))</td></tr>\n"
        }
        h += "</table>\n<p class=\"note\">The ceiling scores one random half of the reference set (half A) against the other (half B): what real clips achieve at that sample count. "
        h += String(format: "IS of the whole reference set: %.3f, mIS: %.3f.</p>\n", r.referenceInceptionScore, r.referenceModifiedInceptionScore)
        h += "<h2>Predicted labels</h2>\n" + labelChart()
        if let curves, !curves.series.isEmpty {
            h += "<h2>Training curves</h2>\n"
            for g in curves.groups { h += TrainingCurves.svg(title: g.title, series: g.series) + "\n" }
            h += "<p class=\"note\">from \(htmlEscape(runFolder ?? ""))/metrics.jsonl\(curves.skippedLines > 0 ? " (\(curves.skippedLines) unreadable lines skipped)" : "")</p>\n"
        } else if let runFolder {
            h += "<h2>Training curves</h2>\n<p class=\"note\">no loss or bits values in \(htmlEscape(runFolder))/metrics.jsonl</p>\n"
        }
        if !clips.isEmpty {
            h += "<h2>Examples</h2>\n<p class=\"note\">Log-mel spectrograms (time →, low mels at the bottom, top 80 dB of each clip) and the classifier's label.</p>\n<div class=\"clips\">\n"
            for c in clips {
                let png = SpectrogramImage.png(logMel: c.logMel, frames: c.frames, nMels: c.nMels).base64EncodedString()
                let wav = WAVBytes.encode(c.samples, sampleRate: c.sampleRate).base64EncodedString()
                h += "<div class=\"clip\"><div class=\"name\"><span class=\"tag \(c.group)\">\(c.group)</span> \(htmlEscape(c.name))</div>"
                h += "<img alt=\"spectrogram of \(htmlEscape(c.name))\" src=\"data:image/png;base64,\(png)\">"
                h += String(format: "<div class=\"note\">classified as <b>%@</b> (p = %.2f)</div>", htmlEscape(c.predicted), c.confidence)
                h += "<audio controls preload=\"none\" src=\"data:audio/wav;base64,\(wav)\"></audio></div>\n"
            }
            h += "</div>\n"
        }
        h += "<p class=\"note\">Written by <code>wavemamba evaluate</code>. Definitions: FID and mel FD use Gaussian fits (unbiased covariance) and the symmetric square root Tr (Σ₁^½Σ₂Σ₁^½)^½; IS, mIS and AM follow the SC09 evaluations of WaveGAN, DiffWave and SaShiMi.</p>\n"
        return h + "</body></html>\n"
    }

    /// Bar chart of the predicted-label shares, generated beside reference (half A + B).
    func labelChart() -> String {
        let labels = result.classifier.labels
        let gen = result.metrics.labelShares, ref = result.ceiling.labelShares
        let width = 640, height = 200, left = 40.0, top = 16.0, bottom = 40.0
        let w = Double(width) - left - 10, hgt = Double(height) - top - bottom
        let maxShare = max(0.01, (gen + ref).max() ?? 0.01)
        let slot = w / Double(max(1, labels.count))
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">"
        s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#fff\"/>"
        for (i, label) in labels.enumerated() {
            let x = left + Double(i) * slot
            for (j, (share, color)) in [(gen.count > i ? gen[i] : 0, "#1f77b4"), (ref.count > i ? ref[i] : 0, "#2ca02c")].enumerated() {
                let bh = share / maxShare * hgt
                s += "<rect x=\(q(x + slot * 0.15 + Double(j) * slot * 0.35)) y=\(q(top + hgt - bh)) width=\(q(slot * 0.33)) height=\(q(bh)) fill=\"\(color)\"/>"
            }
            s += "<text x=\(q(x + slot / 2)) y=\(q(top + hgt + 14)) font-size=\"11\" text-anchor=\"middle\">\(htmlEscape(label))</text>"
        }
        s += "<line x1=\(q(left)) y1=\(q(top + hgt)) x2=\(q(left + w)) y2=\(q(top + hgt)) stroke=\"#888\"/>"
        s += "<text x=\"4\" y=\(q(top + 10)) font-size=\"11\">\(String(format: "%.0f%%", maxShare * 100))</text>"
        s += "<rect x=\(q(left)) y=\(q(Double(height) - 14)) width=\"10\" height=\"10\" fill=\"#1f77b4\"/><text x=\(q(left + 14)) y=\(q(Double(height) - 5)) font-size=\"11\">generated</text>"
        s += "<rect x=\(q(left + 90)) y=\(q(Double(height) - 14)) width=\"10\" height=\"10\" fill=\"#2ca02c\"/><text x=\(q(left + 104)) y=\(q(Double(height) - 5)) font-size=\"11\">reference</text>"
        return s + "</svg>\n"
    }

    private func q(_ v: Double) -> String { "\"" + String(format: "%.1f", v) + "\"" }
}
