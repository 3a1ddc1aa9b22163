import Foundation

/// Softmax along `axis` (negative allowed): y = exp(x - max) / sum(exp(x - max)), numerically stable.
/// The tensor is viewed as [outer, axisLen, inner]. Backward: dx = y * (dy - sum_axis(dy * y)).
public func softmax(_ x: Tensor, axis: Int) -> Tensor {
    let r = x.rank
    let ax = axis < 0 ? axis + r : axis
    precondition(ax >= 0 && ax < r, "softmax: axis \(axis) out of range for shape \(x.shape)")
    let len = x.shape[ax]
    let inner = x.shape[(ax + 1)...].reduce(1, *)
    let outer = x.shape[..<ax].reduce(1, *)
    let out = Tensor(uninitialized: x.shape)
    if x.count == 0 { return out }
    let xs = x.data, y = out.data
    // Rows (or [len, inner] blocks) are independent: split over the rank's threads.
    if inner == 1 {
        Parallel.forRows(outer, rowLength: len) { r in
            softmaxRows(xs + r.lowerBound * len, y + r.lowerBound * len, rows: r.count, cols: len)
        }
    } else {
        Parallel.forRows(outer, rowLength: len * inner) { range in
            // Vectorised over `inner`: every loop runs along contiguous memory.
            let acc = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
            defer { acc.deallocate() }
            let mx = acc, sm = acc + inner
            for o in range {
                let xb = xs + o * len * inner, yb = y + o * len * inner
                mx.update(repeating: -Float.infinity, count: inner)
                sm.update(repeating: 0, count: inner)
                for k in 0..<len { let xr = xb + k * inner; for i in 0..<inner { mx[i] = max(mx[i], xr[i]) } }
                for k in 0..<len {
                    let xr = xb + k * inner, yr = yb + k * inner
                    for i in 0..<inner { let e = expNonPositive(xr[i] - mx[i]); yr[i] = e; sm[i] += e }
                }
                for i in 0..<inner { sm[i] = 1 / sm[i] }
                for k in 0..<len { let yr = yb + k * inner; for i in 0..<inner { yr[i] *= sm[i] } }
            }
        }
    }
    let yd = out.detached()
    Autograd.record(out, op: "softmax", parents: [x]) { g in
        let gy = g.data, ys = yd.data, gx = x.gradData()
        if inner == 1 {
            Parallel.forRows(outer, rowLength: len) { range in
                for o in range {
                    let gr = gy + o * len, yr = ys + o * len, dr = gx + o * len
                    let dot = Float(rowDot(gr, yr, len))
                    for k in 0..<len { dr[k] += yr[k] * (gr[k] - dot) }
                }
            }
        } else {
            Parallel.forRows(outer, rowLength: len * inner) { range in
                let dot = UnsafeMutablePointer<Float>.allocate(capacity: inner)
                defer { dot.deallocate() }
                for o in range {
                    let base = o * len * inner
                    dot.update(repeating: 0, count: inner)
                    for k in 0..<len {
                        let gr = gy + base + k * inner, yr = ys + base + k * inner
                        for i in 0..<inner { dot[i] += gr[i] * yr[i] }
                    }
                    for k in 0..<len {
                        let gr = gy + base + k * inner, yr = ys + base + k * inner, dr = gx + base + k * inner
                        for i in 0..<inner { dr[i] += yr[i] * (gr[i] - dot[i]) }
                    }
                }
            }
        }
    }
    return out
}

/// Stable softmax of each row of a row-major [rows, cols] block, from `x` into `y` (which may be `x`).
@inline(__always)
public func softmaxRows(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for o in 0..<rows {
        let xr = x + o * cols, yr = y + o * cols
        let m = rowMax(xr, cols)
        let sum = expShifted(xr, yr, cols, m)
        let inv = Float(1 / sum)
        for k in 0..<cols { yr[k] *= inv }
    }
}

/// y[k] = expNonPositive(x[k] - m) for k < n; returns the sum of the y; x and y may alias. Two independent
/// 8-lane vectors per iteration: the exp's polynomial is a chain of dependent operations, so one vector at a time
/// would wait on latency (two in flight measured faster than one or four, which spills registers).
@inline(__always)
func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, _ m: Float) -> Double {
    typealias V = SIMD8<Float>
    let mv = V(repeating: m)
    var acc0 = V(repeating: 0), acc1 = V(repeating: 0), acc2 = V(repeating: 0), acc3 = V(repeating: 0)
    var k = 0
    let xr = UnsafeRawPointer(x), yr = UnsafeMutableRawPointer(y)
    while k + 16 <= n {
        let e0 = exp8(xr.loadUnaligned(fromByteOffset: k * 4, as: V.self) - mv)
        let e1 = exp8(xr.loadUnaligned(fromByteOffset: k * 4 + 32, as: V.self) - mv)
        yr.storeBytes(of: e0, toByteOffset: k * 4, as: V.self)
        yr.storeBytes(of: e1, toByteOffset: k * 4 + 32, as: V.self)
        acc0 += e0; acc1 += e1
        k += 16
    }
    while k + 8 <= n {
        let e = exp8(xr.loadUnaligned(fromByteOffset: k * 4, as: V.self) - mv)
        yr.storeBytes(of: e, toByteOffset: k * 4, as: V.self)
        acc0 += e
        k += 8
    }
    var total = Double(((acc0 + acc1) + (acc2 + acc3)).sum())
    while k < n { let e = expNonPositive(x[k] - m); y[k] = e; total += Double(e); k += 1 }
    return total
}

/// `expNonPositive` on 8 lanes, with fused multiply-adds (a lane may differ from the scalar result by an ulp).
@_transparent
func exp8(_ d: SIMD8<Float>) -> SIMD8<Float> {
    typealias V = SIMD8<Float>
    let underflow = d .< -80
    var v = d
    v.replace(with: -80, where: underflow)
    v.replace(with: 0, where: v .> 0)
    let t = V(repeating: 12582912).addingProduct(v, V(repeating: 1.44269504088896341))
    let nn = t - 12582912
    let r = v.addingProduct(nn, V(repeating: -0.693359375)).addingProduct(nn, V(repeating: 2.12194440e-4))
    var p = V(repeating: 1.3981999507e-3).addingProduct(V(repeating: 1.9875691500e-4), r)
    p = V(repeating: 8.3334519073e-3).addingProduct(p, r)
    p = V(repeating: 4.1665795894e-2).addingProduct(p, r)
    p = V(repeating: 1.6666665459e-1).addingProduct(p, r)
    p = V(repeating: 5.0000001201e-1).addingProduct(p, r)
    let e = (r + 1).addingProduct(p, r * r)
    let bits = (unsafeBitCast(t, to: SIMD8<Int32>.self) &+ (127 &- 0x4B40_0000)) &<< 23
    var out = e * unsafeBitCast(bits, to: V.self)
    out.replace(with: 0, where: underflow)
    return out
}

/// exp(x) for x <= 0 (softmax after subtracting the max), branch-free so loops vectorise; Cephes `expf` reduction
/// x = n ln2 + r, |r| <= ln2 / 2, degree-6 polynomial for e^r, 2^n through the exponent bits. Relative error about
/// 2e-7 (a couple of ulps, like the vectorised Sleef exp PyTorch uses). Inputs below -80 give exactly 0: a softmax
/// row (sum between 1 and its length) of up to 1,500 entries (IPT's have 256) then never holds a denormal
/// probability (e^-80 / 1500 > 1.2e-38), which would slow every later product with it down by an order of magnitude.
@inline(__always)
func expNonPositive(_ x: Float) -> Float {
    let underflow = x < -80
    var v = underflow ? -80 : x
    v = v > 0 ? 0 : v
    // Round to nearest by the 1.5 * 2^23 trick: t's low mantissa bits hold the integer n (no trapping conversion).
    let t = v * 1.44269504088896341 + 12582912
    let n = t - 12582912
    let r = v - n * 0.693359375 + n * 2.12194440e-4
    var p: Float = 1.9875691500e-4
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let e = p * r * r + r + 1
    return underflow ? 0 : e * Float(bitPattern: (t.bitPattern &+ (127 &- 0x4B40_0000)) << 23)
}

/// max_i p[i] for i < n (n >= 1): four 8-lane accumulators (one would wait on the max latency), mask selects
/// (which vectorise, unlike `Swift.max`), and a lane reduction written out (SIMD's `max()` is a generic call).
@inline(__always)
func rowMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    typealias V = SIMD8<Float>
    var m = p[0]
    var i = 0
    let raw = UnsafeRawPointer(p)
    if n >= 32 {
        var a0 = raw.loadUnaligned(as: V.self), a1 = a0, a2 = a0, a3 = a0
        while i + 32 <= n {
            let v0 = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self)
            let v1 = raw.loadUnaligned(fromByteOffset: i * 4 + 32, as: V.self)
            let v2 = raw.loadUnaligned(fromByteOffset: i * 4 + 64, as: V.self)
            let v3 = raw.loadUnaligned(fromByteOffset: i * 4 + 96, as: V.self)
            a0.replace(with: v0, where: v0 .> a0); a1.replace(with: v1, where: v1 .> a1)
            a2.replace(with: v2, where: v2 .> a2); a3.replace(with: v3, where: v3 .> a3)
            i += 32
        }
        a0.replace(with: a1, where: a1 .> a0); a2.replace(with: a3, where: a3 .> a2)
        a0.replace(with: a2, where: a2 .> a0)
        for l in 0..<8 where a0[l] > m { m = a0[l] }
    }
    while i < n { if p[i] > m { m = p[i] }; i += 1 }
    return m
}
