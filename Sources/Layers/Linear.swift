import Engine
import Foundation

/// nn.Linear: y = x·Wᵀ (+ b), weight (out, in) as PyTorch stores it, initialised as
/// PyTorch does (kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in), bias likewise).
public struct Linear {
    public let weight: Variable
    public let bias: Variable?

    public init(_ store: ParameterStore, _ name: String, inFeatures: Int, outFeatures: Int, bias: Bool, seed: UInt64,
                options: ParameterOptions = ParameterOptions()) {
        let bound = 1 / Float(inFeatures).squareRoot()
        let b = store.backend
        weight = store.add("\(name).weight", shape: [outFeatures, inFeatures], options: options) {
            b.fillUniform($0, low: -bound, high: bound, seed: seed)
        }
        self.bias = bias ? store.add("\(name).bias", shape: [outFeatures], options: .noDecay) {
            b.fillUniform($0, low: -bound, high: bound, seed: seed &+ 1)
        } : nil
    }

    public func callAsFunction(_ x: Variable, _ tape: Tape) -> Variable { Op.linear(x, weight, bias, tape) }
}

/// nn.LayerNorm over the last dimension: weight 1, bias 0 (both exempt from weight decay).
public struct LayerNormModule {
    public let weight: Variable
    public let bias: Variable

    public init(_ store: ParameterStore, _ name: String, channels: Int) {
        weight = store.add("\(name).weight", shape: [channels], values: [Float](repeating: 1, count: channels), options: .noDecay)
        bias = store.add("\(name).bias", shape: [channels], values: [Float](repeating: 0, count: channels), options: .noDecay)
    }

    public func callAsFunction(_ x: Variable, _ tape: Tape) -> Variable { Op.layerNorm(x, weight, bias, tape) }
}

/// Seeds for parameter initialisation, derived from one model seed and the parameter's
/// name, so adding a layer does not reseed the others.
public func parameterSeed(_ seed: UInt64, _ name: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
    for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}
