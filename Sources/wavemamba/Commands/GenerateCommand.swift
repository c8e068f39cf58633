import ArgumentParser
import AudioIO
import Engine
import Foundation
import Generation
import Models

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate audio clips from a checkpoint, sample by sample (step mode), as WAV files.",
        discussion: """
        Streams are generated in batches (--batch) that run in lockstep; each clip is written as \
        OUT/sample_NNN.wav at the model's sample rate. With --prompt, every clip continues the \
        prompt's audio (which is included at the start of the file).

        OUT/manifest.jsonl gets one line per clip: file, index, seed, samples, log_likelihood_nats \
        (Σ log p of the generated samples, the prompt excluded), bits_per_sample (−mean log₂ p), \
        temperature and top_p. The likelihood is always the MODEL's (its softmax at temperature 1, \
        without top-p), whatever --temperature and --top-p sampled with, so clips rank the same \
        way across settings. `wavemamba evaluate --drop-least-likely F --drop-most-likely G` uses \
        it to score only the middle of the ranking (SaShiMi's protocol).
        """)

    @Argument(help: "A checkpoint written by `wavemamba train` (.safetensors), or a bundled model's name (e.g. digits: Assets/models).")
    var checkpoint: String

    @Option(help: "Number of clips.")
    var count: Int = 4

    @Option(help: "Seconds of audio per clip (after the prompt).")
    var seconds: Double = 1

    @Option(help: "Streams generated together (default: all clips at once, at most 64).")
    var batch: Int?

    @Option(help: "Softmax temperature.")
    var temperature: Float = 1

    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold in (0, 1]; 1 disables it.")
    var topP: Float = 1

    @Option(help: "Random seed (clip k is the same for the same seed and settings).")
    var seed: UInt64 = 0

    @Option(help: "An audio file whose start every clip continues.")
    var prompt: String?

    @Option(help: "Output folder.")
    var out: String

    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    @OptionGroup var deviceOptions: DeviceOptions

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        if let batch, batch <= 0 { throw ValidationError("--batch must be positive") }
    }

    func run() throws {
        // S4D's step mode (its recurrence) runs on the CPU only: the device is chosen from the
        // checkpoint's config before the model is built.
        let config = try checkpointOrExit(checkpoint) { try ModelCheckpoint.header($0).config }
        let cpuOnly = [config.outer, config.center].contains(.s4d) ? "S4D blocks (their step mode)" : nil
        let backend = try deviceOptions.makeBackend(threads: threads, cpuOnly: cpuOnly)
        let loaded = try loadCheckpoint(checkpoint, backend: backend)
        let model = loaded.model, audio = loaded.audio
        let tokens = try AudioTokens(audio)
        var promptTokens: [Int32] = []
        if let prompt {
            let samples = try AudioFile.readMono(prompt, sampleRate: audio.sampleRate)
            promptTokens = tokens.encode(samples).map { Int32($0) }
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let perClip = Int((seconds * Double(audio.sampleRate)).rounded())
        let batchSize = min(batch ?? min(count, 64), count)
        Console.note("model: \(model.parameterCount) parameters, \(audio.sampleRate) Hz, \(audio.quantization); generating \(count) × \(perClip) samples in batches of \(batchSize)")
        let bar = ProgressBar("generate", total: count * perClip, unit: "samples")
        let start = Date()
        var written: [String] = []
        var manifest: [String] = []
        var first = 0
        while first < count {
            let n = min(batchSize, count - first)
            let sampler = Sampler(model: model, batch: n, settings: .init(temperature: temperature, topP: topP, seed: seed &+ UInt64(first)),
                                  maxSamples: promptTokens.count + 1 + perClip)
            // SaShiMi starts from silence; a prompt is fed after it, all but its last sample
            // teacher-forced, so the first generated sample continues the prompt.
            var clips = [[UInt8]](repeating: promptTokens.map { UInt8($0) }, count: n)
            if !promptTokens.isEmpty {
                sampler.prime([[Int32]](repeating: [Sampler.startToken] + promptTokens.dropLast(), count: n))
                sampler.setNext(promptTokens.last!)
            }
            let done = first
            sampler.generate(count: perClip, into: &clips) { t in bar.update(done * perClip + t * n) }
            let logLikelihood = sampler.logLikelihood, bits = sampler.bitsPerSample
            for (k, clip) in clips.enumerated() {
                let name = String(format: "sample_%03d.wav", first + k)
                let path = (out as NSString).appendingPathComponent(name)
                try AudioFile.write(Audio(samples: tokens.decode(clip), sampleRate: audio.sampleRate), to: path)
                written.append(path)
                manifest.append(GenerationManifest.line(file: name, index: first + k, seed: seed, samples: perClip,
                                                        logLikelihood: logLikelihood[k], bitsPerSample: bits[k], temperature: temperature, topP: topP))
            }
            first += n
        }
        bar.finish()
        let manifestURL = URL(fileURLWithPath: out).appendingPathComponent(GenerationManifest.fileName)
        try Data(manifest.joined().utf8).write(to: manifestURL, options: .atomic)
        let elapsed = Date().timeIntervalSince(start)
        let rtf = Double(count * perClip) / Double(audio.sampleRate) / elapsed
        print("wrote \(written.count) clips and \(GenerationManifest.fileName) (their log-likelihoods) to \(out) (\(String(format: "%.1f", elapsed)) s, real-time factor \(String(format: "%.3f", rtf)) summed over streams)")
    }
}

/// Loads a checkpoint, turning format errors into one clear line.
func loadCheckpoint(_ path: String, backend: any Backend) throws -> (model: SaShiMi, audio: AudioSettings, metadata: [String: String]) {
    try checkpointOrExit(path) { try ModelCheckpoint.load($0, backend: backend) }
}

/// `read` of a checkpoint file, or of a bundled model named like "digits" (Assets/models); a
/// missing or unreadable one is an error line and exit status 1.
func checkpointOrExit<T>(_ path: String, _ read: (URL) throws -> T) throws -> T {
    var url = URL(fileURLWithPath: path)
    if !FileManager.default.fileExists(atPath: path) {
        guard let bundled = BundledAssets.model(named: path) else {
            let names = BundledAssets.modelNames
            Console.error("\(path): no such checkpoint; pass a .safetensors file written by `wavemamba train` (e.g. RUNDIR/latest.safetensors)"
                          + (names.isEmpty ? "" : " or a bundled model: \(names.joined(separator: ", "))"))
            throw ExitCode(1)
        }
        url = bundled
    }
    do {
        return try read(url)
    } catch {
        Console.error("\(error)")
        throw ExitCode(1)
    }
}

/// `manifest.jsonl` beside generated clips: one JSON object per clip with the model's
/// log-likelihood of its generated samples (see `Sampler.logLikelihood`).
enum GenerationManifest {
    static let fileName = "manifest.jsonl"

    struct Entry: Codable {
        var file: String
        var index: Int
        var seed: UInt64
        var samples: Int
        var log_likelihood_nats: Double
        var bits_per_sample: Double
        var temperature: Double
        var top_p: Double
    }

    static func line(file: String, index: Int, seed: UInt64, samples: Int, logLikelihood: Double, bitsPerSample: Double,
                     temperature: Float, topP: Float) -> String {
        let e = Entry(file: file, index: index, seed: seed, samples: samples, log_likelihood_nats: logLikelihood, bits_per_sample: bitsPerSample,
                      temperature: Double(temperature), top_p: Double(topP))
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(e)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    /// The entries of `folder/manifest.jsonl`, or an error that says how to get one.
    static func load(_ folder: String) throws -> [Entry] {
        let url = URL(fileURLWithPath: folder).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ValidationError("\(url.path): no manifest of the clips' likelihoods; the selection by likelihood needs the folder `wavemamba generate` wrote (it writes \(fileName) beside the WAVs)")
        }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated().map { n, line in
            do {
                return try JSONDecoder().decode(Entry.self, from: Data(line.utf8))
            } catch {
                throw ValidationError("\(url.path): line \(n + 1) is not a manifest entry (file, index, seed, samples, log_likelihood_nats, bits_per_sample, temperature, top_p)")
            }
        }
    }
}
