import Engine

/// A copy of everything an update changes — parameters, Adam's moments and step count, the
/// EMA — taken after each good step, so that a step whose loss, gradients or result are not
/// finite can be undone instead of corrupting the run. Explicit buffers on the model's
/// backend: one copy each, no allocation per step.
final class GoodState {
    private let values: Tensor
    private let m: Tensor
    private let v: Tensor
    private let ema: Tensor?
    private(set) var adamStep = 0

    init(store: ParameterStore, hasEMA: Bool) {
        let b = store.backend, n = store.count
        values = b.empty([n])
        m = b.empty([n])
        v = b.empty([n])
        ema = hasEMA ? b.empty([n]) : nil
    }

    func capture(_ optimizer: AdamWOptimizer, ema average: ExponentialMovingAverage?) {
        copy(optimizer.store.values!, into: values)
        copy(optimizer.m, into: m)
        copy(optimizer.v, into: v)
        if let ema, let average { copy(average.average, into: ema) }
        adamStep = optimizer.step
    }

    func restore(_ optimizer: AdamWOptimizer, ema average: ExponentialMovingAverage?) {
        copy(values, into: optimizer.store.values!)
        // Through the host: the optimiser's step count is only settable with the moments
        // (a rare path, taken on bad steps only).
        optimizer.restore(step: adamStep, m: m.floats(), v: v.floats())
        if let ema, let average { copy(ema, into: average.average) }
    }

    private func copy(_ src: Tensor, into dst: Tensor) {
        src.backend.copy2D(from: src.reshaped([1, src.count]), to: dst.reshaped([1, dst.count]), accumulate: false)
    }
}
