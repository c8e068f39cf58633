import AudioIO
import Engine
import Evaluation
import Foundation
import Generation
import Models

/// A model's negative log-likelihood of real clips in bits per sample: the training loss
/// (teacher forcing) on clips it was not trained on.
///
/// Each clip is read at the checkpoint's rate and clip length, min-max scaled and quantised
/// as in training (`AudioTokens.encode`); with q its classes, the inputs are
/// [128, q₀ … q_{L−2}] (SaShiMi starts from silence, class 128) and the targets q₀ … q_{L−1},
/// L cut down to a multiple of the model's pooling. The mean cross-entropy over all clips
/// and samples, in nats, divided by ln 2.
func modelTestNLL(checkpoint: String, referenceFolder: String, maxClips: Int, backend: any Backend,
                  batch: Int = 4) throws -> (bits: Double, clips: Int, from: String) {
    let loaded = try loadCheckpoint(checkpoint, backend: backend)
    let model = loaded.model, audio = loaded.audio
    let tokens = try AudioTokens(audio)
    let url = URL(fileURLWithPath: referenceFolder)
    var set: ClipSet
    var from = "test split"
    do {
        set = try ClipSet.load(folder: url, sampleRate: audio.sampleRate, length: audio.clipLength, split: .test)
    } catch is EvaluationError {
        set = try ClipSet.load(folder: url, sampleRate: audio.sampleRate, length: audio.clipLength)
        from = "all clips"
    }
    if set.count > maxClips { set = set.subset((0..<maxClips).map { $0 * set.count / maxClips }) }
    let L = audio.clipLength / model.config.totalPool * model.config.totalPool
    guard L > 0 else {
        throw EvaluationError(path: checkpoint, "clips of \(audio.clipLength) samples are shorter than the model's pooling \(model.config.totalPool)")
    }
    var nats = 0.0
    var start = 0
    while start < set.count {
        let n = min(batch, set.count - start)
        var inputs = [Int32](), targets = [Int32]()
        for i in start..<(start + n) {
            let q = tokens.encode(set.clip(i)).prefix(L).map { Int32($0) }
            inputs += [Sampler.startToken] + q.dropLast()
            targets += q
        }
        let loss = model.loss(inputs: backend.indices(inputs, shape: [n, L]), targets: backend.indices(targets, shape: [n, L]), tape: .inference())
        nats += Double(loss.value.floats()[0]) * Double(n)
        start += n
    }
    return (Op.bits(fromNats: nats / Double(set.count)), set.count, from)
}
