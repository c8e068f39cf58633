import Kernels
import Spectral
import XCTest

final class FFTConvolutionTests: XCTestCase {
    let pool = ThreadPool(threads: 2)

    /// (B, L, H) cases: L = 1, primes, non-smooth sizes; H not a multiple of the channel block.
    let shapes: [(Int, Int, Int)] = [(1, 1, 1), (2, 7, 3), (3, 100, 5), (2, 257, 11), (1, 1000, 9)]

    func testForwardMatchesDirectLoop() {
        let cache = FFTPlanCache()
        for (B, L, H) in shapes {
            let u = randomFloats(B * L * H, seed: 1), k = randomFloats(H * L, seed: 2)
            let conv = FFTConvolution(length: L, channels: H, cache: cache, channelBlock: 4)
            XCTAssertGreaterThanOrEqual(conv.fftSize, 2 * L - 1)
            XCTAssertTrue(FFTSize.isSmooth(conv.fftSize))
            var y = [Float](repeating: .nan, count: B * L * H)
            conv.forward(u: u, kernel: k, y: &y, batch: B, pool: pool)
            let ref = DirectConvolution.forward(u: u.map(Double.init), kernel: k.map(Double.init),
                                                batch: B, length: L, channels: H)
            let err = maxRelativeError(y, ref)
            print("forward B=\(B) L=\(L) H=\(H) n=\(conv.fftSize): max|err|/max|ref| = \(err)")
            XCTAssertLessThanOrEqual(err, 1e-5, "B=\(B) L=\(L) H=\(H)")
        }
    }

    /// A known answer that needs no reference code: a delayed impulse kernel shifts the input.
    func testImpulseKernelDelays() {
        let (B, L, H, delay) = (2, 50, 3, 7)
        let conv = FFTConvolution(length: L, channels: H, cache: FFTPlanCache())
        let u = randomFloats(B * L * H, seed: 3)
        var k = [Float](repeating: 0, count: H * L)
        for h in 0..<H { k[h * L + delay] = 1 }
        var y = [Float](repeating: .nan, count: B * L * H)
        conv.forward(u: u, kernel: k, y: &y, batch: B, pool: pool)
        for b in 0..<B { for t in 0..<L { for h in 0..<H {
            let expected: Float = t < delay ? 0 : u[(b * L + t - delay) * H + h]
            XCTAssertEqual(y[(b * L + t) * H + h], expected, accuracy: 1e-6)
        } } }
        // In place (y = u) gives the same bits.
        var inPlace = u
        inPlace.withUnsafeMutableBufferPointer { p in
            conv.forward(u: p.baseAddress!, kernel: k, y: p.baseAddress!, batch: B, pool: pool)
        }
        XCTAssertEqual(inPlace, y)
    }

    /// Central finite differences of ℓ = Σ g·y in double precision. ℓ is bilinear in (u, k),
    /// so the difference quotient is exact up to rounding and checks the adjoint definitions
    /// independently of the direct-loop gradient formulas.
    func testBackwardMatchesFiniteDifferences() {
        let (B, L, H) = (2, 7, 3)
        let u = randomFloats(B * L * H, seed: 4), k = randomFloats(H * L, seed: 5), g = randomFloats(B * L * H, seed: 6)
        let conv = FFTConvolution(length: L, channels: H, cache: FFTPlanCache(), channelBlock: 2)
        var du = [Float](repeating: .nan, count: B * L * H), dk = [Float](repeating: .nan, count: H * L)
        conv.backward(dy: g, u: u, kernel: k, du: &du, dKernel: &dk, batch: B, pool: pool)

        let ud = u.map(Double.init), kd = k.map(Double.init), gd = g.map(Double.init)
        func loss(_ u: [Double], _ k: [Double]) -> Double {
            zip(DirectConvolution.forward(u: u, kernel: k, batch: B, length: L, channels: H), gd).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let eps = 1e-3
        var fdU = [Double](repeating: 0, count: u.count), fdK = [Double](repeating: 0, count: k.count)
        for i in u.indices {
            var p = ud, m = ud
            p[i] += eps; m[i] -= eps
            fdU[i] = (loss(p, kd) - loss(m, kd)) / (2 * eps)
        }
        for i in k.indices {
            var p = kd, m = kd
            p[i] += eps; m[i] -= eps
            fdK[i] = (loss(ud, p) - loss(ud, m)) / (2 * eps)
        }
        let errU = maxRelativeError(du, fdU), errK = maxRelativeError(dk, fdK)
        print("backward vs finite differences: du \(errU), dKernel \(errK)")
        XCTAssertLessThanOrEqual(errU, 1e-5)
        XCTAssertLessThanOrEqual(errK, 1e-5)
    }

    func testBackwardMatchesDirectGradient() {
        let cache = FFTPlanCache()
        for (B, L, H) in shapes {
            let u = randomFloats(B * L * H, seed: 7), k = randomFloats(H * L, seed: 8), g = randomFloats(B * L * H, seed: 9)
            let conv = FFTConvolution(length: L, channels: H, cache: cache, channelBlock: 4)
            var spectrum = [Float](repeating: .nan, count: conv.spectrumCount)
            conv.kernelSpectrum(kernel: k, spectrum: &spectrum, pool: pool)
            var du = [Float](repeating: .nan, count: B * L * H), dk = [Float](repeating: .nan, count: H * L)
            conv.backward(dy: g, u: u, spectrum: spectrum, du: &du, dKernel: &dk, batch: B, pool: pool)
            let ref = DirectConvolution.backward(dy: g, u: u, kernel: k, batch: B, length: L, channels: H)
            let errU = maxRelativeError(du, ref.du), errK = maxRelativeError(dk, ref.dKernel)
            print("backward B=\(B) L=\(L) H=\(H): du \(errU), dKernel \(errK)")
            XCTAssertLessThanOrEqual(errU, 1e-5, "du B=\(B) L=\(L) H=\(H)")
            XCTAssertLessThanOrEqual(errK, 1e-5, "dKernel B=\(B) L=\(L) H=\(H)")

            // One gradient alone gives the same bits as both together.
            var duOnly = [Float](repeating: .nan, count: B * L * H), dkOnly = [Float](repeating: .nan, count: H * L)
            conv.backward(dy: g, u: u, spectrum: spectrum, du: &duOnly, dKernel: nil, batch: B, pool: pool)
            conv.backward(dy: g, u: u, spectrum: spectrum, du: nil, dKernel: &dkOnly, batch: B, pool: pool)
            XCTAssertEqual(duOnly, du)
            XCTAssertEqual(dkOnly, dk)
        }
    }

    /// The same plans executed from several threads at once give the sequential bits, and
    /// the result does not depend on the thread count.
    func testConcurrentExecutionIsBitIdentical() {
        let (B, L, H, jobs) = (2, 300, 12, 6)
        let conv = FFTConvolution(length: L, channels: H, cache: FFTPlanCache(), channelBlock: 4)
        let serial = ThreadPool(threads: 1)
        let inputs = (0..<jobs).map { randomFloats(B * L * H, seed: 100 + UInt64($0)) }
        let kernels = (0..<jobs).map { randomFloats(H * L, seed: 200 + UInt64($0)) }

        func run(_ i: Int, _ pool: ThreadPool) -> (y: [Float], du: [Float], dk: [Float]) {
            var y = [Float](repeating: 0, count: B * L * H), du = y, dk = [Float](repeating: 0, count: H * L)
            conv.forward(u: inputs[i], kernel: kernels[i], y: &y, batch: B, pool: pool)
            conv.backward(dy: y, u: inputs[i], kernel: kernels[i], du: &du, dKernel: &dk, batch: B, pool: pool)
            return (y, du, dk)
        }
        let sequential = (0..<jobs).map { run($0, serial) }

        // Jobs in parallel, each single-threaded: one plan, many threads, different buffers.
        let results = UnsafeMutablePointer<(y: [Float], du: [Float], dk: [Float])>.allocate(capacity: jobs)
        results.initialize(repeating: ([], [], []), count: jobs)
        defer { results.deinitialize(count: jobs); results.deallocate() }
        ThreadPool(threads: 4).forEach(jobs) { i in results[i] = run(i, serial) }
        for i in 0..<jobs {
            XCTAssertEqual(results[i].y, sequential[i].y, "job \(i) y")
            XCTAssertEqual(results[i].du, sequential[i].du, "job \(i) du")
            XCTAssertEqual(results[i].dk, sequential[i].dk, "job \(i) dKernel")
        }
        // One job spread over threads.
        for threads in [2, 3] {
            let r = run(0, ThreadPool(threads: threads))
            XCTAssertEqual(r.y, sequential[0].y, "threads \(threads) y")
            XCTAssertEqual(r.du, sequential[0].du, "threads \(threads) du")
            XCTAssertEqual(r.dk, sequential[0].dk, "threads \(threads) dKernel")
        }
    }

    /// Plans are made once per shape, even when many threads ask at once.
    func testPlanCacheSharesPlansAcrossThreads() {
        let cache = FFTPlanCache()
        ThreadPool(threads: 4).forEach(16) { i in
            _ = FFTConvolution(length: 64 + (i % 4), channels: 8, cache: cache, channelBlock: 8)
        }
        // Lengths 64…67 need n ≥ 127…133, i.e. sizes 128 and 135.
        let sizes = Set((64...67).map { FFTSize.smooth(atLeast: 2 * $0 - 1) })
        XCTAssertEqual(cache.count, 2 * sizes.count)  // one r2c and one c2r per size
    }

    func testSmoothSizes() {
        XCTAssertEqual(FFTSize.smooth(atLeast: 1), 1)
        XCTAssertEqual(FFTSize.smooth(atLeast: 11), 12)
        XCTAssertEqual(FFTSize.smooth(atLeast: 513), 525)
        XCTAssertEqual(FFTSize.smooth(atLeast: 32767), 32768)
        XCTAssertFalse(FFTSize.isSmooth(22))
    }

    /// Timing for B=4, L=16384, H=256; runs only with SPECTRAL_TIMING=1 (prints, asserts
    /// nothing). SPECTRAL_BLOCK=n sets channelBlock, SPECTRAL_MEASURE=1 uses FFTW_MEASURE
    /// plans, WAVEMAMBA_THREADS the pool size. Release:
    ///   SPECTRAL_TIMING=1 swift test -c release -Xswiftc -enable-testing --filter FFTConvolutionTests/testTiming
    func testTimingForwardBackward() throws {
        guard ProcessInfo.processInfo.environment["SPECTRAL_TIMING"] == "1" else { throw XCTSkip("set SPECTRAL_TIMING=1") }
        let (B, L, H) = (4, 16384, 256)
        let block = Int(ProcessInfo.processInfo.environment["SPECTRAL_BLOCK"] ?? "") ?? 16
        let rigor: FFTPlanCache.Rigor = ProcessInfo.processInfo.environment["SPECTRAL_MEASURE"] == "1" ? .measure : .estimate
        let pool = ThreadPool()
        var clock = Date()
        let conv = FFTConvolution(length: L, channels: H, cache: FFTPlanCache(rigor: rigor), channelBlock: block)
        print("planning (\(rigor)): \(Date().timeIntervalSince(clock)) s")
        let u = randomFloats(B * L * H, seed: 1), k = randomFloats(H * L, seed: 2)
        var y = [Float](repeating: 0, count: B * L * H), du = y, dk = [Float](repeating: 0, count: H * L)
        var spectrum = [Float](repeating: 0, count: conv.spectrumCount)
        // CPU seconds of the whole process: on a shared machine, less disturbed than wall time.
        func cpu() -> Double {
            var r = rusage()
            getrusage(RUSAGE_SELF.rawValue, &r)
            return Double(r.ru_utime.tv_sec + r.ru_stime.tv_sec) + Double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6
        }
        for rep in 0..<3 {
            let cpu0 = cpu()
            clock = Date()
            conv.kernelSpectrum(kernel: k, spectrum: &spectrum, pool: pool)
            let t0 = Date()
            conv.forward(u: u, spectrum: spectrum, y: &y, batch: B, pool: pool)
            let t1 = Date()
            conv.backward(dy: y, u: u, spectrum: spectrum, du: &du, dKernel: &dk, batch: B, pool: pool)
            let t2 = Date()
            print(String(format: "rep %d threads %d block %d n %d: spectrum %.1f ms, forward %.1f ms, backward %.1f ms, total %.1f ms",
                         rep, pool.threads, block, conv.fftSize, t0.timeIntervalSince(clock) * 1e3, t1.timeIntervalSince(t0) * 1e3,
                         t2.timeIntervalSince(t1) * 1e3, t2.timeIntervalSince(clock) * 1e3) + String(format: " (cpu %.1f ms)", (cpu() - cpu0) * 1e3))
        }
    }
}
