import Engine
import Foundation
import Spectral
import XCTest
@testable import Layers

/// Timings at SaShiMi's sizes (H = 64, N = 64, L = 16384, batch 4); runs only with
/// S4D_TIMING=1 and prints (no assertions):
///   S4D_TIMING=1 swift test -c release -Xswiftc -enable-testing --filter S4DTimingTests
final class S4DTimingTests: XCTestCase {
    func testTiming() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["S4D_TIMING"] == "1", "set S4D_TIMING=1")
        let backend = CPUBackend()
        let store = ParameterStore(backend: backend)
        let B = 4, L = 16384, H = 64
        let layer = S4D(store, prefix: "", channels: H, seed: 1, cache: FFTPlanCache())
        store.finalize()
        let x = backend.empty([B * L, H])
        backend.fillNormal(x, mean: 0, std: 1, seed: 3)
        func cpu() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
        }
        var cpuMs = 0.0  // process CPU time of the last `ms` call (robust to a shared machine)
        func ms(_ body: () -> Void) -> Double {
            let t = Date(), c = cpu()
            body()
            cpuMs = (cpu() - c) * 1e3
            return Date().timeIntervalSince(t) * 1e3
        }
        for rep in 0..<3 {
            let kForward = ms { _ = layer.kernel(length: L, Tape.inference()) }
            let kForwardCPU = cpuMs
            let forward = ms { _ = layer(Variable(x), batch: B, Tape.inference()) }
            let forwardCPU = cpuMs
            var backward = 0.0
            let total = ms {
                let tape = Tape()
                let input = Variable(x, requiresGrad: true)
                let y = layer(input, batch: B, tape)
                let loss = Op.weightedSum(y, x, tape)
                backward = ms { tape.backward(from: loss) }
            }
            let dk = backend.empty([H, L])
            backend.fillNormal(dk, mean: 0, std: 1, seed: 4)
            let tape = Tape()
            let k2 = layer.kernel(length: L, tape)
            let kBackward = ms { tape.backward(from: Op.weightedSum(k2, dk, tape)) }
            let kBackwardCPU = cpuMs
            print(String(format: "S4D timing rep %d (%d threads), wall (cpu) ms: kernel fwd %.1f (%.1f), kernel bwd %.1f (%.1f), layer fwd %.1f (%.1f), fwd+bwd %.1f (bwd %.1f)",
                         rep, backend.pool.threads, kForward, kForwardCPU, kBackward, kBackwardCPU, forward, forwardCPU, total, backward))
        }
        let streams = 16
        let state = layer.makeStepState(batch: streams)
        let u = backend.empty([streams, H])
        backend.fillNormal(u, mean: 0, std: 1, seed: 5)
        _ = layer.step(u, state)
        let steps = 2000
        let t = ms { for _ in 0..<steps { _ = layer.step(u, state) } }
        print(String(format: "S4D step: %.1f µs (cpu %.1f µs) per step for %d streams", t * 1e3 / Double(steps),
                     cpuMs * 1e3 / Double(steps), streams))
    }
}
