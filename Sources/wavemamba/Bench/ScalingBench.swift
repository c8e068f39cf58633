import ArgumentParser
import AudioIO
import Distributed
import Engine
import Foundation
import Models

/// `bench train --ranks K`: data-parallel training throughput of SaShiMi (complex Mamba) on
/// 1…K ranks. For each k it runs `mpirun -np k` on this very binary in worker mode; each rank
/// trains on its own `batch` clips per step (the global batch grows with k, as it does when
/// ranks are added to a run) and all-reduces the gradients as `wavemamba train` does.
///
/// Efficiency is throughput per core relative to one rank: samples/s(k) / samples/s(1) ×
/// cores(1) / cores(k), where cores = ranks × threads per rank. On one machine whose cores
/// the ranks share (the default: threads = cores / k) it is the speed-up itself; with fixed
/// --threads it is the usual speed-up / k.
struct ScalingBench {
    let batch: Int
    let length: Int
    let steps: Int
    let threads: Int?
    let quick: Bool

    /// One rank count's measurement, printed by rank 0 of a worker job as a JSON line.
    struct Measurement: Codable {
        var ranks: Int
        var threads: Int
        var secondsPerStep: Double
        var allReduceSecondsPerStep: Double
        var samplesPerSecond: Double
    }

    /// Runs the workers for 1…maxRanks and tabulates them.
    func run(maxRanks: Int) throws -> BenchReport {
        guard let mpirun = Self.mpirun() else {
            throw ValidationError("bench train --ranks needs Open MPI's mpirun on PATH (Debian: apt-get install openmpi-bin libopenmpi-dev)")
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var report = BenchReport(title: "wavemamba bench train --ranks \(maxRanks) (SaShiMi mamba-complex, \(batch) × \(length) samples per rank per step)",
                                 threads: threads ?? cores)
        var results: [Measurement] = []
        for k in 1...maxRanks {
            let t = threads ?? max(1, cores / k)
            let m = try launch(mpirun: mpirun, ranks: k, threads: t)
            results.append(m)
            let base = results[0]
            let speedup = m.samplesPerSecond / base.samplesPerSecond
            let efficiency = speedup * Double(base.ranks * base.threads) / Double(m.ranks * m.threads)
            report.add("scaling", "\(k) rank\(k == 1 ? "" : "s") × \(t) thread\(t == 1 ? "" : "s")",
                       ["samples/s": m.samplesPerSecond, "s/step": m.secondsPerStep, "all-reduce s/step": m.allReduceSecondsPerStep,
                        "speed-up": speedup, "efficiency": efficiency])
        }
        report.notes.append("each rank trains on its own \(batch) clips per step; samples/s counts all ranks")
        report.notes.append("efficiency = speed-up × cores(1 rank) / cores(k ranks), cores = ranks × threads per rank (1.0 = perfect scaling)")
        if threads == nil && maxRanks > 1 {
            report.notes.append("the ranks share this machine's \(cores) cores (threads = cores / ranks); on separate machines pass --threads")
        }
        return report
    }

    private func launch(mpirun: String, ranks: Int, threads: Int) throws -> Measurement {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        var args = getuid() == 0 ? ["--allow-run-as-root"] : []
        args += ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), Self.executable, "bench", "train", "--scaling-worker",
                 "--batch", String(batch), "--length", String(length), "--steps", String(steps), "--threads", String(threads)]
        if quick { args.append("--quick") }
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0,
              let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let m = try? JSONDecoder().decode(Measurement.self, from: Data(line.utf8)) else {
            throw ValidationError("the \(ranks)-rank worker job failed (mpirun status \(p.terminationStatus)): \(text.suffix(500))")
        }
        return m
    }

    /// Worker mode (inside mpirun): trains `steps` timed steps after a warm-up and prints rank
    /// 0's measurement.
    func work() throws {
        let comm = try Distribution.detect()
        let backend = CPUBackend(threads: threads)
        let model = SaShiMi(config: ModelBench.config(.mambaComplex, quick: quick), backend: backend, seed: 1)
        let optimizer = AdamWOptimizer(store: model.store)
        var rng = SplitMix64(seed: 7 &+ UInt64(comm.rank))
        let tokens = (0..<(batch * length)).map { _ in Int32(rng.next() % 256) }
        let inputs = backend.indices([128] + tokens.dropLast(), shape: [batch, length])
        let targets = backend.indices(tokens, shape: [batch, length])
        let grads = model.store.grads!
        var reduceSeconds = 0.0
        func step() throws {
            model.store.zeroGrad()
            let tape = Tape()
            let loss = model.loss(inputs: inputs, targets: targets, tape: tape, training: true, firstSample: comm.rank * batch)
            tape.backward(from: loss)
            let t0 = DispatchTime.now().uptimeNanoseconds
            try comm.allReduceSum(grads.pointer, count: grads.count, what: "the gradient all-reduce")
            backend.scale(grads, by: 1 / Float(comm.size), out: grads, accumulate: false)
            reduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            optimizer.update(learningRate: 1e-3)
        }
        try step() // warm-up: fills the allocator's cache and the MPI connections
        reduceSeconds = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<steps { try step() }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 / Double(steps)
        // Rank 0's clock covers the job: every step ends in the all-reduce, which waits for all.
        let m = Measurement(ranks: comm.size, threads: backend.pool.threads, secondsPerStep: seconds,
                            allReduceSecondsPerStep: reduceSeconds / Double(steps),
                            samplesPerSecond: Double(comm.size * batch * length) / seconds)
        try comm.finish()
        if comm.rank == 0 { print(String(decoding: try JSONEncoder().encode(m), as: UTF8.self)) }
    }

    static func mpirun() -> String? {
        let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return paths.map { "\($0)/mpirun" }.first(where: FileManager.default.isExecutableFile(atPath:))
    }

    /// This binary's path (the workers run the same one).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static let columns: [String: [String]] = ["scaling": ["samples/s", "s/step", "all-reduce s/step", "speed-up", "efficiency"]]
}
