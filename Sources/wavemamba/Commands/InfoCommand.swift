import ArgumentParser
import AudioIO
import CUDABackend
import Engine
import Foundation

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe audio files (format, sample rate, channels, frames, duration), or the devices (--devices).",
        discussion: """
        `--devices` lists the CPU and each NVIDIA GPU (name, memory, compute capability, driver \
        version) or says exactly why no GPU is usable. \
        Folders are scanned recursively and get a totals line. Unreadable files are reported on \
        stderr as `error: PATH: REASON` and the others are still listed; the exit status is 1 if \
        any file failed.
        """)

    @Argument(help: "Audio files or folders.")
    var paths: [String] = []

    @Flag(help: "List the CPU and the GPUs that --device can use.")
    var devices = false

    func validate() throws {
        if paths.isEmpty && !devices { throw ValidationError("give audio files or folders to describe, or --devices") }
    }

    func run() throws {
        if devices {
            let nvrtc: String
            do { nvrtc = try NVRTC().description } catch { nvrtc = "unavailable: \(error)" }
            print(CUDADevices.report(CUDADevices.probe(), cpuThreads: ProcessInfo.processInfo.activeProcessorCount, nvrtc: nvrtc,
                                         cublas: CuBLAS.probe()))
            // The CUDA backend's knobs, from the WAVEMAMBA_* variables (CUDATuning.variables).
            print("cuda tuning: \(CUDATuning.fromEnvironment())")
        }
        var failed = 0
        for path in paths {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                failed += describeFolder(path)
            } else {
                do {
                    let info = try AudioFile.info(path)
                    print(formatTable(Self.header, [Self.row(info, shownAs: path)], rightAligned: Self.numeric))
                } catch let e as AudioIOError {
                    Console.error("\(path): \(e.message)")
                    failed += 1
                }
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }

    static let header = ["path", "format", "rate", "channels", "frames", "duration"]
    static let numeric: Set<Int> = [2, 3, 4, 5]

    static func row(_ info: AudioInfo, shownAs path: String) -> [String] {
        [path, info.shortFormat, "\(info.sampleRate)", "\(info.channels)", "\(info.frames)", formatDuration(info.duration)]
    }

    /// Lists a folder; returns how many files failed.
    private func describeFolder(_ path: String) -> Int {
        let folder: AudioFolder
        do {
            folder = try AudioFolder(URL(fileURLWithPath: path))
        } catch let e as AudioIOError {
            Console.error("\(path): \(e.message)")
            return 1
        } catch {
            Console.error("\(path): \(error)")
            return 1
        }
        var rows: [[String]] = []
        var failed = 0
        var seconds = 0.0, frames = 0
        var rates: [Int: Int] = [:]
        for rel in folder.relativePaths {
            let shown = (path as NSString).appendingPathComponent(rel)
            do {
                let info = try AudioFile.info(folder.url(rel).path)
                rows.append(Self.row(info, shownAs: shown))
                seconds += info.duration
                frames += info.frames
                rates[info.sampleRate, default: 0] += 1
            } catch let e as AudioIOError {
                Console.error("\(shown): \(e.message)")
                failed += 1
            } catch {
                Console.error("\(shown): \(error)")
                failed += 1
            }
        }
        if !rows.isEmpty { print(formatTable(Self.header, rows, rightAligned: Self.numeric)) }
        let rateText = rates.keys.sorted().map { "\($0) Hz × \(rates[$0]!)" }.joined(separator: ", ")
        print("total: \(path): \(rows.count) audio files, \(frames) frames, \(formatDuration(seconds))"
              + (rateText.isEmpty ? "" : " (\(rateText))") + (failed > 0 ? ", \(failed) unreadable" : ""))
        return failed
    }
}
