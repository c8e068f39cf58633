import Engine
import Foundation
import FusedSteps

/// An instantiated CUDA graph (CUgraphExec) of one `CUDABackend`, with the memory pool its
/// capture used (see `CapturePools`); both are released when the object goes.
public final class CUDAGraph: DeviceGraph, @unchecked Sendable {
    let backend: CUDABackend
    let exec: OpaquePointer?
    let pool: Int
    public let nodeCount: Int

    init(backend: CUDABackend, exec: OpaquePointer?, pool: Int, nodeCount: Int) {
        self.backend = backend
        self.exec = exec
        self.pool = pool
        self.nodeCount = nodeCount
    }

    deinit {
        let cu = backend.cu
        cu.must(cu.cuCtxSetCurrent(backend.context), "cuCtxSetCurrent")
        // A graph still running is freed by the driver when it completes.
        cu.must(cu.cuGraphExecDestroy(exec), "cuGraphExecDestroy")
        backend.allocator.destroyPool(pool)
    }
}

extension CUDABackend: StepGraphBackend {
    /// Records everything `body` queues on the stream as a graph, without running it
    /// (relaxed stream capture). Kernels are loaded first: a module load is no stream work,
    /// but a first-use compile would stall the capture. Inside `body`, `upload`, `download`
    /// and `synchronize` trap with a clear message (they would wait for the stream or copy
    /// from pageable host memory); memory released inside goes to the graph's own pool.
    /// Tensors from before the capture that the graph reads or writes must outlive the graph
    /// (as with PyTorch's static graph inputs): released, their blocks would be handed out again.
    public func capture(_ body: () -> Void) -> CUDAGraph {
        precondition(!capturingGraph, "CUDA graph capture inside a capture: captures do not nest")
        do {
            try current()
            try kernels.loadAll()
        } catch {
            fatalError("CUDA backend: \(error)")
        }
        let pool = allocator.beginCapture()
        cu.must(cu.cuStreamBeginCapture(stream, CUDADriver.captureModeRelaxed), "cuStreamBeginCapture(\(device))")
        capturingGraph = true
        body()
        capturingGraph = false
        var graph: OpaquePointer?
        let rc = cu.cuStreamEndCapture(stream, &graph)
        allocator.endCapture()
        cu.must(rc, "cuStreamEndCapture(\(device)) (a call inside the capture was not capturable)")
        defer { _ = cu.cuGraphDestroy(graph) }   // the executable graph does not need it
        var nodes = 0
        cu.must(cu.cuGraphGetNodes(graph, nil, &nodes), "cuGraphGetNodes")
        var exec: OpaquePointer?
        cu.must(cu.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags (\(nodes) nodes)")
        return CUDAGraph(backend: self, exec: exec, pool: pool, nodeCount: nodes)
    }

    /// Queues one replay of `graph` on the stream.
    public func launch(_ graph: CUDAGraph) {
        precondition(graph.backend === self, "a CUDA graph of \(graph.backend.device) launched on \(device)")
        precondition(!capturingGraph, "a CUDA graph launched while capturing another")
        cu.must(cu.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        cu.must(cu.cuGraphLaunch(graph.exec, stream), "cuGraphLaunch(\(graph.nodeCount) nodes)")
        if tuning.synchronizeEveryLaunch {
            cu.must(cu.cuStreamSynchronize(stream), "a CUDA graph (\(graph.nodeCount) nodes) failed while running")
        }
    }

    public func captureGraph(_ body: () -> Void) -> any DeviceGraph { capture(body) }

    public func launchGraph(_ graph: any DeviceGraph) {
        guard let g = graph as? CUDAGraph else { preconditionFailure("launchGraph: \(type(of: graph)) is not a CUDA graph") }
        launch(g)
    }

    /// Traps (clear message) when called while a graph is captured.
    func refuseDuringCapture(_ what: @autoclosure () -> String) {
        precondition(!capturingGraph, "CUDA backend: \(what()) while a CUDA graph is being captured; a captured step must "
                     + "keep its data on the device (copy to or from the host before or after the capture)")
    }

    // MARK: Sampling

    public func sampleTokens(logits: Tensor, temperature: Float, topP: Float, seed: UInt64, counters: Tensor, tokens: Tensor,
                             history: Tensor, logProbs: Tensor?) {
        let (batch, classes) = (logits.rows, logits.columns)
        precondition(logits.isContiguous && logits.dtype == .float32, "sampleTokens: logits \(logits.shape) must be contiguous Float32")
        precondition(counters.dtype == .int32 && counters.count == 2 * batch, "sampleTokens: counters must hold one UInt64 per stream (\(2 * batch) Int32), not \(counters.shape)")
        precondition(tokens.dtype == .int32 && tokens.count == batch, "sampleTokens: tokens \(tokens.shape) must be \(batch) Int32")
        precondition(history.dtype == .int32 && history.isContiguous && history.rows == batch && history.columns > 0,
                     "sampleTokens: history \(history.shape) must be (batch \(batch), capacity) Int32")
        precondition(logProbs.map { $0.dtype == .float32 && $0.isContiguous && $0.shape == history.shape } ?? true,
                     "sampleTokens: logProbs \(logProbs?.shape ?? []) must be Float32 shaped as history \(history.shape)")
        precondition(classes <= 4096, "sampleTokens: \(classes) classes exceed the kernel's 48 KiB of shared memory (at most 4096)")
        precondition(temperature > 0 && topP > 0 && topP <= 1, "sampleTokens: temperature \(temperature) must be > 0 and top-p \(topP) in (0, 1]")
        launch(.sample, "wm_sample_tokens", grid: (batch, 1, 1), block: (256, 1, 1), shared: classes * 12,
               [.pointer(ptr(logits)), .int32(Int32(classes)), .float(temperature), .float(topP), .uint64(seed), .pointer(ptr(counters)),
                .pointer(ptr(tokens)), .pointer(ptr(history)), .int64(history.columns), .pointer(ptr(logProbs))])
    }
}
