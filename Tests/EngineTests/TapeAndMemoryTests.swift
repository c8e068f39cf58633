import Foundation
import XCTest
@testable import Engine

final class TapeAndMemoryTests: XCTestCase {
    func testInferenceTapeRecordsNothing() {
        let b = CPUBackend()
        let x = Variable(b.tensor([1, 2, 3, 4], shape: [2, 2]), requiresGrad: true)
        let tape = Tape.inference()
        let y = Op.silu(Op.add(x, x, tape), tape)
        XCTAssertEqual(tape.count, 0)
        XCTAssertFalse(y.requiresGrad)
    }

    func testGradientsAccumulateOverUses() {
        let b = CPUBackend()
        let x = Variable(b.tensor([1, -2, 3], shape: [3]), requiresGrad: true)
        let tape = Tape()
        // L = Σ (x + x) ⊙ x·3 … dL/dx = 2·3x·2 = 12x via two paths of add and two of mul.
        let y = Op.mul(Op.add(x, x, tape), Op.scale(x, 3, tape), tape)
        let loss = Op.weightedSum(y, b.tensor([1, 1, 1], shape: [3]), tape)
        XCTAssertEqual(tape.ops, ["add", "scale", "mul", "weightedSum"])
        tape.backward(from: loss)
        XCTAssertEqual(x.grad!.floats(), [12, -24, 36])
    }

    /// Same thread count ⇒ bit-identical results, through a whole forward and backward.
    func testDeterminism() {
        func run() -> [Float] {
            let b = CPUBackend(threads: 2)
            let store = ParameterStore(backend: b)
            let w = store.add("w", shape: [64, 48]) { b.fillNormal($0, mean: 0, std: 0.1, seed: 5) }
            let conv = store.add("conv.weight", shape: [64, 1, 4]) { b.fillNormal($0, mean: 0, std: 0.5, seed: 6) }
            let ln = store.add("norm.weight", shape: [64], values: [Float](repeating: 1, count: 64), options: .noDecay)
            store.finalize()
            let x = b.empty([4 * 100, 48]); b.fillNormal(x, mean: 0, std: 1, seed: 7)
            let tape = Tape()
            let h = Op.causalConv1d(Op.linear(Variable(x), w, nil, tape), conv, nil, batch: 4, silu: true, tape)
            let y = Op.dropout(Op.layerNorm(h, ln, nil, tape), p: 0.1, seed: 9, training: true, tape)
            let loss = Op.crossEntropy(y, targets: b.indices((0..<400).map { Int32($0 % 64) }, shape: [400]), tape)
            tape.backward(from: loss)
            return store.grads!.floats() + loss.value.floats()
        }
        let a = run(), c = run()
        XCTAssertEqual(a.map(\.bitPattern), c.map(\.bitPattern))
    }

    /// After the first step the caching allocator serves every buffer from its cache.
    func testBuffersAreReusedAcrossSteps() {
        let b = CPUBackend()
        let store = ParameterStore(backend: b)
        let w = store.add("w", shape: [32, 16]) { b.fillNormal($0, mean: 0, std: 0.1, seed: 1) }
        store.finalize()
        let x = b.empty([128, 16]); b.fillNormal(x, mean: 0, std: 1, seed: 2)
        let targets = b.indices((0..<128).map { Int32($0 % 32) }, shape: [128])
        func step() {
            store.zeroGrad()
            let tape = Tape()
            let loss = Op.crossEntropy(Op.silu(Op.linear(Variable(x), w, nil, tape), tape), targets: targets, tape)
            tape.backward(from: loss)
        }
        step()
        let after1 = b.allocator.systemAllocations
        for _ in 0..<5 { step() }
        XCTAssertEqual(b.allocator.systemAllocations, after1, "steps after the first must not call the system allocator")
        XCTAssertGreaterThan(b.memoryInUse.peak, 0)
    }

    func testSizeClasses() {
        XCTAssertEqual(HostCachingAllocator.sizeClass(1), 64)
        XCTAssertEqual(HostCachingAllocator.sizeClass(4096), 4096)
        XCTAssertEqual(HostCachingAllocator.sizeClass(4097), 5120)
        for n in [5000, 123_457, 1 << 20, (1 << 20) + 1, 77_777_777] {
            let c = HostCachingAllocator.sizeClass(n)
            XCTAssertGreaterThanOrEqual(c, n)
            XCTAssertLessThanOrEqual(Double(c), Double(n) * 1.25 + 64)
        }
    }

    func testViews() {
        let b = CPUBackend()
        let t = b.tensor((0..<12).map(Float.init), shape: [3, 4])
        let cols = t.columns(1..<3)
        XCTAssertFalse(cols.isContiguous)
        XCTAssertEqual(cols.floats(), [1, 2, 5, 6, 9, 10])
        XCTAssertEqual(t.slice(rows: 1..<3).floats(), (4..<12).map(Float.init))
        XCTAssertEqual(t.reshaped([2, -1]).shape, [2, 6])
    }
}

final class RecomputeOpTests: XCTestCase {
    /// A recomputed residual block gives the ordinary gradients bit for bit, keeps one op on the
    /// outer tape, and its input's other uses still accumulate in order.
    func testRecomputeMatchesOrdinaryGradients() {
        func run(_ recompute: Bool) -> (grads: [Float], ops: [String]) {
            let b = CPUBackend(threads: 2)
            let store = ParameterStore(backend: b)
            let w = store.add("w", shape: [16, 16]) { b.fillNormal($0, mean: 0, std: 0.2, seed: 3) }
            let ln = store.add("norm.weight", shape: [16], values: [Float](repeating: 1, count: 16), options: .noDecay)
            store.finalize()
            let x0 = b.empty([32, 16]); b.fillNormal(x0, mean: 0, std: 1, seed: 4)
            let tape = Tape()
            let x = Op.silu(Op.linear(Variable(x0), w, nil, tape), tape)
            func block(_ x: Variable, _ t: Tape) -> Variable {
                let h = Op.dropout(Op.silu(Op.linear(Op.layerNorm(x, ln, nil, t), w, nil, t), t), p: 0.2, seed: 8, training: true, t)
                return Op.add(h, x, t)
            }
            let y = recompute ? Op.recompute(x, tape, block) : block(x, tape)
            let loss = Op.crossEntropy(Op.add(y, x, tape), targets: b.indices((0..<32).map { Int32($0 % 16) }, shape: [32]), tape)
            let ops = tape.ops
            tape.backward(from: loss)
            return (store.grads!.floats() + loss.value.floats(), ops)
        }
        let plain = run(false), again = run(true)
        XCTAssertEqual(plain.grads.map(\.bitPattern), again.grads.map(\.bitPattern))
        XCTAssertEqual(again.ops.filter { $0 == "recompute" }.count, 1)
        XCTAssertLessThan(again.ops.count, plain.ops.count)
    }
}
