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

    /// Links `out` to `parents` with `backward` if any parent requires a gradient.
    public static func record(_ out: Tensor, op: String, parents: [Tensor], backward: @escaping (Tensor) -> Void) {
        guard willRecord(parents) else { return }
        out.attach(op: op, parents: parents, backward: backward)
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
