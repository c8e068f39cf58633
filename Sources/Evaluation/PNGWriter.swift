import Foundation

/// A minimal PNG encoder (8-bit RGB, no interlace) needing no image library: scanlines with
/// filter 0 inside a zlib stream of "stored" (uncompressed) deflate blocks, chunk CRC-32s
/// and the stream's Adler-32. Files are larger than compressed PNGs, which is fine for the
/// report's small spectrograms.
public enum PNGWriter {
    /// PNG bytes of a `width × height` image; `rgb` holds 3 bytes per pixel, rows top-down.
    public static func encode(width: Int, height: Int, rgb: [UInt8]) -> Data {
        precondition(width > 0 && height > 0 && rgb.count == width * height * 3, "PNG: \(rgb.count) bytes for \(width)×\(height) RGB")
        var raw = [UInt8]()
        raw.reserveCapacity(height * (1 + 3 * width))
        for y in 0..<height {
            raw.append(0)  // filter type 0 (none)
            raw += rgb[(y * 3 * width)..<((y + 1) * 3 * width)]
        }
        var png = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = [UInt8]()
        header += bigEndian(UInt32(width))
        header += bigEndian(UInt32(height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, filter 0, no interlace
        png += chunk("IHDR", header)
        png += chunk("IDAT", zlibStored(raw))
        png += chunk("IEND", [])
        return png
    }

    /// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4), ≤ 65535 bytes each.
    public static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // deflate, 32 K window; header checksum: 0x7801 % 31 == 0
        var start = 0
        repeat {
            let n = min(65535, data.count - start)
            let last = start + n == data.count
            out.append(last ? 1 : 0)  // BFINAL, BTYPE = 00
            out += [UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += data[start..<(start + n)]
            start += n
        } while start < data.count
        out += bigEndian(adler32(data))
        return out
    }

    static func chunk(_ type: String, _ body: [UInt8]) -> Data {
        let typeBytes = Array(type.utf8)
        var d = Data(bigEndian(UInt32(body.count)))
        d += typeBytes
        d += body
        d += bigEndian(crc32(typeBytes + body))
        return d
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    /// CRC-32 (ISO 3309, polynomial 0xEDB88320 reflected), as PNG chunks use.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// Adler-32 (RFC 1950).
    public static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in bytes {
            a = (a + UInt32(x)) % 65521
            b = (b + a) % 65521
        }
        return (b << 16) | a
    }
}

/// Spectrogram pictures for the report.
public enum SpectrogramImage {
    /// A log-mel spectrogram (frames × nMels, natural-log power) as a PNG: time left to right,
    /// low mels at the bottom, the top `rangeDB` decibels of the clip in a viridis-like map,
    /// each cell drawn as `scaleX × scaleY` pixels.
    public static func png(logMel: [Float], frames: Int, nMels: Int, rangeDB: Double = 80, scaleX: Int = 2, scaleY: Int = 3) -> Data {
        precondition(logMel.count == frames * nMels)
        let width = frames * scaleX, height = nMels * scaleY
        let top = Double(logMel.max() ?? 0)
        let span = rangeDB / (10 / Foundation.log(10.0))  // dB → natural-log power units
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let m = nMels - 1 - y / scaleY
            for x in 0..<width {
                let t = x / scaleX
                let v = min(1, max(0, (Double(logMel[t * nMels + m]) - (top - span)) / span))
                let c = viridis(v)
                let o = (y * width + x) * 3
                rgb[o] = c.0
                rgb[o + 1] = c.1
                rgb[o + 2] = c.2
            }
        }
        return PNGWriter.encode(width: width, height: height, rgb: rgb)
    }

    /// Five-stop approximation of matplotlib's viridis.
    static func viridis(_ v: Double) -> (UInt8, UInt8, UInt8) {
        let stops: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        let x = v * Double(stops.count - 1)
        let i = min(stops.count - 2, Int(x)), f = x - Double(i)
        let a = stops[i], b = stops[i + 1]
        func mix(_ p: Double, _ q: Double) -> UInt8 { UInt8(max(0, min(255, (p + (q - p) * f).rounded()))) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// 16-bit PCM mono WAV bytes (for audio players embedded as data: URIs).
public enum WAVBytes {
    public static func encode(_ samples: [Float], sampleRate: Int) -> Data {
        let dataBytes = samples.count * 2
        var d = Data()
        func u32(_ v: Int) { d += withUnsafeBytes(of: UInt32(v).littleEndian) { Data($0) } }
        func u16(_ v: Int) { d += withUnsafeBytes(of: UInt16(v).littleEndian) { Data($0) } }
        d += Data("RIFF".utf8); u32(36 + dataBytes); d += Data("WAVE".utf8)
        d += Data("fmt ".utf8); u32(16); u16(1); u16(1); u32(sampleRate); u32(sampleRate * 2); u16(2); u16(16)
        d += Data("data".utf8); u32(dataBytes)
        var pcm = [Int16](repeating: 0, count: samples.count)
        for (i, s) in samples.enumerated() { pcm[i] = Int16(max(-32768, min(32767, (Double(s) * 32767).rounded()))).littleEndian }
        pcm.withUnsafeBytes { d += Data($0) }
        return d
    }
}
