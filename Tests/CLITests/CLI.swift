import AudioIO
import Foundation
import XCTest

/// Runs the built `wavemamba` binary as a user would.
struct CLI {
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// The executable beside the test bundle (`.build/<config>/wavemamba`).
    static var binary: URL {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir = dir.deletingLastPathComponent() }
        let candidate = dir.appendingPathComponent("wavemamba")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wavemamba")
    }

    /// A corpus of 256-sample 8 kHz tones under `root/corpus`: 4 in train/, 2 in valid/, tone i
    /// of split s at 300 + 120·i + `splitOffset`·(letters in s's name) Hz.
    static func writeToneCorpus(in root: URL, splitOffset: Double = 0) throws {
        for (split, count) in [("train", 4), ("valid", 2)] {
            let folder = root.appendingPathComponent("corpus/\(split)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for i in 0..<count {
                let f = 300.0 + 120 * Double(i) + splitOffset * Double(split.count)
                let x = (0..<256).map { Float(0.5 * sin(2 * .pi * f * Double($0) / 8000)) }
                try AudioFile.write(Audio(samples: x, sampleRate: 8000), to: folder.appendingPathComponent("t\(i).wav").path)
            }
        }
    }

    /// Runs `wavemamba args…`; with `prefix`, runs `prefix… wavemamba args…` (e.g. setpriv).
    static func run(_ args: [String], prefix: [String] = [], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        if prefix.isEmpty {
            p.executableURL = binary
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: prefix[0])
            p.arguments = Array(prefix.dropFirst()) + [binary.path] + args
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes fully before waiting, so a chatty child cannot block on a full pipe.
        // The box is written by the reader thread and read only after group.wait(), which orders the two.
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}
