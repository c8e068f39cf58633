import ArgumentParser
import Foundation
import SafeTensors

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Work with safetensors checkpoints.",
        subcommands: [Inspect.self])

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
