import Foundation

/// The CUDA backend's knobs: which kernel variants and shapes it picks, and debugging switches.
/// One value, built from the environment in one place (`fromEnvironment`), passed to
/// `CUDABackend.init` and readable (or changed, by the checks and benchmarks) as
/// `CUDABackend.tuning`. nil for an optional knob: the backend chooses (see the methods named
/// in each field's description). Every variable and its meaning: `CUDATuning.variables`.
///
/// A value outside a knob's allowed set is ignored (the backend chooses), as it always was.
public struct CUDATuning: Sendable, Equatable, CustomStringConvertible {
    /// The most consecutive blocks one fused launch steps (mamba_step.cu's WM_STACK_MAX).
    public static let fusedStackMaximum = 16

    /// Wait for every kernel and GEMM as it is queued, so that a fault is reported against the
    /// kernel that caused it (debugging; slow).
    public var synchronizeEveryLaunch = false
    /// Generation uses step graphs (`StepGraphBackend.stepGraphsEnabled`).
    public var stepGraphsEnabled = true
    /// 4 or 8 fixes the scan's steps per lane (`scanItems(_:)`).
    public var scanItems: Int?
    /// 8 or 12 fixes the scan's channels per thread block (`scanChannels(_:)`).
    public var scanChannels: Int?
    /// The scan backward adds its dB / dC sums by vector atomics (sm_90's red.v2 / v4) where
    /// the rows are aligned for them; false: scalar atomics.
    public var scanVectorAtomics = true
    /// 1 or 2 fixes the scan forward's B / C tile buffers (`scanBCBuffers(_:)`).
    public var scanBCBuffers: Int?
    /// 16 or 32 fixes the lanes of a scan forward's chain, 8, 12 or 16 its channels per block
    /// with 16 lanes (`scanForwardKernel(_:)`).
    public var scanForwardLanes: Int?
    public var scanForwardChannels: Int?
    /// The same for the backward (`scanBackwardKernel(_:)`).
    public var scanBackwardLanes: Int?
    public var scanBackwardChannels: Int?
    /// Fixes the scan's sequence segments before clamping (`scanSegments(_:)`), for experiments.
    public var scanSegments: Int?
    /// Generation runs each residual Mamba block as one fused launch (mamba_step.cu).
    public var fusedBlockSteps = true
    /// The smallest batch that takes the fused block step (≥ 1). Measured on an H100 (SaShiMi-small,
    /// RTF complex / real): batch 1 fused 0.352 / 0.381 against 0.349 / 0.358 unfused, 2 0.69 /
    /// 0.75 against 0.46 / 0.48. (With 256-thread blocks the fused step was slower at batch 1,
    /// and this was 2.)
    public var fusedStepMinimumBatch = 1
    /// 1, 2, 4 or 8 fixes the streams per thread block of the fused block step (`fusedStepStreams`).
    public var fusedStepStreams: Int?
    /// The most consecutive blocks one fused launch steps; kept within 1…16 (1: a launch per block).
    public var fusedStackLayers = CUDATuning.fusedStackMaximum {
        didSet { fusedStackLayers = min(max(1, fusedStackLayers), Self.fusedStackMaximum) }
    }
    /// Bytes of weights the fused step's thread blocks may read in all per block-step (`fusedStepPays`).
    public var fusedStepMaxTraffic = 200 << 20
    /// The fused block step prefetches the next block's weights into L2.
    public var fusedStepPrefetchWeights = true
    /// The fused block step stores the SSM states evict-first.
    public var fusedStepStreamStates = true
    /// 256 or 512 fixes the fused block step's threads per block (`fusedStepThreads`; the
    /// cluster step takes 256 unless fixed).
    public var fusedStepThreads: Int?
    /// The output head may ride in the last stage's fused launch.
    public var fusedStepHead = true
    /// The cluster step and the one-block kernels compiled for fixed stage widths
    /// (`StepGraphBackend.fusedStepSpecialised`).
    public var fusedStepSpecialised = true
    /// 1, 2, 4, 8 or 16 fixes the cluster step's streams per cluster, 0 switches the cluster
    /// step off (`fusedStepClusterShape`).
    public var fusedStepClusterStreams: Int?
    /// 4 or 8 fixes the cluster step's thread blocks per cluster.
    public var fusedStepClusterBlocks: Int?

    /// The defaults: the backend chooses everything.
    public init() {}

    /// One environment variable: its name, what it sets, and how its value is read.
    public struct Variable: Sendable {
        public let name: String
        public let help: String
        let apply: @Sendable (inout CUDATuning, String) -> Void
    }

    /// Every variable `fromEnvironment` reads, the one list of them.
    public static let variables: [Variable] = [
        flag("WAVEMAMBA_CUDA_SYNC", "1: wait for every launch (debugging)", on: "1", \.synchronizeEveryLaunch),
        enabled("WAVEMAMBA_CUDA_GRAPHS", "0: generation does not use step graphs", \.stepGraphsEnabled),
        choice("WAVEMAMBA_SCAN_ITEMS", "scan steps per lane: 4 or 8", [4, 8], \.scanItems),
        choice("WAVEMAMBA_SCAN_CHANNELS", "scan channels per block: 8 or 12", [8, 12], \.scanChannels),
        choice("WAVEMAMBA_SCAN_BC_BUFFERS", "scan forward B / C tile buffers: 1 or 2", [1, 2], \.scanBCBuffers),
        enabled("WAVEMAMBA_SCAN_VECTOR_RED", "0: the scan backward uses scalar atomics", \.scanVectorAtomics),
        choice("WAVEMAMBA_SCAN_FWD_LANES", "scan forward lanes per chain: 16 or 32", [16, 32], \.scanForwardLanes),
        choice("WAVEMAMBA_SCAN_FWD_CHANNELS", "scan forward channels per 16-lane block: 8, 12 or 16", [8, 12, 16], \.scanForwardChannels),
        choice("WAVEMAMBA_SCAN_BWD_LANES", "scan backward lanes per chain: 16 or 32", [16, 32], \.scanBackwardLanes),
        choice("WAVEMAMBA_SCAN_BWD_CHANNELS", "scan backward channels per 16-lane block: 8, 12 or 16", [8, 12, 16], \.scanBackwardChannels),
        Variable(name: "WAVEMAMBA_SCAN_SEGMENTS", help: "scan sequence segments (an integer; clamped by the sequence)") { t, v in
            if let n = Int(v) { t.scanSegments = n }
        },
        enabled("WAVEMAMBA_CUDA_FUSED_STEP", "0: generation steps each Mamba block op by op", \.fusedBlockSteps),
        Variable(name: "WAVEMAMBA_FUSED_STEP_MIN_BATCH", help: "smallest batch that takes the fused block step (≥ 1)") { t, v in
            if let n = Int(v) { t.fusedStepMinimumBatch = max(1, n) }
        },
        choice("WAVEMAMBA_FUSED_STEP_STREAMS", "fused step streams per block: 1, 2, 4 or 8", [1, 2, 4, 8], \.fusedStepStreams),
        Variable(name: "WAVEMAMBA_FUSED_STACK", help: "blocks per fused launch, 1…16 (clamped)") { t, v in
            if let n = Int(v) { t.fusedStackLayers = n }
        },
        Variable(name: "WAVEMAMBA_FUSED_MAX_MB", help: "MB of weights the fused step may read per block-step (default 200)") { t, v in
            if let n = Int(v) { t.fusedStepMaxTraffic = n << 20 }
        },
        flag("WAVEMAMBA_FUSED_PREFETCH", "0 or 1: the fused step prefetches the next block's weights (default 1)", on: "1", \.fusedStepPrefetchWeights),
        flag("WAVEMAMBA_FUSED_STCS", "0 or 1: the fused step stores the SSM states evict-first (default 1)", on: "1", \.fusedStepStreamStates),
        choice("WAVEMAMBA_FUSED_STEP_THREADS", "fused step threads per block: 256 or 512", [256, 512], \.fusedStepThreads),
        enabled("WAVEMAMBA_FUSED_HEAD", "0: the output head never rides in the last fused launch", \.fusedStepHead),
        enabled("WAVEMAMBA_FUSED_SPECIALISED", "0: no cluster step and no fixed-width fused kernels", \.fusedStepSpecialised),
        choice("WAVEMAMBA_CLUSTER_STREAMS", "cluster step streams per cluster: 1, 2, 4, 8 or 16; 0: no cluster step",
               [0, 1, 2, 4, 8, 16], \.fusedStepClusterStreams),
        choice("WAVEMAMBA_CLUSTER_BLOCKS", "cluster step thread blocks per cluster: 4 or 8", [4, 8], \.fusedStepClusterBlocks),
    ]

    /// The tuning the environment asks for: each of `variables` that is set, applied to the defaults.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> CUDATuning {
        var t = CUDATuning()
        for v in variables { if let value = environment[v.name] { v.apply(&t, value) } }
        return t
    }

    /// "defaults", or the knobs that differ from them ("scanItems 8, fusedBlockSteps false").
    public var description: String {
        let base = Mirror(reflecting: CUDATuning()).children.map { Self.plain($0.value) }
        let changed = zip(Mirror(reflecting: self).children, base).compactMap { child, original -> String? in
            let now = Self.plain(child.value)
            guard now != original, let label = child.label else { return nil }
            return "\(label) \(now)"
        }
        return changed.isEmpty ? "defaults" : changed.joined(separator: ", ")
    }

    /// An optional's payload without "Optional(…)".
    private static func plain(_ value: Any) -> String {
        let m = Mirror(reflecting: value)
        if m.displayStyle == .optional { return m.children.first.map { "\($0.value)" } ?? "nil" }
        return "\(value)"
    }

    // MARK: Variable kinds

    /// Set when the value equals `on`, cleared by any other value.
    static func flag(_ name: String, _ help: String, on: String, _ kp: WritableKeyPath<CUDATuning, Bool>) -> Variable {
        Variable(name: name, help: help) { t, v in t[keyPath: kp] = v == on }
    }

    /// On unless the value is "0".
    static func enabled(_ name: String, _ help: String, _ kp: WritableKeyPath<CUDATuning, Bool>) -> Variable {
        Variable(name: name, help: help) { t, v in t[keyPath: kp] = v != "0" }
    }

    /// An integer among `allowed`; anything else leaves the choice to the backend.
    static func choice(_ name: String, _ help: String, _ allowed: [Int], _ kp: WritableKeyPath<CUDATuning, Int?>) -> Variable {
        Variable(name: name, help: help) { t, v in t[keyPath: kp] = Int(v).flatMap { allowed.contains($0) ? $0 : nil } }
    }
}
