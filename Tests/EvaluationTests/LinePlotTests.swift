import Evaluation
import Foundation
import XCTest

final class LinePlotTests: XCTestCase {
    /// Each series is drawn in its palette colour through its points, the rest of the plot
    /// area stays white, and the PNG has the requested size.
    func testSeriesAreDrawnInTheirColoursAtTheirPoints() {
        let a = TrainingCurves.Series(name: "a", points: [(0, 1), (1, 2), (2, 3)])
        let b = TrainingCurves.Series(name: "b", points: [(0, 3), (2, 1)])
        let plot = LinePlot(series: [a, b], width: 200, height: 150)
        let rgb = plot.rgb()
        func color(_ p: (Int, Int)) -> [UInt8] { let i = 3 * (p.1 * 200 + p.0); return Array(rgb[i..<(i + 3)]) }
        let blue = LinePlot.colors[0], red = LinePlot.colors[1]
        XCTAssertEqual(color(plot.pixel(x: 0, y: 1)), [blue.0, blue.1, blue.2])
        XCTAssertEqual(color(plot.pixel(x: 2, y: 3)), [blue.0, blue.1, blue.2])
        XCTAssertEqual(color(plot.pixel(x: 2, y: 1)), [red.0, red.1, red.2])
        // Off both lines: a runs from (0, 1) to (2, 3), b from (0, 3) to (2, 1).
        XCTAssertEqual(color(plot.pixel(x: 0.3, y: 1.9)), [255, 255, 255])
        XCTAssertEqual(LinePlot.colorName(1), "red")
        let png = plot.png()
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 200, 0, 0, 0, 150])
    }
}
