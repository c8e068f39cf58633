import ArgumentParser
import Engine
import Foundation
import Models
import SafeTensors

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Work with safetensors checkpoints.",
        subcommands: [Inspect.self, Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a model checkpoint's weights again, in BF16 if asked, with metadata added: a file to ship.",
            discussion: """
            The model config and audio settings come along, so the file generates and scores like \
            the original (BF16 keeps 8 bits of mantissa: half the size, logits within about 1 %). \
            --set KEY=VALUE adds metadata (e.g. training_steps=6345, fid=54.9); the source file's \
            path and the weights' dtype are recorded as exported_from and weights_dtype. An \
            optimiser companion is not exported: the file is for generating, not for resuming.
            """)

        @Argument(help: "A checkpoint written by `wavemamba train`.")
        var checkpoint: String

        @Option(help: "The file to write.")
        var out: String

        @Flag(help: "Store the weights as BF16 instead of F32.")
        var bf16 = false

        @Option(name: .customLong("set"), help: "Metadata KEY=VALUE to add (repeatable).")
        var set: [String] = []

        func validate() throws {
            for kv in set where !kv.contains("=") || kv.hasPrefix("=") {
                throw ValidationError("--set takes KEY=VALUE, got '\(kv)'")
            }
        }

        func run() throws {
            let (model, audio, metadata) = try loadCheckpoint(checkpoint, backend: CPUBackend(threads: 1))
            var extra = metadata.filter { ![Checkpoint.configKey, ModelCheckpoint.audioKey, "parameters", Checkpoint.formatKey].contains($0.key) }
            extra["exported_from"] = checkpoint
            extra["weights_dtype"] = bf16 ? "BF16" : "F32"
            for kv in set {
                let parts = kv.split(separator: "=", maxSplits: 1)
                extra[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            do {
                try ModelCheckpoint.save(model, audio: audio, to: URL(fileURLWithPath: out), extra: extra, dtype: bf16 ? .BF16 : .F32)
            } catch {
                Console.error("\(error)")
                throw ExitCode(1)
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
            print("wrote \(out): \(model.parameterCount) parameters as \(bf16 ? "BF16" : "F32"), \(String(format: "%.1f", Double(size) / 1e6)) MB")
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a safetensors file's tensors (name, dtype, shape) and metadata.",
            discussion: "A malformed file (truncated, hostile or non-safetensors) gets a one-line error and exit status 1.")

        @Argument(help: "A .safetensors file.")
        var file: String

        func run() throws {
            let f: SafeTensorsFile
            do {
                f = try SafeTensorsFile(contentsOf: URL(fileURLWithPath: file))
            } catch let e as SafeTensorsError {
                Console.error(e.description)
                throw ExitCode(1)
            }
            let rows = f.tensors.sorted { $0.name < $1.name }.map { t in
                [t.name, t.dtype.rawValue, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", "\(t.elementCount)"]
            }
            print(formatTable(["name", "dtype", "shape", "elements"], rows, rightAligned: [3]))
            let total = f.tensors.reduce(0) { $0 + $1.elementCount }
            print("\(f.tensors.count) tensors, \(total) elements")
            if !f.metadata.isEmpty {
                print("metadata:")
                for k in f.metadata.keys.sorted() { print("  \(k): \(f.metadata[k]!)") }
            }
        }
    }
}
