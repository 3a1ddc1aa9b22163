import CRuntime
import Foundation
import Synchronization

/// Owned, 64-byte aligned Float memory. Tensors are views into a buffer (whole or a slice), so a parameter store
/// can keep every trainable tensor in one contiguous allocation and hand out views.
public final class Buffer: @unchecked Sendable {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int
    /// What malloc returned (`base` is the first 64-byte boundary in it).
    private let raw: UnsafeMutableRawPointer

    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative buffer size \(count)")
        _ = Buffer.allocatorTuned
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        // malloc(bytes + 64), aligned by hand: posix_memalign asks glibc for bytes + 64 + 32 and hands back the
        // slack, so the hole a freed activation leaves can never serve the next activation of the same size, and
        // the heap grew by every activation of the first step (measured: 4.97 GiB resident for 2.70 GiB live at
        // ipt batch 16); a plain malloc of the same size reuses the hole.
        guard let raw = malloc(bytes + 64) else { fatalError("out of memory allocating \(bytes) bytes") }
        self.raw = raw
        let aligned = (Int(bitPattern: raw) + 63) & ~63
        base = UnsafeMutableRawPointer(bitPattern: aligned)!.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
        if zeroed {
            // Gradients start as zeros: a large fill is split over the rank's threads like any pointwise loop.
            let b = base
            Parallel.forChunks(count) { r in (b + r.lowerBound).initialize(repeating: 0, count: r.count) }
        }
        TensorMemory.change(by: count)
    }

    /// True after `releaseMemory()`: the values are gone (a tensor reading them stops the process).
    @exclusivity(unchecked) public private(set) var isFreed = false

    /// Returns the memory now, while tensors may still refer to the buffer (an activation no backward reads:
    /// `Autograd.releaseUnsavedStorage`). Reading it afterwards through `Tensor.data` stops the process.
    public func releaseMemory() {
        guard !isFreed, count > 0 else { return }
        isFreed = true
        TensorMemory.change(by: -count)
        free(raw)
    }

    deinit { if !isFreed { TensorMemory.change(by: -count); free(raw) } }

    /// The storage of every released tensor (`Tensor.releaseStorage`).
    static let released = Buffer(count: 0)

    /// Activations of the full model are tens of MB each. glibc serves blocks above its mmap threshold (at most
    /// 32 MB by default) with fresh mmaps, so every op output would page-fault and be zeroed by the kernel again
    /// (measured: +50% on attention). Keeping large blocks in the heap lets freed activations be reused.
    private static let allocatorTuned: Bool = {
        Runtime.flushDenormalsOnThisThread()
        return swrt_keep_large_blocks(1 << 30) != 0
    }()
}

/// The bytes held by live `Buffer`s (every tensor's storage), now and at most since `resetPeak()`: what the graph
/// and the step's temporaries really hold, as against the process's resident set, which also counts freed blocks
/// that glibc keeps and the rest of the process (`bench step` prints both).
public enum TensorMemory {
    nonisolated(unsafe) private static var live = 0
    nonisolated(unsafe) private static var peak = 0
    private static let lock = NSLock()

    static func change(by floats: Int) {
        lock.lock()
        live += floats * MemoryLayout<Float>.stride
        if live > peak { peak = live }
        lock.unlock()
    }

    public static var liveBytes: Int { lock.lock(); defer { lock.unlock() }; return live }
    public static var peakBytes: Int { lock.lock(); defer { lock.unlock() }; return peak }
    /// Starts a new peak from what is live now.
    public static func resetPeak() { lock.lock(); peak = live; lock.unlock() }
}

/// An n-dimensional Float tensor: a shape over contiguous row-major storage, plus what reverse-mode autodiff needs
/// (see `Autograd.swift`). Reference semantics: the graph links tensors by identity.
public final class Tensor: @unchecked Sendable, CustomStringConvertible {
    public let shape: [Int]
    public let count: Int
    /// The storage. `releaseStorage()` swaps it for an empty buffer once no backward needs the values.
    @exclusivity(unchecked) public private(set) var buffer: Buffer
    public let offset: Int
    /// True after `releaseStorage()`: shape, graph links and gradient remain, the values are gone.
    @exclusivity(unchecked) public private(set) var isReleased = false
    /// Optional name (state_dict key for parameters), used in error messages.
    public var name: String?
    /// Creation order (a process-wide count): `Autograd.releaseUnsavedStorage(_:createdSince:)` frees only tensors
    /// made after a given point.
    public let serial = Tensor.serials.wrappingAdd(1, ordering: .relaxed).oldValue
    static let serials = Atomic<Int>(0)
    /// The serial the next tensor will get.
    public static var nextSerial: Int { serials.load(ordering: .relaxed) }

    /// Whether gradients flow to (leaf) or through (interior) this tensor.
    public internal(set) var requiresGrad: Bool = false
    /// Accumulated gradient, same shape. Leaves keep it after `backward`; interior nodes release it.
    public var grad: Tensor?
    /// Graph links: the inputs of the op that produced this tensor and its backward function, which receives the
    /// gradient of this tensor and accumulates into the parents' gradients.
    var parents: [Tensor] = []
    var backwardFn: ((Tensor) -> Void)?
    var opName: String = "leaf"
    /// Which parents' values the backward reads (nil: all of them) and whether it reads this tensor's own values:
    /// what `Autograd.releaseUnsavedStorage` must keep.
    var savedParents: [Bool]?
    var savesOutput = true

    /// Storage pointer (the view's first element).
    @inlinable public var data: UnsafeMutablePointer<Float> {
        precondition(!isReleased && !buffer.isFreed, "a tensor whose values were released (releaseStorage, releaseUnsavedStorage) is read again")
        return buffer.base + offset
    }
    public var rank: Int { shape.count }
    public var isLeaf: Bool { backwardFn == nil }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        Tensor.check(shape)
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.buffer = Buffer(count: count)
        self.offset = 0
    }

    /// Uninitialised storage, for op outputs that are fully overwritten.
    public init(uninitialized shape: [Int]) {
        Tensor.check(shape)
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.buffer = Buffer(count: count, zeroed: false)
        self.offset = 0
    }

    public convenience init(shape: [Int], repeating value: Float) {
        self.init(uninitialized: shape)
        data.update(repeating: value, count: count)
    }

    public convenience init(shape: [Int], _ values: [Float]) {
        self.init(uninitialized: shape)
        precondition(values.count == count, "tensor of shape \(shape) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    /// A view of `shape.product` floats of `buffer` starting at `offset`. Shares storage.
    public init(viewing buffer: Buffer, offset: Int, shape: [Int]) {
        Tensor.check(shape)
        let n = shape.reduce(1, *)
        precondition(offset >= 0 && offset + n <= buffer.count, "view [\(offset), \(offset + n)) out of buffer of \(buffer.count)")
        self.shape = shape
        self.count = n
        self.buffer = buffer
        self.offset = offset
    }

    private static func check(_ shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
    }

    /// Marks a leaf as trainable (or not). Interior nodes get the flag from their parents.
    @discardableResult
    public func requiringGrad(_ flag: Bool = true) -> Tensor {
        precondition(isLeaf, "requiresGrad can only be set on leaf tensors")
        requiresGrad = flag
        return self
    }

    public func setRequiresGrad(_ flag: Bool) {
        precondition(isLeaf, "requiresGrad can only be set on leaf tensors")
        requiresGrad = flag
    }

    /// Frees this tensor's values while keeping it in the graph (shape, parents, backward, gradient): for an
    /// activation whose later consumers are all recorded and none of whose backward passes read it, e.g. the FFN's
    /// hidden layer when the second linear layer's weight is frozen (its backward needs only the weight). The memory
    /// returns only if no view shares the buffer. Reading `data` afterwards stops the process.
    public func releaseStorage() {
        guard !isReleased else { return }
        buffer = Buffer.released
        isReleased = true
    }

    /// A tensor sharing this storage, outside any graph (PyTorch `detach`).
    public func detached() -> Tensor { Tensor(viewing: buffer, offset: offset, shape: shape) }

    /// A deep copy, outside any graph.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    public func toArray() -> [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Element `i` of the flat storage. Prefer this to `tensor.data[i]` on a temporary: `data` is a raw pointer,
    /// and Swift may release a temporary tensor (and its storage) before the pointer is read.
    public subscript(flat i: Int) -> Float {
        get { precondition(i >= 0 && i < count, "flat index \(i) outside \(shape)"); return data[i] }
        set { precondition(i >= 0 && i < count, "flat index \(i) outside \(shape)"); data[i] = newValue }
    }

    /// The single value of a one-element tensor (a loss).
    public var item: Float {
        precondition(count == 1, "item of a tensor of shape \(shape)")
        return data[0]
    }

    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// Pointer to the gradient, allocating a zeroed one the first time. Backward functions accumulate into it.
    public func gradData() -> UnsafeMutablePointer<Float> {
        if let g = grad { return g.data }
        let g = Tensor(zeros: shape)
        grad = g
        return g.data
    }

    /// For a backward that writes every element of this tensor's gradient: its storage, and whether it was just
    /// made (`fresh`: uninitialized, so the caller stores instead of adding). Saves the zero fill and a read of the
    /// destination for the first (usually only) gradient a tensor receives.
    public func gradForOverwrite() -> (pointer: UnsafeMutablePointer<Float>, fresh: Bool) {
        if let g = grad { return (g.data, false) }
        let g = Tensor(uninitialized: shape)
        grad = g
        return (g.data, true)
    }

    /// Zeroes the accumulated gradient (keeps the storage, so a flat gradient buffer stays in place).
    public func zeroGrad() { grad?.fill(0) }

    public var description: String {
        let head = toArray().prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", ..." : "")]"
    }

    // MARK: - Reductions used by tests and checks (no autodiff)

    public func sumAll() -> Double {
        var s = 0.0
        let p = data
        for i in 0..<count { s += Double(p[i]) }
        return s
    }

    public func maxAbs() -> Float {
        var m: Float = 0
        let p = data
        for i in 0..<count { m = max(m, abs(p[i])) }
        return m
    }

    /// True when every element is finite.
    public func allFinite() -> Bool {
        let p = data
        for i in 0..<count where !p[i].isFinite { return false }
        return true
    }
}

extension Array where Element == Int {
    /// Number of elements of a tensor with this shape.
    public var product: Int { reduce(1, *) }
}

/// Process and thread settings for numeric work.
public enum Runtime {
    /// Flush denormal floats to zero on the calling thread (MXCSR FTZ and DAZ, like `torch.set_flush_denormal`).
    /// A peaked attention softmax and its gradients otherwise produce values below 1.2e-38 that slow sgemm down
    /// by 10-50x (measured: 2-3 GFLOP/s on attention products instead of 100). The first tensor allocation does
    /// this for its thread; threads that compute must call it too. Values below 1.2e-38 become 0.
    public static func flushDenormalsOnThisThread() { _ = swrt_flush_denormals() }
}
