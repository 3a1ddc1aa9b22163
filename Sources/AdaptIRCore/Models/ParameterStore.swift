import Foundation

/// What a state_dict entry is.
public enum ParameterRole: String, Sendable {
    /// A pretrained backbone weight (frozen when adapting, trained by full fine-tuning and pre-training).
    case backbone
    /// A weight of an adapter method (trained when adapting).
    case adapter
    /// Never trained: MeanShift's fixed 1x1 convs.
    case fixed
    /// Not a parameter: batch-norm running statistics, counters, position ids.
    case buffer
}

/// How a tensor is initialised (PyTorch's defaults and AdaptIR's spec 2.4).
public enum Initializer: Sendable {
    case constant(Float)
    /// U(-bound, bound): torch's default for Linear/Conv weights and biases is bound = 1/sqrt(fan_in).
    case uniform(Float)
    /// N(0, std^2): torch's default for nn.Embedding is std = 1.
    case normal(Float)
    /// N(mean, std^2): SSF's scale factors start at N(1, 0.02^2).
    case gaussian(mean: Float, std: Float)
    /// Explicit values.
    case values([Float])
}

/// Who a state_dict entry belongs to: the checkpoint part it is saved in.
public enum ParameterOwner: String, Sendable {
    /// The IPT backbone (the backbone file).
    case backbone
    /// The adaptation method (the adapter file): every tensor a method adds, including its running statistics.
    case method
}

/// One state_dict entry: its PyTorch key and shape, its role, its owner and its initial value.
public struct ParameterSpec: Sendable {
    public let key: String
    public let shape: [Int]
    public let role: ParameterRole
    public let initializer: Initializer
    /// Set by `AdaptedIPT.parameterSpecs` for the tensors a method declares.
    public internal(set) var owner: ParameterOwner = .backbone
    public var count: Int { shape.product }

    public init(_ key: String, _ shape: [Int], _ role: ParameterRole, _ initializer: Initializer) {
        self.key = key
        self.shape = shape
        self.role = role
        self.initializer = initializer
    }
}

/// All tensors of a model, named by their PyTorch state_dict keys, in state_dict order.
///
/// Trainable tensors are views into ONE contiguous buffer (`trainable`) and their gradients views into another
/// (`trainableGrad`), so gradient synchronisation is a single in-place allreduce with no packing copy, and the
/// optimiser runs over one flat array. Frozen tensors live in a second flat buffer (`frozen`: one checksum covers the
/// whole backbone) and running statistics in a third (`buffers`).
public final class ParameterStore: @unchecked Sendable {
    public let specs: [ParameterSpec]
    public let trainable: Buffer
    public let trainableGrad: Buffer
    public let frozen: Buffer
    public let buffers: Buffer
    private var byKey: [String: Tensor] = [:]
    private var trainableKeys: Set<String> = []

    /// Allocates and initialises every tensor. `isTrainable` chooses the trainable subset among parameters
    /// (buffers and fixed tensors are never trainable). Initial values come from per-key streams of `seed`.
    public init(specs: [ParameterSpec], seed: UInt64 = 0, isTrainable: (ParameterSpec) -> Bool) {
        var seen = Set<String>()
        for s in specs { precondition(seen.insert(s.key).inserted, "duplicate parameter key \(s.key)") }
        self.specs = specs
        let train = specs.filter { $0.role != .buffer && $0.role != .fixed && isTrainable($0) }
        let trainKeys = Set(train.map(\.key))
        trainableKeys = trainKeys
        let nTrain = train.reduce(0) { $0 + $1.count }
        let nFrozen = specs.filter { $0.role != .buffer && !trainKeys.contains($0.key) }.reduce(0) { $0 + $1.count }
        let nBuf = specs.filter { $0.role == .buffer }.reduce(0) { $0 + $1.count }
        trainable = Buffer(count: nTrain)
        trainableGrad = Buffer(count: nTrain)
        frozen = Buffer(count: nFrozen)
        buffers = Buffer(count: nBuf)
        var oT = 0, oF = 0, oB = 0
        for s in specs {
            let t: Tensor
            if trainKeys.contains(s.key) {
                t = Tensor(viewing: trainable, offset: oT, shape: s.shape)
                t.setRequiresGrad(true)
                t.grad = Tensor(viewing: trainableGrad, offset: oT, shape: s.shape)
                oT += s.count
            } else if s.role == .buffer {
                t = Tensor(viewing: buffers, offset: oB, shape: s.shape)
                oB += s.count
            } else {
                t = Tensor(viewing: frozen, offset: oF, shape: s.shape)
                oF += s.count
            }
            t.name = s.key
            ParameterStore.initialize(t, s.initializer, seed: seed)
            byKey[s.key] = t
        }
    }

    private static func initialize(_ t: Tensor, _ initializer: Initializer, seed: UInt64) {
        var rng = SplitMix64(seed: seed, stream: t.name ?? "")
        let p = t.data
        switch initializer {
        case .constant(let v): t.fill(v)
        case .uniform(let b): for i in 0..<t.count { p[i] = rng.uniform(b) }
        case .normal(let s): for i in 0..<t.count { p[i] = s * rng.normal() }
        case .gaussian(let m, let s): for i in 0..<t.count { p[i] = m + s * rng.normal() }
        case .values(let v):
            precondition(v.count == t.count, "initial values for \(t.name ?? "?"): \(v.count) for \(t.count) elements")
            for i in 0..<t.count { p[i] = v[i] }
        }
    }

    /// The tensor with this state_dict key. A missing key is a programming error in the model.
    public subscript(key: String) -> Tensor {
        guard let t = byKey[key] else { preconditionFailure("no parameter named \(key)") }
        return t
    }

    public func tensor(_ key: String) -> Tensor? { byKey[key] }
    public func isTrainable(_ key: String) -> Bool { trainableKeys.contains(key) }
    public var keys: [String] { specs.map(\.key) }
    /// Number of trainable floats (= floats allreduced per step).
    public var trainableCount: Int { trainable.count }
    /// Parameters (not buffers), trainable or not.
    public var parameterCount: Int { specs.filter { $0.role != .buffer }.reduce(0) { $0 + $1.count } }

    /// Zeroes the flat gradient buffer.
    public func zeroGrad() { trainableGrad.base.update(repeating: 0, count: trainableGrad.count) }
}
