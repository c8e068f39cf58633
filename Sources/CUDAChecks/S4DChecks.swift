import Engine
import Foundation
import Layers
import Spectral

/// The S4D baseline's layer on the GPU (kernel K in Double on the device, cuFFT convolution)
/// against the CPU (S4DKernel, FFTW): output and every gradient, at a length where the phases
/// dt·A_imag·l reach thousands of rad and the FFT size is not a power of two.
public struct S4DChecks {
    public let gpu: any Backend
    public let cpu: any Backend

    public init(gpu: any Backend, cpu: any Backend) {
        self.gpu = gpu
        self.cpu = cpu
    }

    /// Output, input gradient and parameter gradients of loss = Σ y ⊙ w.
    func run(_ b: any Backend, batch: Int, length L: Int, channels H: Int, config: S4DConfig) -> [Tensor] {
        let store = ParameterStore(backend: b)
        let layer = S4D(store, prefix: "", channels: H, config: config, seed: 11, cache: FFTPlanCache())
        store.finalize()
        let x = b.tensor(hostValues(batch * L * H, seed: 12), shape: [batch * L, H])
        let w = b.tensor(hostValues(batch * L * H, seed: 13), shape: [batch * L, H])
        let input = Variable(x, requiresGrad: true)
        let tape = Tape()
        let y = layer(input, batch: batch, tape)
        tape.backward(from: Op.weightedSum(y, w, tape))
        return [y.value, input.grad!] + store.parameters.map { $0.grad! }
    }

    public func all() -> [CheckOutcome] {
        let k = KernelChecks(gpu: gpu, cpu: cpu)
        return [
            k.check("S4D layer fwd + bwd on the GPU (batch 2, L 3000, H 8, N 64; cuFFT n 6000)") {
                run($0, batch: 2, length: 3000, channels: 8, config: S4DConfig(dState: 64))
            },
            k.check("S4D layer fwd + bwd on the GPU (batch 3, L 37, H 5, N 6, dt [0.05, 0.5])") {
                run($0, batch: 3, length: 37, channels: 5, config: S4DConfig(dState: 6, dtMin: 0.05, dtMax: 0.5))
            },
        ]
    }
}
