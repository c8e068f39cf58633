import Foundation

/// A line chart rendered to a PNG (through `PNGWriter`) with no image library: a white
/// canvas, a frame, four grid lines a side with numeric tick labels (a 3 × 5 pixel font of
/// digits and `.-e`, scaled ×2), and each series as a 2-pixel polyline with square markers in
/// `colors[i]` (the palette of `TrainingCurves.svg`). Names are not drawn: the caller lists the
/// series beside the image with `colorName(i)`. The experiments' plots use it.
public struct LinePlot {
    public var series: [TrainingCurves.Series]
    public var width = 640
    public var height = 400

    /// The palette (RGB) and its names, in series order.
    public static let colors: [(UInt8, UInt8, UInt8)] = [
        (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28), (0x2C, 0xA0, 0x2C), (0xFF, 0x7F, 0x0E), (0x94, 0x67, 0xBD), (0x8C, 0x56, 0x4B), (0xE3, 0x77, 0xC2),
        (0x7F, 0x7F, 0x7F),
    ]
    public static let colorNames = ["blue", "red", "green", "orange", "purple", "brown", "pink", "grey"]
    public static func colorName(_ i: Int) -> String { colorNames[i % colorNames.count] }

    public init(series: [TrainingCurves.Series], width: Int = 640, height: Int = 400) {
        self.series = series
        self.width = width
        self.height = height
    }

    /// The plot area in pixels (left, top, right, bottom), inside the tick labels.
    public var frame: (left: Int, top: Int, right: Int, bottom: Int) { (64, 16, width - 16, height - 36) }

    /// The data ranges drawn: the points' extent, widened when flat, y padded by 5 %.
    public var ranges: (x0: Double, x1: Double, y0: Double, y1: Double) {
        let all = series.flatMap(\.points).filter { $0.step.isFinite && $0.value.isFinite }
        guard !all.isEmpty else { return (0, 1, 0, 1) }
        var x0 = all.map(\.step).min()!, x1 = all.map(\.step).max()!
        var y0 = all.map(\.value).min()!, y1 = all.map(\.value).max()!
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        return (x0, x1, y0 - pad, y1 + pad)
    }

    /// The pixel of a data point.
    public func pixel(x: Double, y: Double) -> (Int, Int) {
        let f = frame, r = ranges
        let px = Double(f.left) + (x - r.x0) / (r.x1 - r.x0) * Double(f.right - f.left)
        let py = Double(f.top) + (1 - (y - r.y0) / (r.y1 - r.y0)) * Double(f.bottom - f.top)
        return (Int(px.rounded()), Int(py.rounded()))
    }

    /// The image as RGB bytes, rows top-down.
    public func rgb() -> [UInt8] {
        var canvas = Canvas(width: width, height: height)
        let f = frame, r = ranges
        for i in 0...4 {
            let y = f.top + (f.bottom - f.top) * i / 4, x = f.left + (f.right - f.left) * i / 4
            canvas.line(f.left, y, f.right, y, (0xE4, 0xE4, 0xE4), thickness: 1)
            canvas.line(x, f.top, x, f.bottom, (0xE4, 0xE4, 0xE4), thickness: 1)
            let yv = r.y1 - (r.y1 - r.y0) * Double(i) / 4, xv = r.x0 + (r.x1 - r.x0) * Double(i) / 4
            let yText = TrainingCurves.tick(yv), xText = TrainingCurves.tick(xv)
            canvas.text(yText, right: f.left - 6, centerY: y)
            canvas.text(xText, centerX: x, top: f.bottom + 8)
        }
        canvas.line(f.left, f.top, f.right, f.top, (0x88, 0x88, 0x88), thickness: 1)
        canvas.line(f.left, f.bottom, f.right, f.bottom, (0x88, 0x88, 0x88), thickness: 1)
        canvas.line(f.left, f.top, f.left, f.bottom, (0x88, 0x88, 0x88), thickness: 1)
        canvas.line(f.right, f.top, f.right, f.bottom, (0x88, 0x88, 0x88), thickness: 1)
        for (i, s) in series.enumerated() {
            let c = Self.colors[i % Self.colors.count]
            let pts = s.points.filter { $0.step.isFinite && $0.value.isFinite }.map { pixel(x: $0.step, y: $0.value) }
            for (a, b) in zip(pts, pts.dropFirst()) { canvas.line(a.0, a.1, b.0, b.1, c, thickness: 2) }
            if pts.count <= 64 { for p in pts { canvas.square(p.0, p.1, radius: 3, c) } }
        }
        return canvas.pixels
    }

    public func png() -> Data { PNGWriter.encode(width: width, height: height, rgb: rgb()) }

    struct Canvas {
        let width: Int, height: Int
        var pixels: [UInt8]

        init(width: Int, height: Int) {
            self.width = width
            self.height = height
            pixels = [UInt8](repeating: 255, count: width * height * 3)
        }

        mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = 3 * (y * width + x)
            pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
        }

        mutating func square(_ x: Int, _ y: Int, radius: Int, _ c: (UInt8, UInt8, UInt8)) {
            for dy in -radius...radius { for dx in -radius...radius { set(x + dx, y + dy, c) } }
        }

        /// Bresenham, each point a `thickness`-wide square.
        mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8), thickness: Int) {
            var x = x0, y = y0
            let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
            var err = dx + dy
            while true {
                for a in 0..<thickness { for b in 0..<thickness { set(x + a - thickness / 2, y + b - thickness / 2, c) } }
                if x == x1 && y == y1 { break }
                let e2 = 2 * err
                if e2 >= dy { err += dy; x += sx }
                if e2 <= dx { err += dx; y += sy }
            }
        }

        /// 3 × 5 glyphs, rows top-down, 3 bits a row (most significant bit left).
        static let glyphs: [Character: [UInt8]] = [
            "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
            "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
            ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0], "+": [0, 2, 7, 2, 0], "e": [0, 7, 7, 4, 7],
        ]
        static let scale = 2
        static func textWidth(_ s: String) -> Int { s.count * 4 * scale - scale }

        mutating func text(_ s: String, x: Int, y: Int) {
            for (k, ch) in s.enumerated() {
                guard let rows = Self.glyphs[ch] else { continue }
                for (r, bits) in rows.enumerated() {
                    for col in 0..<3 where bits & (4 >> col) != 0 {
                        for a in 0..<Self.scale { for b in 0..<Self.scale {
                            set(x + (k * 4 + col) * Self.scale + a, y + r * Self.scale + b, (0x33, 0x33, 0x33))
                        } }
                    }
                }
            }
        }

        mutating func text(_ s: String, right: Int, centerY: Int) { text(s, x: right - Self.textWidth(s), y: centerY - 5 * Self.scale / 2) }
        mutating func text(_ s: String, centerX: Int, top: Int) { text(s, x: centerX - Self.textWidth(s) / 2, y: top) }
    }
}
