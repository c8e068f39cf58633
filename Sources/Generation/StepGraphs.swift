import Engine
import FusedSteps
import Models

/// Generation on a backend with step graphs (CUDA): one recorded graph per pooling phase,
/// each = embedding of `state.token` → model step → on-device softmax, top-p and draw, which
/// writes the next tokens back into `state.token` and appends them to a device history. A
/// generated sample is then one graph launch; the history comes to the host every
/// `capacity` samples (or every `progressInterval` when progress is reported).
///
/// The kernels of a step depend on which pooling stages run, which cycles with the step
/// state's `period` (Π pool): graph k serves every step of phase k. The first step of each
/// phase runs eagerly (every kernel, ours and cuBLAS's, is then loaded outside a capture);
/// the second is captured and launched; later ones are replays.
final class StepGraphs {
    let model: SaShiMi
    let state: SaShiMiStepState
    let backend: any StepGraphBackend
    let settings: Sampler.Settings
    /// Draws per stream between two history downloads.
    let capacity: Int
    static let progressInterval = 256
    /// (batch) UInt64 as 2·batch Int32: how many draws each stream has made (its SplitMix64 index).
    let counters: Tensor
    /// (batch, capacity) Int32: draw k of stream s at [s, k mod capacity].
    let history: Tensor
    /// (batch, capacity) Float32: the model's log-probability of each draw, laid out as `history`.
    let logProbHistory: Tensor
    private var graphs: [(any DeviceGraph)?]
    private var ranEagerly: [Bool]
    /// Draws so far (the same for every stream).
    private(set) var drawn = 0
    private var hostHistory: [Int32]
    private var hostLogProbs: [Float]

    init(model: SaShiMi, state: SaShiMiStepState, backend: any StepGraphBackend, settings: Sampler.Settings, capacity: Int = 1024) {
        self.model = model
        self.state = state
        self.backend = backend
        self.settings = settings
        self.capacity = capacity
        counters = backend.empty([2 * state.batch], dtype: .int32)
        backend.fill(counters, value: 0)   // bit pattern 0: every counter starts at draw 0
        history = backend.empty([state.batch, capacity], dtype: .int32)
        logProbHistory = backend.empty([state.batch, capacity])
        graphs = Array(repeating: nil, count: state.period)
        ranEagerly = Array(repeating: false, count: state.period)
        hostHistory = Array(repeating: 0, count: state.batch * capacity)
        hostLogProbs = Array(repeating: 0, count: state.batch * capacity)
    }

    /// Graphs captured so far and their node counts.
    var capturedNodeCounts: [Int] { graphs.compactMap { $0?.nodeCount } }

    /// What one sample queues: the model step on the device tokens, then the draw.
    private func body() {
        model.stepOnDeviceTokens(state)
        backend.sampleTokens(logits: state.logits, temperature: settings.temperature, topP: settings.topP, seed: settings.seed,
                             counters: counters, tokens: state.token, history: history, logProbs: logProbHistory)
    }

    /// One sample per stream, queued on the device.
    func step() {
        let k = state.phase
        if let g = graphs[k] {
            model.advanceWithoutLaunching(state)
            backend.launchGraph(g)
        } else if !ranEagerly[k] {
            body()
            ranEagerly[k] = true
        } else {
            let g = backend.captureGraph { body() }   // records (and advances the stage counters) without running
            graphs[k] = g
            backend.launchGraph(g)
        }
        drawn += 1
    }

    /// Samples `count` tokens per stream after `next` (the tokens fed first), appending them
    /// to `out` and adding each draw's log-probability under the model to `logLikelihood[s]`;
    /// returns each stream's last token.
    func generate(count: Int, next: [Int32], into out: inout [[UInt8]], logLikelihood: UnsafeMutablePointer<Double>,
                  progress: ((Int) -> Void)?) -> [Int32] {
        if count == 0 { return next }
        state.token.copy(from: next)
        let batch = state.batch
        var last = next
        var done = 0
        while done < count {
            let n = min(count - done, progress == nil ? capacity : min(capacity, Self.progressInterval))
            let first = drawn
            for _ in 0..<n { step() }
            hostHistory.withUnsafeMutableBytes { backend.download(history, into: $0) }
            hostLogProbs.withUnsafeMutableBytes { backend.download(logProbHistory, into: $0) }
            for s in 0..<batch {
                let row = s * capacity
                for i in 0..<n { out[s].append(UInt8(hostHistory[row + (first + i) % capacity])) }
                for i in 0..<n { logLikelihood[s] += Double(hostLogProbs[row + (first + i) % capacity]) }
                last[s] = hostHistory[row + (first + n - 1) % capacity]
            }
            done += n
            progress?(done)
        }
        return last
    }
}
