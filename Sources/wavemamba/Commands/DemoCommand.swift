import ArgumentParser
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Train a tiny model on the bundled spoken digits, then generate clips: the whole job in a few minutes.",
        discussion: """
        Runs `train digits-tiny` on Assets/digits (validation bits per sample before and after), \
        then `generate` from the trained checkpoint, then generates with the bundled digits model \
        (Assets/models/digits.safetensors, the paper's SC09 model trained on a GPU: see its model \
        card, Assets/models/digits.md). Everything lands in the run folder: checkpoints, \
        metrics.jsonl, samples/*.wav and bundled-digits/*.wav.
        """)

    @Option(help: "Run folder (default: runs/demo-<timestamp>).")
    var out: String?

    @Option(help: "Recipe to train (default: digits-tiny).")
    var recipe = "digits-tiny"

    @Option(help: "Training steps (default: the recipe's).")
    var steps: Int?

    @Option(help: "Clips to generate.")
    var count = 4

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @Flag(help: "Skip generating with the bundled digits model.")
    var noBundled = false

    func run() throws {
        let started = Date()
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
        let runDir = out ?? "runs/demo-\(stamp)"
        var trainArgs = [recipe, "--out", runDir]
        if let steps { trainArgs += ["--steps", String(steps)] }
        if let threads { trainArgs += ["--threads", String(threads)] }
        print("== 1/2  training (\(trainArgs.joined(separator: " ")))")
        try TrainCommand.parse(trainArgs).run()

        let checkpoint = (runDir as NSString).appendingPathComponent("latest.safetensors")
        let samples = (runDir as NSString).appendingPathComponent("samples")
        var genArgs = [checkpoint, "--count", String(count), "--seconds", "1", "--out", samples, "--seed", "0"]
        if let threads { genArgs += ["--threads", String(threads)] }
        let bundled = noBundled ? nil : BundledAssets.model(named: "digits")
        let stages = bundled == nil ? 2 : 3
        print("\n== 2/\(stages)  generating (\(genArgs.joined(separator: " ")))")
        try GenerateCommand.parse(genArgs).run()
        let bundledSamples = (runDir as NSString).appendingPathComponent("bundled-digits")
        if bundled != nil {
            var args = ["digits", "--count", String(count), "--seconds", "1", "--out", bundledSamples, "--seed", "0", "--device", "cpu"]
            if let threads { args += ["--threads", String(threads)] }
            print("\n== 3/3  generating with the bundled digits model (\(args.joined(separator: " ")))")
            try GenerateCommand.parse(args).run()
        }

        // Before/after from the run's own log.
        let valid = Self.validationBits((runDir as NSString).appendingPathComponent("metrics.jsonl"))
        print("\ndemo finished in \(formatDuration(Date().timeIntervalSince(started)))")
        if let first = valid.first, let last = valid.last, first.step < last.step {
            print(String(format: "validation NLL: %.3f bits/sample untrained (step %d) → %.3f bits/sample trained (step %d)",
                         first.bits, first.step, last.bits, last.step))
        }
        print("clips:      \(samples)/sample_*.wav")
        if bundled != nil { print("bundled:    \(bundledSamples)/sample_*.wav (Assets/models/digits.md says how far it is trained)") }
        print("checkpoint: \(checkpoint)")
        print("next: wavemamba nll \(checkpoint) --data Assets/digits   ·   wavemamba generate \(checkpoint) --count 8 --out DIR")
    }

    /// (step, bits per sample) of every validation line in metrics.jsonl.
    static func validationBits(_ path: String) -> [(step: Int, bits: Double)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  obj["type"] as? String == "valid", let step = obj["step"] as? Int, let bits = obj["bits_per_sample"] as? Double else { return nil }
            return (step, bits)
        }
    }
}
