import AudioIO
import Engine
import Foundation
import Generation

/// `evaluate --checkpoint`: the model's test NLL in bits per sample, by the `nll` command's
/// code (`NLL.evaluate`: clips cut and quantised as in training, teacher forcing from
/// SaShiMi's start token). Scores the reference folder's test split (its splits.tsv, split
/// folders or path hash, as training splits it), or every clip when that split is empty;
/// at most `maxClips` clips, spread evenly over the split.
func modelTestNLL(checkpoint: String, referenceFolder: String, maxClips: Int, backend: any Backend,
                  batch: Int = 4) throws -> (bits: Double, clips: Int, from: String) {
    let (model, audio, _) = try loadCheckpoint(checkpoint, backend: backend)
    let tokens = try AudioTokens(audio)
    let dataset = try AudioDataset(folder: URL(fileURLWithPath: referenceFolder),
                                   options: DatasetOptions(sampleRate: audio.sampleRate, segmentLength: audio.clipLength))
    var segments = dataset.segments(.test), from = "test split"
    if segments.isEmpty {
        segments = Split.allCases.flatMap { dataset.segments($0) }
        from = "all clips"
    }
    if segments.count > maxClips { segments = (0..<maxClips).map { segments[$0 * segments.count / maxClips] } }
    let result = try NLL.evaluate(model: model, tokens: tokens, dataset: dataset, segments: segments, batch: batch) { _ in }
    return (result.bitsPerSample, segments.count, from)
}
