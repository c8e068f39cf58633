import AudioIO
import Engine
import Evaluation
import Foundation
import Generation
import Models
import Spectral
import Training

/// `[train] sample_every`: what `Trainer.onSample` runs in `wavemamba train`. Each round
/// generates `sample_clips` clips with the weights the model holds, on the training device,
/// writes them (and their manifest.jsonl) to RUNDIR/samples/step-N/WEIGHTS/ (only the latest
/// round is kept), and scores them as `evaluate` does against the valid split of the training
/// data: IS, FID, mIS and AM with the bundled classifier (when it is found), and the event rate
/// (no classifier needed).
final class TrainingSamples {
    let run: RunDirectory
    let clips: Int
    let samplesPerClip: Int
    let sampleRate: Int
    let tokens: AudioTokens
    let classifier: (evaluator: Evaluator, reference: SetAnalysis)?
    let reference: ClipSet
    let referenceEventRate: Double
    private var latest: URL?

    init(recipe: Recipe, dataFolder: URL, run: RunDirectory, note: (String) -> Void) throws {
        self.run = run
        clips = recipe.train.sampleClips
        sampleRate = recipe.data.sampleRate
        samplesPerClip = Int(((recipe.train.sampleSeconds ?? Double(recipe.data.clipLength) / Double(sampleRate)) * Double(sampleRate)).rounded())
        tokens = try AudioTokens(recipe.audioSettings)
        let cpu = CPUBackend(threads: nil), cache = FFTPlanCache()
        var loaded: (DigitClassifier, [String: String])?
        if let url = try? classifierURL(nil) { loaded = try DigitClassifier.load(url, backend: cpu, cache: cache) }
        let features = loaded?.0.config.features ?? LogMelSettings()
        reference = try ClipSet.load(folder: dataFolder, sampleRate: features.sampleRate, length: features.clipLength, split: .valid)
        referenceEventRate = EventRate.rate(reference)
        if let (model, _) = loaded {
            let evaluator = Evaluator(classifier: model, cache: cache, pool: cpu.pool)
            classifier = (evaluator, try evaluator.analyze(reference))
        } else {
            classifier = nil
            note("no classifier found (Assets/classifier-digits.safetensors): samples are scored by event rate only")
        }
    }

    /// One round; the fields of the metrics line. `root`: the run folder whose samples/ receives
    /// the clips (default: `run`'s; the experiments score several runs with one instance).
    func round(step: Int, weights: String, model: SaShiMi, into root: URL? = nil) throws -> [(String, MetricValue)] {
        let folder = (root ?? run.root).appendingPathComponent("samples/step-\(step)/\(weights)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var manifest = ""
        var first = 0
        while first < clips {
            let n = min(64, clips - first)
            // The same seeds every round, so that rounds differ by the weights only.
            let sampler = Sampler(model: model, batch: n, settings: .init(seed: UInt64(first)), maxSamples: samplesPerClip)
            var out = [[UInt8]](repeating: [], count: n)
            sampler.generate(count: samplesPerClip, into: &out)
            for k in 0..<n {
                let name = String(format: "sample_%03d.wav", first + k)
                try AudioFile.write(Audio(samples: tokens.decode(out[k]), sampleRate: sampleRate), to: folder.appendingPathComponent(name).path)
                manifest += GenerationManifest.line(file: name, index: first + k, seed: UInt64(first), samples: samplesPerClip,
                                                    logLikelihood: sampler.logLikelihood[k], bitsPerSample: sampler.bitsPerSample[k], temperature: 1, topP: 1)
            }
            first += n
        }
        try Data(manifest.utf8).write(to: folder.appendingPathComponent(GenerationManifest.fileName), options: .atomic)
        // Only the latest round's clips are kept.
        let round = folder.deletingLastPathComponent()
        if latest != round {
            let samples = round.deletingLastPathComponent()
            for old in (try? FileManager.default.contentsOfDirectory(atPath: samples.path)) ?? [] where old != round.lastPathComponent && old.hasPrefix("step-") {
                try? FileManager.default.removeItem(at: samples.appendingPathComponent(old))
            }
            latest = round
        }
        let generated = try ClipSet.load(folder: folder, sampleRate: reference.sampleRate, length: reference.length)
        let eventRate = EventRate.rate(generated)
        var fields: [(String, MetricValue)] = [("clips", .int(clips)), ("folder", .string(folder.path))]
        if let (evaluator, ref) = classifier {
            let m = evaluator.compare(try evaluator.analyze(generated), reference: ref)
            fields += [("is", .double(m.inceptionScore)), ("fid", .double(m.fid)), ("mis", .double(m.modifiedInceptionScore)), ("am", .double(m.amScore))]
        }
        fields += [("event_rate", .double(eventRate)), ("generated_event_rate", .double(eventRate)), ("reference_event_rate", .double(referenceEventRate))]
        return fields
    }
}
