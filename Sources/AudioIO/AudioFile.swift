import CSndFile
import Foundation

/// Decoded audio: Float32 samples in [-1, 1], frames × channels interleaved.
public struct Audio: Sendable {
    public var samples: [Float]
    public var sampleRate: Int
    public var channels: Int

    public init(samples: [Float], sampleRate: Int, channels: Int = 1) {
        precondition(channels > 0 && samples.count % channels == 0)
        self.samples = samples
        self.sampleRate = sampleRate
        self.channels = channels
    }

    public var frames: Int { samples.count / channels }
    public var duration: Double { Double(frames) / Double(sampleRate) }

    /// The average of the channels (mono stays as it is).
    public func mixedToMono() -> Audio {
        if channels == 1 { return self }
        var mono = [Float](repeating: 0, count: frames)
        let scale = 1 / Float(channels)
        samples.withUnsafeBufferPointer { s in
            for f in 0..<frames {
                var acc: Float = 0
                for c in 0..<channels { acc += s[f * channels + c] }
                mono[f] = acc * scale
            }
        }
        return Audio(samples: mono, sampleRate: sampleRate, channels: 1)
    }
}

/// Reading and writing audio files through libsndfile (WAV, FLAC, OGG/Vorbis, AIFF, …).
public enum AudioFile {
    /// Decodes a whole file to Float32. A file whose data ends before its header says
    /// (a truncated download) is an error, not silently shorter audio.
    public static func read(_ path: String) throws -> Audio {
        let file = try SoundFile(reading: path)
        if let e = file.truncationFromLog { throw e }
        let channels = Int(file.info.channels)
        var samples: [Float] = []
        if !file.lengthUnknown { samples.reserveCapacity(Int(file.info.frames) * channels) }
        _ = try decodeAll(file) { block, n in samples.append(contentsOf: UnsafeBufferPointer(start: block, count: n * channels)) }
        return Audio(samples: samples, sampleRate: Int(file.info.samplerate), channels: channels)
    }

    /// Decodes `file` block by block, handing each block to `sink`; returns the frame count.
    /// Decoder errors, fewer frames than the header promises, and no frames at all are errors.
    static func decodeAll(_ file: SoundFile, _ sink: (UnsafePointer<Float>, Int) -> Void) throws -> Int {
        let channels = Int(file.info.channels)
        let blockFrames = 1 << 14
        var block = [Float](repeating: 0, count: blockFrames * channels)
        var got = 0
        try block.withUnsafeMutableBufferPointer { buf in
            while true {
                let n = Int(sf_readf_float(file.handle, buf.baseAddress!, sf_count_t(blockFrames)))
                if n <= 0 { break }
                sink(buf.baseAddress!, n)
                got += n
                if got > Int(Int32.max) * 64 {
                    throw AudioIOError(.corrupt, path: file.path, reason: "implausibly long stream", fix: "the file is corrupt; re-export it")
                }
            }
        }
        if sf_error(file.handle) != 0 {
            let msg = String(cString: sf_strerror(file.handle))
            throw AudioIOError(.corrupt, path: file.path, reason: "decoding failed after \(got) frames (libsndfile: \(msg))",
                               fix: "the file is corrupt or truncated; re-export or re-copy it")
        }
        if !file.lengthUnknown && got < Int(file.info.frames) {
            throw AudioIOError(.truncated, path: file.path, reason: "truncated: header promises \(file.info.frames) frames, only \(got) could be decoded",
                               fix: "re-copy or re-export the file")
        }
        if got == 0 {
            throw AudioIOError(file.lengthUnknown ? .corrupt : .emptyFile, path: file.path,
                               reason: file.lengthUnknown ? "no audio could be decoded (corrupt or truncated stream)" : "contains no audio frames",
                               fix: "re-export or re-copy it, or remove it")
        }
        return got
    }

    /// Reads, mixes to mono and resamples to `sampleRate` (when it differs).
    public static func readMono(_ path: String, sampleRate: Int, quality: Resampler.Quality = .default) throws -> [Float] {
        let audio = try read(path).mixedToMono()
        if audio.sampleRate == sampleRate { return audio.samples }
        do {
            return try Resampler.resample(audio.samples, from: audio.sampleRate, to: sampleRate, quality: quality)
        } catch let e as AudioIOError {
            throw AudioIOError(e.kind, path: path, reason: e.reason, fix: e.fix)
        }
    }

    /// Writes audio atomically (temp file beside the target, then rename). Samples outside
    /// [-1, 1] are clipped for PCM formats rather than wrapped.
    public static func write(_ audio: Audio, to path: String, format: AudioFileFormat? = nil) throws {
        let format = format ?? AudioFileFormat.forPath(path)
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())").path
        var info = SF_INFO()
        info.samplerate = Int32(audio.sampleRate)
        info.channels = Int32(audio.channels)
        info.format = format.sndfileFormat
        guard sf_format_check(&info) != 0 else {
            throw AudioIOError(.invalidArgument, path: path, reason: "cannot write \(format.rawValue) at \(audio.sampleRate) Hz with \(audio.channels) channels",
                               fix: "use another format or rate")
        }
        guard let h = sf_open(tmp, Int32(SFM_WRITE), &info) else {
            let msg = String(cString: sf_strerror(nil))
            throw AudioIOError(.writeFailed, path: path, reason: "cannot create file (libsndfile: \(msg))", fix: "check that the folder exists and is writable")
        }
        sf_command(h, Int32(SFC_SET_CLIPPING), nil, Int32(SF_TRUE))
        let written = audio.samples.withUnsafeBufferPointer { buf in
            sf_writef_float(h, buf.baseAddress, sf_count_t(audio.frames))
        }
        let err = sf_error(h)
        sf_close(h)
        guard written == audio.frames, err == 0 else {
            unlink(tmp)
            throw AudioIOError(.writeFailed, path: path, reason: "wrote \(written) of \(audio.frames) frames", fix: "check free disk space")
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw AudioIOError(.writeFailed, path: path, reason: "cannot move the finished file into place (\(e))", fix: "check permissions of the folder")
        }
    }
}
