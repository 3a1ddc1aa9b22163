import XCTest
import Foundation
import AdaptIRCore

final class AttentionTests: XCTestCase {
    /// Naive per-head attention in Double with an explicit softmax.
    private func naive(_ q: Tensor, _ k: Tensor, _ v: Tensor, heads: Int) -> [Double] {
        let n = q.shape[0], lq = q.shape[1], d = q.shape[2], lk = k.shape[1], dh = d / heads
        var out = [Double](repeating: 0, count: n * lq * d)
        for s in 0..<n { for h in 0..<heads { for i in 0..<lq {
            var scores = [Double](repeating: 0, count: lk)
            for j in 0..<lk {
                var dot = 0.0
                for e in 0..<dh { dot += Double(q.data[(s * lq + i) * d + h * dh + e]) * Double(k.data[(s * lk + j) * d + h * dh + e]) }
                scores[j] = dot / Double(dh).squareRoot()
            }
            let mx = scores.max()!
            let ex = scores.map { exp($0 - mx) }
            let z = ex.reduce(0, +)
            for e in 0..<dh {
                var acc = 0.0
                for j in 0..<lk { acc += ex[j] / z * Double(v.data[(s * lk + j) * d + h * dh + e]) }
                out[(s * lq + i) * d + h * dh + e] = acc
            }
        } } }
        return out
    }

    func testForwardMatchesNaive() {
        var rng = TestRNG(seed: 31)
        for heads in [1, 2, 3] {
            let q = rng.tensor([2, 4, 6], -2, 2), k = rng.tensor([2, 5, 6], -2, 2), v = rng.tensor([2, 5, 6])
            let y = scaledDotProductAttention(q: q, k: k, v: v, heads: heads)
            XCTAssertEqual(y.shape, [2, 4, 6])
            XCTAssertLessThan(relErr(y.toArray(), naive(q, k, v, heads: heads).map(Float.init)), 1e-5, "heads \(heads)")
        }
    }

    func testForwardWithoutGradMatches() {
        var rng = TestRNG(seed: 32)
        let q = rng.tensor([2, 3, 6], requiresGrad: true), k = rng.tensor([2, 4, 6]), v = rng.tensor([2, 4, 6])
        let a = scaledDotProductAttention(q: q, k: k, v: v, heads: 2)
        let b = Autograd.withoutGrad { scaledDotProductAttention(q: q, k: k, v: v, heads: 2) }
        XCTAssertTrue(a.requiresGrad)
        XCTAssertFalse(b.requiresGrad)
        XCTAssertEqual(a.toArray(), b.toArray())
    }

    func testGradientsDistinctInputs() {
        var rng = TestRNG(seed: 33)
        for heads in [2, 3] {
            checkGradients([rng.tensor([2, 4, 6]), rng.tensor([2, 5, 6]), rng.tensor([2, 5, 6])]) {
                scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[2], heads: heads)
            }
        }
    }

    func testGradientsSelfAttentionSameTensor() {
        var rng = TestRNG(seed: 34)
        checkGradients([rng.tensor([2, 5, 6], -1.5, 1.5)]) {
            scaledDotProductAttention(q: $0[0], k: $0[0], v: $0[0], heads: 2)
        }
        // q and k shared, v distinct (the decoder's self-attention shape: q = k = s + qp, v = s).
        checkGradients([rng.tensor([1, 4, 6]), rng.tensor([1, 4, 6])]) {
            scaledDotProductAttention(q: $0[0], k: $0[0], v: $0[1], heads: 3)
        }
    }

    /// Above the memory budget the backward recomputes the probabilities: bit-identical gradients to the stored
    /// ones, and the finite-difference check holds on that path too (for self-attention and the adapter-only case,
    /// where only the input gradient through frozen projections is needed).
    func testRecomputedProbabilitiesGiveTheSameGradients() {
        var rng = TestRNG(seed: 38)
        let q0 = rng.tensor([2, 5, 6]), k0 = rng.tensor([2, 7, 6]), v0 = rng.tensor([2, 7, 6]), seed = rng.tensor([2, 5, 6])
        func grads() -> [[Float]] {
            let q = q0.detached(), k = k0.detached(), v = v0.detached()
            for t in [q, k, v] { t.setRequiresGrad(true) }
            scaledDotProductAttention(q: q, k: k, v: v, heads: 3).backward(seed: seed)
            return [q, k, v].map { $0.grad!.toArray() }
        }
        let budget = AttentionMemory.storeProbabilitiesUpToBytes
        defer { AttentionMemory.storeProbabilitiesUpToBytes = budget }
        let stored = grads()
        AttentionMemory.storeProbabilitiesUpToBytes = 0
        XCTAssertEqual(grads(), stored)
        checkGradients([rng.tensor([2, 5, 6], -1.5, 1.5)]) {
            scaledDotProductAttention(q: $0[0], k: $0[0], v: $0[0], heads: 2)
        }
        checkGradients([rng.tensor([1, 4, 6]), rng.tensor([1, 6, 6])]) {
            scaledDotProductAttention(q: $0[0], k: $0[1], v: $0[1], heads: 3)
        }
    }

    /// The budget is shared by every call whose graph is alive: a call keeps its probabilities only when they fit
    /// in what the earlier, still-alive calls left; the reservations return when the backward has run, and the
    /// gradients are the same bits whichever calls kept theirs.
    func testProbabilityBudgetIsSharedByLiveGraphs() {
        var rng = TestRNG(seed: 41)
        let x0 = rng.tensor([2, 8, 6]), seed = rng.tensor([2, 8, 6])
        let oneCall = 2 * 3 * 8 * 8 * MemoryLayout<Float>.size          // n * heads * Lq * Lk floats
        let budget = AttentionMemory.storeProbabilitiesUpToBytes
        defer { AttentionMemory.storeProbabilitiesUpToBytes = budget }
        XCTAssertEqual(AttentionMemory.keptBytes, 0)
        func run(budgetCalls: Int) -> (kept: [Int], grad: [Float]) {
            AttentionMemory.storeProbabilitiesUpToBytes = budgetCalls * oneCall
            let x = x0.detached()
            x.setRequiresGrad(true)
            var kept: [Int] = []
            var y = x
            for _ in 0..<3 {
                y = scaledDotProductAttention(q: y, k: y, v: y, heads: 3)
                kept.append(AttentionMemory.keptBytes)
            }
            y.backward(seed: seed)
            XCTAssertEqual(AttentionMemory.keptBytes, 0, "reservations outlive the backward (budget of \(budgetCalls) calls)")
            return (kept, x.grad!.toArray())
        }
        let all = run(budgetCalls: 3), two = run(budgetCalls: 2), none = run(budgetCalls: 0)
        XCTAssertEqual(all.kept, [1, 2, 3].map { $0 * oneCall })
        XCTAssertEqual(two.kept, [1, 2, 2].map { $0 * oneCall })
        XCTAssertEqual(none.kept, [0, 0, 0])
        XCTAssertEqual(two.grad, all.grad)
        XCTAssertEqual(none.grad, all.grad)
        // A graph dropped without a backward returns its reservation too; inference reserves nothing.
        AttentionMemory.storeProbabilitiesUpToBytes = oneCall
        do {
            let x = x0.detached()
            x.setRequiresGrad(true)
            let y = scaledDotProductAttention(q: x, k: x, v: x, heads: 3)
            XCTAssertEqual(AttentionMemory.keptBytes, oneCall)
            withExtendedLifetime(y) {}
        }
        XCTAssertEqual(AttentionMemory.keptBytes, 0)
        _ = Autograd.withoutGrad { scaledDotProductAttention(q: x0, k: x0, v: x0, heads: 3) }
        XCTAssertEqual(AttentionMemory.keptBytes, 0)
    }

    func testOnlyRequestedGradients() {
        var rng = TestRNG(seed: 35)
        let q = rng.tensor([1, 3, 4]), k = rng.tensor([1, 3, 4]), v = rng.tensor([1, 3, 4], requiresGrad: true)
        scaledDotProductAttention(q: q, k: k, v: v, heads: 2).backward(seed: rng.tensor([1, 3, 4]))
        XCTAssertNil(q.grad)
        XCTAssertNil(k.grad)
        XCTAssertNotNil(v.grad)
    }

    func testMultiHeadAttentionMatchesComposition() {
        var rng = TestRNG(seed: 36)
        let d = 6
        let x = rng.tensor([2, 4, d]), mem = rng.tensor([2, 5, d])
        let win = rng.tensor([3 * d, d]), wout = rng.tensor([d, d])
        let y = multiHeadAttention(query: x, key: mem, value: mem, inProjWeight: win, outProjWeight: wout, heads: 2)
        // Reference: explicit projections (naive loops), then the naive per-head attention.
        func proj(_ t: Tensor, _ w: Tensor, rowOffset: Int) -> Tensor {
            let rows = t.count / d
            var out = [Float](repeating: 0, count: rows * d)
            for r in 0..<rows { for o in 0..<d {
                var s: Float = 0
                for i in 0..<d { s += t.data[r * d + i] * w.data[(rowOffset + o) * d + i] }
                out[r * d + o] = s
            } }
            return Tensor(shape: t.shape, out)
        }
        let q = proj(x, win, rowOffset: 0), k = proj(mem, win, rowOffset: d), v = proj(mem, win, rowOffset: 2 * d)
        let o = Tensor(shape: [2, 4, d], naive(q, k, v, heads: 2).map(Float.init))
        XCTAssertLessThan(relErr(y.toArray(), proj(o, wout, rowOffset: 0).toArray()), 1e-5)
    }

    func testMultiHeadAttentionGradients() {
        var rng = TestRNG(seed: 37)
        let d = 6
        // Cross-attention: distinct query, key, value and both weights.
        checkGradients([rng.tensor([2, 4, d]), rng.tensor([2, 5, d]), rng.tensor([2, 5, d]),
                        rng.tensor([3 * d, d], -0.7, 0.7), rng.tensor([d, d], -0.7, 0.7)]) {
            multiHeadAttention(query: $0[0], key: $0[1], value: $0[2], inProjWeight: $0[3], outProjWeight: $0[4], heads: 2)
        }
        // Self-attention: one tensor as query, key and value.
        checkGradients([rng.tensor([2, 4, d]), rng.tensor([3 * d, d], -0.7, 0.7), rng.tensor([d, d], -0.7, 0.7)]) {
            multiHeadAttention(query: $0[0], key: $0[0], value: $0[0], inProjWeight: $0[1], outProjWeight: $0[2], heads: 3)
        }
    }
}
