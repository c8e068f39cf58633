import CSndFile

/// The container and sample encodings wavemamba writes.
public enum AudioFileFormat: String, CaseIterable, Sendable {
    /// WAV, 16-bit signed PCM (the default: what SC09 and most tools use).
    case wav16
    /// WAV, 32-bit float (lossless for model output before quantisation).
    case wavFloat
    /// FLAC, 16-bit (lossless, about half the size of WAV).
    case flac16
    /// OGG/Vorbis (lossy; for sharing previews).
    case oggVorbis

    var sndfileFormat: Int32 {
        switch self {
        case .wav16: return Int32(SF_FORMAT_WAV | SF_FORMAT_PCM_16)
        case .wavFloat: return Int32(SF_FORMAT_WAV | SF_FORMAT_FLOAT)
        case .flac16: return Int32(SF_FORMAT_FLAC | SF_FORMAT_PCM_16)
        case .oggVorbis: return Int32(SF_FORMAT_OGG | SF_FORMAT_VORBIS)
        }
    }

    /// The format implied by a file name's extension (`.flac` → FLAC, `.ogg` → Vorbis,
    /// otherwise WAV: 16-bit, or 32-bit float when `float`).
    public static func forPath(_ path: String, float: Bool = false) -> AudioFileFormat {
        if path.lowercased().hasSuffix(".flac") { return .flac16 }
        if path.lowercased().hasSuffix(".ogg") { return .oggVorbis }
        return float ? .wavFloat : .wav16
    }
}

/// File extensions treated as audio when scanning folders (everything libsndfile reads).
public let audioFileExtensions: Set<String> = [
    "wav", "wave", "flac", "ogg", "oga", "opus", "aif", "aiff", "aifc", "au", "snd", "caf", "w64", "rf64", "mp3", "voc", "sd2", "mat",
]

/// libsndfile's human-readable name of a major format or subtype.
func sndfileFormatName(_ format: Int32) -> String {
    var info = SF_FORMAT_INFO()
    info.format = format
    let rc = sf_command(nil, Int32(SFC_GET_FORMAT_INFO), &info, Int32(MemoryLayout<SF_FORMAT_INFO>.size))
    guard rc == 0, let name = info.name else { return String(format: "0x%x", format) }
    return String(cString: name)
}
