import Foundation

/// A small reverse-mode autodiff over tensors (micrograd's idea, grown to tensors).
///
/// Every op computes its output eagerly and, when any input requires a gradient, records a backward closure on the
/// output via `Autograd.record`. The closure receives the output's gradient and *accumulates* into the gradients of
/// those parents that require one (`parent.requiresGrad`), so a frozen weight never costs a weight-gradient GEMM,
/// while the input gradient still flows through frozen layers when something upstream is trainable.
///
/// Closures must not capture their own output tensor strongly (that would be a cycle); capture `out.detached()`.
public enum Autograd {
    nonisolated(unsafe) private static var disabledDepth = 0

    /// Whether ops record the graph (false inside `withoutGrad`).
    public static var isEnabled: Bool { disabledDepth == 0 }

    /// Runs `body` without recording any graph (evaluation, inference).
    public static func withoutGrad<T>(_ body: () throws -> T) rethrows -> T {
        disabledDepth += 1
        defer { disabledDepth -= 1 }
        return try body()
    }

    /// Whether `record` with these parents links anything: for ops that keep something for their backward only when
    /// it will run (attention's probabilities, linearReLU's mask).
    public static func willRecord(_ parents: [Tensor]) -> Bool {
        isEnabled && parents.contains(where: { $0.requiresGrad })
    }

    /// Whether the model frees, layer by layer during a recorded forward, the activations no backward reads
    /// (`releaseUnsavedStorage(_:createdSince:)`). Tests turn it off to compare.
    nonisolated(unsafe) public static var releasesUnsavedActivations = true

    /// `body()`, then frees the storage of the tensors it made that no backward reads (when recording and
    /// `releasesUnsavedActivations`); its result is kept.
    @inline(__always)
    public static func releasingUnsaved(_ body: () -> Tensor) -> Tensor {
        guard isEnabled && releasesUnsavedActivations else { return body() }
        let since = Tensor.nextSerial
        let out = body()
        releaseUnsavedStorage(out, createdSince: since)
        return out
    }

    /// Links `out` to `parents` with `backward` if any parent requires a gradient.
    ///
    /// `saves[i]` says whether `backward` reads the values of `parents[i]` (nil: it may read all of them), and
    /// `savesOutput` whether it reads `out`'s values (directly or through a view it captured); the defaults keep
    /// everything. Only what is declared read survives `releaseUnsavedStorage`, so a backward must never read a
    /// parent it declares unread (reading released values stops the process).
    public static func record(_ out: Tensor, op: String, parents: [Tensor], saves: [Bool]? = nil, savesOutput: Bool = true,
                              backward: @escaping (Tensor) -> Void) {
        guard willRecord(parents) else { return }
        precondition(saves == nil || saves!.count == parents.count, "record(\(op)): \(saves!.count) saves for \(parents.count) parents")
        out.attach(op: op, parents: parents, backward: backward)
        out.savedParents = saves
        out.savesOutput = savesOutput
    }

    /// Frees, after the forward, the storage of every activation of the graph below `root` that no backward reads
    /// (as PyTorch keeps only an op's saved tensors): the outputs of frozen linear layers and convolutions feeding
    /// sums, the inputs of frozen layers, attention outputs before a frozen projection, pixel-shuffled maps, sums
    /// only other sums and frozen layers read... A buffer is kept when any tensor sharing it is read by a backward
    /// (`record`'s `saves` and `savesOutput`), is a leaf (parameters, the data, tensors computed outside the graph)
    /// or is `root`. The graph's shapes, links and gradients stay; the caller must not read those activations
    /// again. Returns the bytes freed.
    ///
    /// Only the tensors made from serial `createdSince` on are considered (a layer's own activations, called right
    /// after the layer, whose consumers have all run by then; 0: the whole graph), and the walk stops at older
    /// tensors, whose buffers are kept (a view made in the layer of an older tensor shares its buffer): so it runs
    /// during the forward, layer by layer (`releasingUnsaved`), and lowers the forward's own peak.
    @discardableResult
    public static func releaseUnsavedStorage(_ root: Tensor, createdSince: Int) -> Int {
        guard root.requiresGrad else { return 0 }
        var needed = Set<ObjectIdentifier>([ObjectIdentifier(root.buffer)])
        var candidates: [ObjectIdentifier: Buffer] = [:]
        forEachReachable(from: root) { t in
            let id = ObjectIdentifier(t.buffer)
            guard t.serial >= createdSince else { needed.insert(id); return false }
            if t.isLeaf || t.savesOutput { needed.insert(id) } else { candidates[id] = t.buffer }
            for (i, p) in t.parents.enumerated() where t.savedParents?[i] ?? true { needed.insert(ObjectIdentifier(p.buffer)) }
            return true
        }
        var freed = 0
        for (id, b) in candidates where !needed.contains(id) && !b.isFreed && b.count > 0 {
            freed += b.count * MemoryLayout<Float>.stride
            b.releaseMemory()
        }
        return freed
    }

    /// Backpropagates from `root`. `seed` is dL/droot; it defaults to ones (root is normally a scalar loss).
    /// Interior gradients and graph links are released as soon as they are used. `leafReady`, when given, is called
    /// once for each leaf that requires a gradient (a parameter) as soon as every node that uses it has run its
    /// backward, i.e. when its gradient is final: a data-parallel reducer can start reducing it while the backward
    /// goes on (PyTorch DDP's autograd hooks).
    public static func backward(_ root: Tensor, seed: Tensor? = nil, leafReady: ((Tensor) -> Void)? = nil) {
        precondition(root.requiresGrad, "backward from a tensor that does not require grad")
        let order = topologicalOrder(root)
        // Uses of each leaf by the nodes of this graph (a tensor used twice by one node counts twice).
        var uses: [ObjectIdentifier: Int] = [:]
        if leafReady != nil {
            for node in order where node.backwardFn != nil {
                for p in node.parents where p.requiresGrad && p.backwardFn == nil { uses[ObjectIdentifier(p), default: 0] += 1 }
            }
        }
        if let seed {
            precondition(seed.shape == root.shape, "seed shape \(seed.shape) != root shape \(root.shape)")
            let g = root.gradData()
            let s = seed.data
            for i in 0..<root.count { g[i] += s[i] }
        } else {
            let g = root.gradData()
            for i in 0..<root.count { g[i] += 1 }
        }
        for node in order.reversed() {
            guard let fn = node.backwardFn else { continue }
            if let g = node.grad { fn(g) }
            if let leafReady {
                for p in node.parents where p.requiresGrad && p.backwardFn == nil {
                    let id = ObjectIdentifier(p)
                    let left = uses[id, default: 1] - 1
                    uses[id] = left
                    if left == 0 { leafReady(p) }
                }
            }
            node.releaseGraph()
        }
    }

    /// Storage the graph below `root` holds, by the op that produced each buffer: every tensor reachable through
    /// the parents' links (leaves included), each buffer counted once (views share their base's buffer; a buffer is
    /// attributed to the tensor that spans it whole, else to the first one met). Leaves are "parameters" when
    /// named, else "leaf inputs". What backward closures keep beside the graph (saved statistics, masks, attention
    /// probabilities) is not reachable this way: it is `TensorMemory.liveBytes` minus the sum.
    public static func storageByOp(_ root: Tensor) -> [(op: String, buffers: Int, bytes: Int)] {
        var owner: [ObjectIdentifier: (op: String, whole: Bool, bytes: Int)] = [:]
        forEachReachable(from: root) { t in
            if !t.isReleased && !t.buffer.isFreed {
                let id = ObjectIdentifier(t.buffer)
                let whole = t.offset == 0 && t.count == t.buffer.count
                let op = t.isLeaf ? (t.name != nil ? "parameters" : "leaf inputs") : t.opName
                if let o = owner[id] {
                    if whole && !o.whole { owner[id] = (op, true, o.bytes) }
                } else {
                    owner[id] = (op, whole, t.buffer.count * MemoryLayout<Float>.stride)
                }
            }
            return true
        }
        var byOp: [String: (buffers: Int, bytes: Int)] = [:]
        for o in owner.values { byOp[o.op, default: (0, 0)].buffers += 1; byOp[o.op, default: (0, 0)].bytes += o.bytes }
        return byOp.map { (op: $0.key, buffers: $0.value.buffers, bytes: $0.value.bytes) }.sorted { $0.bytes > $1.bytes }
    }

    /// visit(t) once for `root` and every tensor reachable through parents' links (leaves included), in no set
    /// order; the walk goes on to t's parents when visit returns true.
    static func forEachReachable(from root: Tensor, _ visit: (Tensor) -> Bool) {
        var seen = Set<ObjectIdentifier>([ObjectIdentifier(root)])
        var stack = [root]
        while let t = stack.popLast() {
            guard visit(t) else { continue }
            for p in t.parents where seen.insert(ObjectIdentifier(p)).inserted { stack.append(p) }
        }
    }

    /// Depth-first post-order over nodes that require grad (iterative: deep models must not overflow the stack).
    static func topologicalOrder(_ root: Tensor) -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Int)] = [(root, 0)]
        visited.insert(ObjectIdentifier(root))
        while let (node, next) = stack.popLast() {
            if next < node.parents.count {
                stack.append((node, next + 1))
                let p = node.parents[next]
                if p.requiresGrad, !visited.contains(ObjectIdentifier(p)) {
                    visited.insert(ObjectIdentifier(p))
                    stack.append((p, 0))
                }
            } else {
                order.append(node)
            }
        }
        return order
    }
}

extension Tensor {
    @usableFromInline
    func attach(op: String, parents: [Tensor], backward: @escaping (Tensor) -> Void) {
        requiresGrad = true
        self.parents = parents
        self.backwardFn = backward
        self.opName = op
    }

    func releaseGraph() {
        backwardFn = nil
        parents = []
        grad = nil
    }

    /// Backpropagates from this (scalar) tensor.
    public func backward(seed: Tensor? = nil, leafReady: ((Tensor) -> Void)? = nil) { Autograd.backward(self, seed: seed, leafReady: leafReady) }
}
