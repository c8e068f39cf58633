import Foundation
import SafeTensors

/// Checkpoints as safetensors: the weights under their state_dict names (loadable with
/// `safetensors.torch.load_file` and `model.load_state_dict`), the model config as JSON in
/// the metadata; the optimiser state and the training position in a companion file
/// (`NAME.optim.safetensors`). Both are written atomically.
public enum Checkpoint {
    public static let configKey = "config"
    public static let formatKey = "format"
    public static let formatValue = "wavemamba"

    public static func companionURL(_ url: URL) -> URL {
        url.deletingPathExtension().appendingPathExtension("optim.safetensors")
    }

    /// Writes the parameters (or `values`, e.g. the EMA, in the store's layout) with metadata.
    public static func saveWeights(_ store: ParameterStore, to url: URL, metadata: [String: String], values: Tensor? = nil,
                                   dtype: SafeTensorsDType = .F32) throws {
        var writer = SafeTensorsWriter(metadata: metadata.merging([formatKey: formatValue]) { a, _ in a })
        let flat = (values ?? store.values!).floats()
        flat.withUnsafeBufferPointer { all in
            for (i, p) in store.parameters.enumerated() {
                let n = p.value.count
                writer.add(p.name!, shape: p.value.shape, values: UnsafeBufferPointer(rebasing: all[store.offsets[i]..<(store.offsets[i] + n)]),
                           dtype: dtype)
            }
        }
        try writer.write(to: url)
    }

    /// Loads weights by name into the store. Every parameter must be present with its shape;
    /// extra tensors are an error too (a different model), each named in the message.
    public static func loadWeights(_ store: ParameterStore, from url: URL) throws -> SafeTensorsFile {
        let file = try SafeTensorsFile(contentsOf: url)
        var problems: [String] = []
        for p in store.parameters {
            guard let info = file.info(p.name!) else { problems.append("missing '\(p.name!)'"); continue }
            if info.shape != p.value.shape { problems.append("'\(p.name!)' has shape \(info.shape), the model needs \(p.value.shape)") }
        }
        let known = Set(store.names)
        for name in file.names where !known.contains(name) { problems.append("unexpected '\(name)'") }
        if !problems.isEmpty {
            let shown = problems.prefix(5).joined(separator: "; ") + (problems.count > 5 ? "; and \(problems.count - 5) more" : "")
            throw SafeTensorsError(path: url.path, "does not match the model: \(shown); check that the checkpoint and the recipe/config agree")
        }
        for p in store.parameters { p.value.copy(from: try file.floats(p.name!)) }
        return file
    }

    /// Optimiser moments, EMA and the training position (any extra state as metadata).
    public static func saveOptimizer(_ optimizer: AdamWOptimizer, ema: ExponentialMovingAverage?, to url: URL,
                                     metadata: [String: String]) throws {
        var writer = SafeTensorsWriter(metadata: metadata.merging(["step": String(optimizer.step)]) { a, _ in a })
        writer.add("adam.m", shape: [optimizer.m.count], values: optimizer.m.floats())
        writer.add("adam.v", shape: [optimizer.v.count], values: optimizer.v.floats())
        if let ema { writer.add("ema", shape: [ema.average.count], values: ema.average.floats()) }
        try writer.write(to: url)
    }

    public static func loadOptimizer(_ optimizer: AdamWOptimizer, ema: ExponentialMovingAverage?, from url: URL) throws -> [String: String] {
        let file = try SafeTensorsFile(contentsOf: url)
        guard let stepText = file.metadata["step"], let step = Int(stepText),
              file.shape("adam.m") == [optimizer.m.count], file.shape("adam.v") == [optimizer.v.count] else {
            throw SafeTensorsError(path: url.path, "optimiser state does not match the model (\(optimizer.m.count) parameters)")
        }
        optimizer.restore(step: step, m: try file.floats("adam.m"), v: try file.floats("adam.v"))
        if let ema, file.info("ema") != nil { ema.average.copy(from: try file.floats("ema")) }
        return file.metadata
    }
}
