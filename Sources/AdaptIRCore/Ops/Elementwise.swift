// Elementwise binary ops with numpy/PyTorch broadcasting, and scalar ops.

// MARK: - Broadcast plan (shared with Reduce.swift)

/// Iteration plan for two operands broadcast to a common output shape.
///
/// Shapes are right-aligned; a missing or size-1 dimension broadcasts. Output dims of size 1 are dropped and
/// adjacent dims merged when both operands stay linear across them, so common patterns collapse to rank 1
/// (same shape), [outer, inner] (suffix broadcast, [N,C,1,1] against [N,C,H,W]) or [N, C, HW] ([N,1,H,W]).
/// The innermost collapsed dim is contiguous in the output; each operand's stride there is 1 or 0.
struct BroadcastPlan {
    let outShape: [Int]
    let count: Int
    /// Collapsed dims (outer ... inner), never empty.
    let dims: [Int]
    /// Element strides of a and b along the collapsed dims (0 where broadcast).
    let sa: [Int]
    let sb: [Int]
    /// Elements of a and of b.
    let countA: Int
    let countB: Int

    init(_ aShape: [Int], _ bShape: [Int], op: String) {
        let r = max(aShape.count, bShape.count)
        var ad = [Int](repeating: 1, count: r), bd = ad, od = ad
        for i in 0..<r {
            let x = i < aShape.count ? aShape[aShape.count - 1 - i] : 1
            let y = i < bShape.count ? bShape[bShape.count - 1 - i] : 1
            precondition(x == y || x == 1 || y == 1, "\(op): shapes \(aShape) and \(bShape) do not broadcast")
            ad[r - 1 - i] = x; bd[r - 1 - i] = y; od[r - 1 - i] = x == 1 ? y : x
        }
        var strA = [Int](repeating: 0, count: r), strB = strA
        var accA = 1, accB = 1
        for i in stride(from: r - 1, through: 0, by: -1) {
            strA[i] = ad[i] == 1 ? 0 : accA; accA *= ad[i]
            strB[i] = bd[i] == 1 ? 0 : accB; accB *= bd[i]
        }
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        for i in 0..<r where od[i] != 1 {
            if let last = dims.last, sa[sa.count - 1] == strA[i] * od[i], sb[sb.count - 1] == strB[i] * od[i] {
                dims[dims.count - 1] = last * od[i]
                sa[sa.count - 1] = strA[i]
                sb[sb.count - 1] = strB[i]
            } else {
                dims.append(od[i]); sa.append(strA[i]); sb.append(strB[i])
            }
        }
        if dims.isEmpty { dims = [1]; sa = [0]; sb = [0] }
        outShape = od
        count = od.reduce(1, *)
        self.dims = dims
        self.sa = sa
        self.sb = sb
        countA = accA
        countB = accB
    }

    /// Inner row length and the operands' inner strides.
    var inner: Int { dims[dims.count - 1] }
    var innerA: Int { sa[sa.count - 1] }
    var innerB: Int { sb[sb.count - 1] }

    /// Inner rows of the output.
    var rows: Int { count == 0 ? 0 : count / inner }

    /// Calls `body(outOffset, aOffset, bOffset)` for each inner row in `rows` (default: all), in output order.
    /// Offsets are updated incrementally (an odometer over the outer dims), with no divisions per element.
    @inline(__always)
    func forEachRow(in rowRange: Range<Int>? = nil, _ body: (_ o: Int, _ a: Int, _ b: Int) -> Void) {
        if count == 0 { return }
        let r = dims.count
        let n = dims[r - 1]
        if r == 1 { body(0, 0, 0); return }
        let range = rowRange ?? 0..<rows
        if range.isEmpty { return }
        var idx = [Int](repeating: 0, count: r - 1)
        var ao = 0, bo = 0
        var rest = range.lowerBound
        for k in stride(from: r - 2, through: 0, by: -1) {
            idx[k] = rest % dims[k]; rest /= dims[k]
            ao += idx[k] * sa[k]; bo += idx[k] * sb[k]
        }
        for row in range {
            body(row * n, ao, bo)
            var k = r - 2
            while k >= 0 {
                idx[k] += 1; ao += sa[k]; bo += sb[k]
                if idx[k] < dims[k] { break }
                ao -= sa[k] * dims[k]; bo -= sb[k] * dims[k]; idx[k] = 0
                k -= 1
            }
        }
    }

    /// `forEachRow` over the rows split among the rank's threads (`Parallel`); the rows must write disjoint memory.
    @inline(__always)
    func forEachRowInParallel(_ body: (_ o: Int, _ a: Int, _ b: Int) -> Void) {
        Parallel.forRows(rows, rowLength: inner) { range in forEachRow(in: range, body) }
    }

    /// dst (shaped like operand a if `intoA`, else b) += scale * sum over broadcast dims of g * other, where g has
    /// the output shape and `other` (optional) is the other operand. Used for gradients and for reductions. With
    /// `overwrite`, dst holds no values yet (a fresh gradient): = instead of +=.
    func reduceInto(_ dst: UnsafeMutablePointer<Float>, intoA: Bool, g: UnsafePointer<Float>,
                    other: UnsafePointer<Float>?, scale: Float, overwrite: Bool = false) {
        let n = inner
        let sd = intoA ? innerA : innerB
        let so = intoA ? innerB : innerA
        /// d[i] += scale * gr[i] (* the other operand) for i in r, where the destination runs along the row.
        @inline(__always) func accumulate(_ d: UnsafeMutablePointer<Float>, _ gr: UnsafePointer<Float>,
                                          _ orow: UnsafePointer<Float>?, _ r: Range<Int>) {
            if let orow {
                if so == 1 { for i in r { d[i] += scale * gr[i] * orow[i] } }
                else { let v = scale * orow[0]; for i in r { d[i] += v * gr[i] } }
            } else if scale == 1 { for i in r { d[i] += gr[i] } }
            else { for i in r { d[i] += scale * gr[i] } }
        }
        /// The same, storing.
        @inline(__always) func store(_ d: UnsafeMutablePointer<Float>, _ gr: UnsafePointer<Float>,
                                     _ orow: UnsafePointer<Float>?, _ r: Range<Int>) {
            if let orow {
                if so == 1 { for i in r { d[i] = scale * gr[i] * orow[i] } }
                else { let v = scale * orow[0]; for i in r { d[i] = v * gr[i] } }
            } else if scale == 1 { (d + r.lowerBound).update(from: gr + r.lowerBound, count: r.count) }
            else { for i in r { d[i] = scale * gr[i] } }
        }
        if dims.count == 1 && sd == 1 {
            // Same length, or the other operand broadcast: pointwise, split in chunks.
            if overwrite { Parallel.forChunks(n) { r in store(dst, g, other, r) } }
            else { Parallel.forChunks(n) { r in accumulate(dst, g, other, r) } }
            return
        }
        if overwrite {
            let count = intoA ? countA : countB
            Parallel.forChunks(count) { r in (dst + r.lowerBound).update(repeating: 0, count: r.count) }
        }
        func row(_ o: Int, _ a: Int, _ b: Int) {
            let d = dst + (intoA ? a : b), gr = g + o
            let orow = other.map { $0 + (intoA ? b : a) }
            if sd == 1 { accumulate(d, gr, orow, 0..<n); return }
            if let orow {
                d[0] += scale * Float(so == 1 ? rowDot(gr, orow, n) : rowSum(gr, n) * Double(orow[0]))
            } else {
                d[0] += scale * Float(rowSum(gr, n))
            }
        }
        // Rows go to distinct destination rows unless the destination is broadcast along an outer dim: only then
        // may they run on several threads (each destination element keeps its order of sums).
        if (intoA ? sa : sb).contains(0) { forEachRow(row) } else { forEachRowInParallel(row) }
    }

    /// dst (output shape) += scale * src broadcast from operand a's shape (`fromA`) or b's.
    func broadcastInto(_ dst: UnsafeMutablePointer<Float>, from src: UnsafePointer<Float>, fromA: Bool, scale: Float) {
        let n = inner
        let ss = fromA ? innerA : innerB
        @inline(__always) func add(_ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, _ r: Range<Int>) {
            if ss == 1 { for i in r { d[i] += scale * s[i] } }
            else { let v = scale * s[0]; for i in r { d[i] += v } }
        }
        if dims.count == 1 {
            Parallel.forChunks(n) { r in add(dst, src, r) }
        } else {
            forEachRowInParallel { o, a, b in add(dst + o, src + (fromA ? a : b), 0..<n) }
        }
    }
}

// MARK: - Row sums

/// sum_i p[i] for i < n: 8 float lanes over blocks of 512 elements, blocks combined in Double (fast and accurate).
@inline(__always)
func rowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
    var total: Double = 0
    var i = 0
    let raw = UnsafeRawPointer(p)
    while i + 8 <= n {
        var acc = SIMD8<Float>()
        let end = min(n, i + 512) - 7
        while i < end { acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self); i += 8 }
        total += Double(acc.sum())
    }
    while i < n { total += Double(p[i]); i += 1 }
    return total
}

/// sum_i p[i] * q[i] for i < n, blocked like `rowSum`.
@inline(__always)
func rowDot(_ p: UnsafePointer<Float>, _ q: UnsafePointer<Float>, _ n: Int) -> Double {
    var total: Double = 0
    var i = 0
    let rp = UnsafeRawPointer(p), rq = UnsafeRawPointer(q)
    while i + 8 <= n {
        var acc = SIMD8<Float>()
        let end = min(n, i + 512) - 7
        while i < end {
            acc += rp.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                * rq.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        total += Double(acc.sum())
    }
    while i < n { total += Double(p[i] * q[i]); i += 1 }
    return total
}

// MARK: - Binary kernels

protocol BinaryKernel { static func apply(_ x: Float, _ y: Float) -> Float }
enum AddKernel: BinaryKernel { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x + y } }
enum SubKernel: BinaryKernel { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x - y } }
enum MulKernel: BinaryKernel { @inline(__always) static func apply(_ x: Float, _ y: Float) -> Float { x * y } }

@inline(__always)
private func broadcastForward<K: BinaryKernel>(_: K.Type, _ plan: BroadcastPlan, _ a: UnsafePointer<Float>,
                                               _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    let n = plan.inner, sa = plan.innerA, sb = plan.innerB
    @inline(__always) func row(_ yr: UnsafeMutablePointer<Float>, _ ar: UnsafePointer<Float>, _ br: UnsafePointer<Float>, _ r: Range<Int>) {
        if sa == 1 && sb == 1 { for i in r { yr[i] = K.apply(ar[i], br[i]) } }
        else if sa == 1 { let v = br[0]; for i in r { yr[i] = K.apply(ar[i], v) } }
        else if sb == 1 { let v = ar[0]; for i in r { yr[i] = K.apply(v, br[i]) } }
        else { for i in r { yr[i] = K.apply(ar[i * sa], br[i * sb]) } }
    }
    if plan.dims.count == 1 {
        Parallel.forChunks(n) { r in row(y, a, b, r) }
    } else {
        plan.forEachRowInParallel { o, ao, bo in row(y + o, a + ao, b + bo, 0..<n) }
    }
}

private enum BinaryOp { case add, sub, mul }

private func binary(_ a: Tensor, _ b: Tensor, _ op: BinaryOp, name: String) -> Tensor {
    let plan = BroadcastPlan(a.shape, b.shape, op: name)
    let out = Tensor(uninitialized: plan.outShape)
    switch op {
    case .add: broadcastForward(AddKernel.self, plan, a.data, b.data, out.data)
    case .sub: broadcastForward(SubKernel.self, plan, a.data, b.data, out.data)
    case .mul: broadcastForward(MulKernel.self, plan, a.data, b.data, out.data)
    }
    // A sum reads no values in its backward; a product reads each operand for the other's gradient.
    let saves = op == .mul ? [b.requiresGrad, a.requiresGrad] : [false, false]
    Autograd.record(out, op: name, parents: [a, b], saves: saves, savesOutput: false) { g in
        if a.requiresGrad {
            let (ga, fresh) = a.gradForOverwrite()
            plan.reduceInto(ga, intoA: true, g: g.data, other: op == .mul ? UnsafePointer(b.data) : nil, scale: 1, overwrite: fresh)
        }
        if b.requiresGrad {
            // a + a: the second parent is the first, whose gradient now holds values.
            let (gb, fresh) = b.gradForOverwrite()
            plan.reduceInto(gb, intoA: false, g: g.data, other: op == .mul ? UnsafePointer(a.data) : nil,
                            scale: op == .sub ? -1 : 1, overwrite: fresh)
        }
    }
    return out
}

// MARK: - Public API

/// Broadcasting sum: y = a + b (numpy/PyTorch rules). dL/da and dL/db are dL/dy summed over broadcast dims.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .add, name: "add") }

/// Broadcasting difference: y = a - b. dL/da = reduce(g), dL/db = -reduce(g).
public func sub(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .sub, name: "sub") }

/// Broadcasting product: y = a * b. dL/da = reduce(g * b), dL/db = reduce(g * a).
public func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, .mul, name: "mul") }

extension Tensor {
    /// Broadcasting `add(a, b)`.
    public static func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }
    /// Broadcasting `sub(a, b)`.
    public static func - (a: Tensor, b: Tensor) -> Tensor { sub(a, b) }
    /// Broadcasting `mul(a, b)`.
    public static func * (a: Tensor, b: Tensor) -> Tensor { mul(a, b) }
}

/// Multiplication by a constant: y = s * a, dL/da = s * g.
public func scale(_ a: Tensor, _ s: Float) -> Tensor {
    let out = Tensor(uninitialized: a.shape)
    let x = a.data, y = out.data
    Parallel.forChunks(a.count) { r in for i in r { y[i] = s * x[i] } }
    Autograd.record(out, op: "scale", parents: [a], saves: [false], savesOutput: false) { g in
        let (gx, fresh) = a.gradForOverwrite(), gy = g.data
        if fresh { Parallel.forChunks(a.count) { r in for i in r { gx[i] = s * gy[i] } } }
        else { Parallel.forChunks(a.count) { r in for i in r { gx[i] += s * gy[i] } } }
    }
    return out
}

/// Addition of a constant: y = a + s, dL/da = g.
public func addScalar(_ a: Tensor, _ s: Float) -> Tensor {
    let out = Tensor(uninitialized: a.shape)
    let x = a.data, y = out.data
    Parallel.forChunks(a.count) { r in for i in r { y[i] = x[i] + s } }
    Autograd.record(out, op: "addScalar", parents: [a], saves: [false], savesOutput: false) { g in
        let gx = a.gradData(), gy = g.data
        Parallel.forChunks(a.count) { r in for i in r { gx[i] += gy[i] } }
    }
    return out
}
