import XCTest
@testable import CUDABackend

/// `CUDATuning.fromEnvironment`: every documented variable sets its knob; values outside a
/// knob's set are ignored (the backend chooses), as they always were. Runs without a GPU.
final class TuningTests: XCTestCase {
    func testEveryVariableSetsItsKnob() {
        let defaults = CUDATuning.fromEnvironment([:])
        XCTAssertEqual(defaults, CUDATuning())
        XCTAssertEqual(defaults.description, "defaults")
        XCTAssertEqual(defaults.fusedStackLayers, 16)
        XCTAssertEqual(defaults.fusedStepMaxTraffic, 200 << 20)
        let cases: [(String, String, (CUDATuning) -> Bool)] = [
            ("WAVEMAMBA_CUDA_SYNC", "1", { $0.synchronizeEveryLaunch }),
            ("WAVEMAMBA_CUDA_GRAPHS", "0", { !$0.stepGraphsEnabled }),
            ("WAVEMAMBA_SCAN_ITEMS", "4", { $0.scanItems == 4 }),
            ("WAVEMAMBA_SCAN_CHANNELS", "12", { $0.scanChannels == 12 }),
            ("WAVEMAMBA_SCAN_BC_BUFFERS", "1", { $0.scanBCBuffers == 1 }),
            ("WAVEMAMBA_SCAN_VECTOR_RED", "0", { !$0.scanVectorAtomics }),
            ("WAVEMAMBA_SCAN_FWD_LANES", "32", { $0.scanForwardLanes == 32 }),
            ("WAVEMAMBA_SCAN_FWD_CHANNELS", "16", { $0.scanForwardChannels == 16 }),
            ("WAVEMAMBA_SCAN_BWD_LANES", "16", { $0.scanBackwardLanes == 16 }),
            ("WAVEMAMBA_SCAN_BWD_CHANNELS", "8", { $0.scanBackwardChannels == 8 }),
            ("WAVEMAMBA_SCAN_SEGMENTS", "3", { $0.scanSegments == 3 }),
            ("WAVEMAMBA_CUDA_FUSED_STEP", "0", { !$0.fusedBlockSteps }),
            ("WAVEMAMBA_FUSED_STEP_MIN_BATCH", "2", { $0.fusedStepMinimumBatch == 2 }),
            ("WAVEMAMBA_FUSED_STEP_STREAMS", "4", { $0.fusedStepStreams == 4 }),
            ("WAVEMAMBA_FUSED_STACK", "3", { $0.fusedStackLayers == 3 }),
            ("WAVEMAMBA_FUSED_MAX_MB", "64", { $0.fusedStepMaxTraffic == 64 << 20 }),
            ("WAVEMAMBA_FUSED_PREFETCH", "0", { !$0.fusedStepPrefetchWeights }),
            ("WAVEMAMBA_FUSED_STCS", "0", { !$0.fusedStepStreamStates }),
            ("WAVEMAMBA_FUSED_STEP_THREADS", "512", { $0.fusedStepThreads == 512 }),
            ("WAVEMAMBA_FUSED_HEAD", "0", { !$0.fusedStepHead }),
            ("WAVEMAMBA_FUSED_SPECIALISED", "0", { !$0.fusedStepSpecialised }),
            ("WAVEMAMBA_CLUSTER_STREAMS", "0", { $0.fusedStepClusterStreams == 0 }),
            ("WAVEMAMBA_CLUSTER_BLOCKS", "8", { $0.fusedStepClusterBlocks == 8 }),
        ]
        XCTAssertEqual(Set(cases.map(\.0)), Set(CUDATuning.variables.map(\.name)), "every documented variable is tested")
        for v in CUDATuning.variables { XCTAssertFalse(v.help.isEmpty, v.name) }
        for (name, value, check) in cases {
            let t = CUDATuning.fromEnvironment([name: value])
            XCTAssertTrue(check(t), "\(name)=\(value)")
            XCTAssertNotEqual(t, defaults, name)
            XCTAssertNotEqual(t.description, "defaults", name)
        }
        XCTAssertEqual(CUDATuning.fromEnvironment(["WAVEMAMBA_SCAN_ITEMS": "8", "WAVEMAMBA_CUDA_GRAPHS": "0"]).description,
                       "stepGraphsEnabled false, scanItems 8")
    }

    /// Bad values are ignored, as the backend always did: the knob keeps its default.
    func testBadValuesAreIgnored() {
        let defaults = CUDATuning()
        for name in ["WAVEMAMBA_SCAN_ITEMS", "WAVEMAMBA_SCAN_CHANNELS", "WAVEMAMBA_SCAN_BC_BUFFERS", "WAVEMAMBA_SCAN_FWD_LANES",
                     "WAVEMAMBA_SCAN_FWD_CHANNELS", "WAVEMAMBA_SCAN_BWD_LANES", "WAVEMAMBA_SCAN_BWD_CHANNELS", "WAVEMAMBA_SCAN_SEGMENTS",
                     "WAVEMAMBA_FUSED_STEP_MIN_BATCH", "WAVEMAMBA_FUSED_STEP_STREAMS", "WAVEMAMBA_FUSED_STACK", "WAVEMAMBA_FUSED_MAX_MB",
                     "WAVEMAMBA_FUSED_STEP_THREADS", "WAVEMAMBA_CLUSTER_STREAMS", "WAVEMAMBA_CLUSTER_BLOCKS"] {
            XCTAssertEqual(CUDATuning.fromEnvironment([name: "seven"]), defaults, name)
        }
        XCTAssertEqual(CUDATuning.fromEnvironment(["WAVEMAMBA_SCAN_ITEMS": "6", "WAVEMAMBA_CLUSTER_STREAMS": "3", "WAVEMAMBA_FUSED_STEP_THREADS": "128"]), defaults)
        // Clamped, not refused: the stack to 1…16, the minimum batch to ≥ 1.
        XCTAssertEqual(CUDATuning.fromEnvironment(["WAVEMAMBA_FUSED_STACK": "99"]).fusedStackLayers, 16)
        XCTAssertEqual(CUDATuning.fromEnvironment(["WAVEMAMBA_FUSED_STACK": "0"]).fusedStackLayers, 1)
        XCTAssertEqual(CUDATuning.fromEnvironment(["WAVEMAMBA_FUSED_STEP_MIN_BATCH": "-3"]).fusedStepMinimumBatch, 1)
        // Switches: only "0" turns an on-by-default switch off; only "1" turns sync on; the
        // prefetch and evict-first stores are on unless set to something other than "1".
        XCTAssertTrue(CUDATuning.fromEnvironment(["WAVEMAMBA_CUDA_GRAPHS": "no"]).stepGraphsEnabled)
        XCTAssertFalse(CUDATuning.fromEnvironment(["WAVEMAMBA_CUDA_SYNC": "yes"]).synchronizeEveryLaunch)
        XCTAssertFalse(CUDATuning.fromEnvironment(["WAVEMAMBA_FUSED_PREFETCH": "yes"]).fusedStepPrefetchWeights)
        XCTAssertTrue(CUDATuning.fromEnvironment(["WAVEMAMBA_FUSED_STCS": "1"]).fusedStepStreamStates)
        var t = CUDATuning()
        t.fusedStackLayers = 40
        XCTAssertEqual(t.fusedStackLayers, 16)
    }
}
