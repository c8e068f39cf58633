import CSndFile
import Foundation

/// What a file's header says: format, rate, channels, length.
public struct AudioInfo: Sendable, Equatable {
    public let path: String
    /// Container, e.g. "WAV (Microsoft)", "FLAC (Free Lossless Audio Codec)".
    public let container: String
    /// Sample encoding, e.g. "Signed 16 bit PCM", "Vorbis".
    public let encoding: String
    public let sampleRate: Int
    public let channels: Int
    public let frames: Int

    public var duration: Double { sampleRate > 0 ? Double(frames) / Double(sampleRate) : 0 }

    /// A short format label: "WAV/PCM_16", "FLAC/PCM_16", "OGG/VORBIS".
    public var shortFormat: String { "\(shortContainer)/\(shortEncoding)" }
    let shortContainer: String
    let shortEncoding: String
}

/// An open libsndfile handle; closed on deinit. Opening checks the usual failure causes
/// first so that each gets its own message.
final class SoundFile {
    let handle: OpaquePointer
    let info: SF_INFO
    let path: String

    init(reading path: String) throws {
        self.path = path
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
            throw AudioIOError(.notFound, path: path, reason: "no such file", fix: "check the path")
        }
        guard !isDir.boolValue else {
            throw AudioIOError(.invalidArgument, path: path, reason: "is a folder, not an audio file", fix: "pass a file, or use a command that takes folders")
        }
        guard access(path, R_OK) == 0 else {
            throw AudioIOError(.permissionDenied, path: path, reason: "permission denied", fix: "make it readable (chmod a+r) or run as its owner")
        }
        let size = (try? fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
        guard size != 0 else {
            throw AudioIOError(.emptyFile, path: path, reason: "file is empty (0 bytes)", fix: "re-export or re-copy it, or remove it")
        }
        var info = SF_INFO()
        guard let h = sf_open(path, Int32(SFM_READ), &info) else {
            let msg = String(cString: sf_strerror(nil))
            throw Self.classifyOpenError(path: path, message: msg)
        }
        handle = h
        self.info = info
        guard info.channels > 0, info.samplerate > 0 else {
            sf_close(h)
            throw AudioIOError(.corrupt, path: path, reason: "header says \(info.channels) channels at \(info.samplerate) Hz", fix: "the file is corrupt; re-export it")
        }
    }

    deinit { sf_close(handle) }

    /// libsndfile's parser log; for WAV/AIFF it notes chunks that claim more bytes than the
    /// file holds as `data : 529200 (should be 19920)` and then quietly shortens the file.
    var truncationFromLog: AudioIOError? {
        var buffer = [CChar](repeating: 0, count: 8192)
        sf_command(handle, Int32(SFC_GET_LOG_INFO), &buffer, Int32(buffer.count))
        let log = String(cString: buffer)
        for line in log.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("data"), let r = t.range(of: "(should be ") else { continue }
            let declared = t.split(separator: ":").dropFirst().first?.split(separator: " ").first.flatMap { Int($0) }
            let actual = Int(t[r.upperBound...].prefix { $0.isNumber })
            if let declared, let actual, actual < declared {
                return AudioIOError(.truncated, path: path,
                                    reason: "truncated: the data chunk declares \(declared) bytes but the file holds \(actual)",
                                    fix: "re-copy or re-export the file")
            }
        }
        return nil
    }

    /// SF_COUNT_MAX: the container does not say how long it is (some OGG streams).
    var lengthUnknown: Bool { info.frames >= Int64.max / 2 }

    static func classifyOpenError(path: String, message: String) -> AudioIOError {
        let lower = message.lowercased()
        if lower.contains("format") || lower.contains("unknown") || lower.contains("not recognised") || lower.contains("unsupported") {
            return AudioIOError(.notAudio, path: path, reason: "not a readable audio file (libsndfile: \(message))",
                                fix: "convert it to WAV or FLAC (e.g. with sox or ffmpeg), or remove it")
        }
        return AudioIOError(.corrupt, path: path, reason: "cannot decode (libsndfile: \(message))",
                            fix: "the file is corrupt or truncated; re-export or re-copy it")
    }

    var audioInfo: AudioInfo {
        let major = info.format & Int32(SF_FORMAT_TYPEMASK)
        let sub = info.format & Int32(SF_FORMAT_SUBMASK)
        return AudioInfo(path: path, container: sndfileFormatName(major), encoding: sndfileFormatName(sub),
                         sampleRate: Int(info.samplerate), channels: Int(info.channels), frames: Int(info.frames),
                         shortContainer: Self.shortName(major: major), shortEncoding: Self.shortName(subtype: sub))
    }

    static func shortName(major: Int32) -> String {
        switch major {
        case Int32(SF_FORMAT_WAV): return "WAV"
        case Int32(SF_FORMAT_WAVEX): return "WAVEX"
        case Int32(SF_FORMAT_FLAC): return "FLAC"
        case Int32(SF_FORMAT_OGG): return "OGG"
        case Int32(SF_FORMAT_AIFF): return "AIFF"
        case Int32(SF_FORMAT_AU): return "AU"
        case Int32(SF_FORMAT_CAF): return "CAF"
        case Int32(SF_FORMAT_W64): return "W64"
        case Int32(SF_FORMAT_RF64): return "RF64"
        case Int32(SF_FORMAT_MPEG): return "MPEG"
        default: return String(format: "0x%x", major >> 16)
        }
    }

    static func shortName(subtype: Int32) -> String {
        switch subtype {
        case Int32(SF_FORMAT_PCM_S8): return "PCM_S8"
        case Int32(SF_FORMAT_PCM_U8): return "PCM_U8"
        case Int32(SF_FORMAT_PCM_16): return "PCM_16"
        case Int32(SF_FORMAT_PCM_24): return "PCM_24"
        case Int32(SF_FORMAT_PCM_32): return "PCM_32"
        case Int32(SF_FORMAT_FLOAT): return "FLOAT"
        case Int32(SF_FORMAT_DOUBLE): return "DOUBLE"
        case Int32(SF_FORMAT_ULAW): return "ULAW"
        case Int32(SF_FORMAT_ALAW): return "ALAW"
        case Int32(SF_FORMAT_VORBIS): return "VORBIS"
        case Int32(SF_FORMAT_OPUS): return "OPUS"
        case Int32(SF_FORMAT_MPEG_LAYER_III): return "MP3"
        default: return String(format: "0x%x", subtype)
        }
    }
}

extension AudioFile {
    /// Describes a file. With `verify` (the default) the whole file is decoded once, so a
    /// truncated or corrupt file is caught here rather than later; without it only the
    /// header is read (lengths of streams that do not state one are still counted).
    public static func info(_ path: String, verify: Bool = true) throws -> AudioInfo {
        let file = try SoundFile(reading: path)
        if let e = file.truncationFromLog { throw e }
        guard verify || file.lengthUnknown else { return file.audioInfo }
        let frames = try decodeAll(file) { _, _ in }
        return file.audioInfo.withFrames(frames)
    }
}

extension AudioInfo {
    func withFrames(_ frames: Int) -> AudioInfo {
        AudioInfo(path: path, container: container, encoding: encoding, sampleRate: sampleRate, channels: channels,
                  frames: frames, shortContainer: shortContainer, shortEncoding: shortEncoding)
    }
}
