import CMPI
import Foundation

/// How the gradient buffer travels in the allreduce (`train --grad-dtype`). Half precision halves the bytes on the
/// wire (Horovod's `Compression.fp16`, DDP's `fp16_compress_hook` / `bf16_compress_hook`); every rank still keeps,
/// sums and applies fp32 gradients.
public enum GradientWireType: String, CaseIterable, Codable, Sendable {
    case fp32, fp16, bf16

    /// Bytes per gradient element on the wire.
    public var bytesPerElement: Int { self == .fp32 ? 4 : 2 }
}

/// Conversions between fp32 and the two 16-bit formats, both rounding to nearest even.
public enum HalfCodec {
    /// IEEE binary16 bits of `x` (overflow to ±inf above 65504, subnormals below 6.1e-5).
    @inline(__always) public static func fp16(_ x: Float) -> UInt16 { Float16(x).bitPattern }
    @inline(__always) public static func fromFP16(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }

    /// bfloat16 bits of `x`: the upper half of the fp32 bits, rounded to nearest even (fp32's range, 8-bit mantissa).
    @inline(__always) public static func bf16(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: b >> 16) | 0x40 }  // stays a (quiet) NaN
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }
    @inline(__always) public static func fromBF16(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    @inline(__always) static func encode(_ x: Float, _ t: GradientWireType) -> UInt16 { t == .fp16 ? fp16(x) : bf16(x) }
    @inline(__always) static func decode(_ h: UInt16, _ t: GradientWireType) -> Float { t == .fp16 ? fromFP16(h) : fromBF16(h) }

    /// `dst[i] = encode(src[i] * scale)`: a rank's share of the mean (scale 1/p), ready for the wire.
    static func encode(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<UInt16>, count: Int, scale: Float, _ t: GradientWireType) {
        for i in 0..<count { dst[i] = encode(src[i] * scale, t) }
    }

    /// `dst[i] = decode(src[i])`; false when a decoded value is not finite (an fp16 overflow).
    static func decode(_ src: UnsafePointer<UInt16>, into dst: UnsafeMutablePointer<Float>, count: Int, _ t: GradientWireType) -> Bool {
        var finite = true
        for i in 0..<count {
            let v = decode(src[i], t)
            dst[i] = v
            if !v.isFinite { finite = false }
        }
        return finite
    }

    /// The reduction MPI applies to two 16-bit buffers: `inout[i] = half(float(in[i]) + float(inout[i]))`, the sum
    /// in fp32 and one rounding per addition. Exposed for tests; `Communicator` registers it with `MPI_Op_create`.
    public static func sumInto(_ acc: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<UInt16>, count: Int, _ t: GradientWireType) {
        switch t {
        case .fp16: for i in 0..<count { acc[i] = fp16(fromFP16(x[i]) + fromFP16(acc[i])) }
        case .bf16: for i in 0..<count { acc[i] = bf16(fromBF16(x[i]) + fromBF16(acc[i])) }
        case .fp32: preconditionFailure("sumInto: fp32 is reduced by MPI_SUM")
        }
    }
}

// MPI user functions must be C function pointers without context: one per format.
private func halfSumFP16(_ invec: UnsafeMutableRawPointer?, _ inoutvec: UnsafeMutableRawPointer?,
                         _ len: UnsafeMutablePointer<Int32>?, _ type: UnsafeMutablePointer<MPI_Datatype?>?) {
    guard let invec, let inoutvec, let len else { return }
    HalfCodec.sumInto(inoutvec.assumingMemoryBound(to: UInt16.self), UnsafePointer(invec.assumingMemoryBound(to: UInt16.self)),
                      count: Int(len.pointee), .fp16)
}

private func halfSumBF16(_ invec: UnsafeMutableRawPointer?, _ inoutvec: UnsafeMutableRawPointer?,
                         _ len: UnsafeMutablePointer<Int32>?, _ type: UnsafeMutablePointer<MPI_Datatype?>?) {
    guard let invec, let inoutvec, let len else { return }
    HalfCodec.sumInto(inoutvec.assumingMemoryBound(to: UInt16.self), UnsafePointer(invec.assumingMemoryBound(to: UInt16.self)),
                      count: Int(len.pointee), .bf16)
}

/// The MPI handles of the 16-bit allreduce, made once per process after MPI is initialised: a 2-byte contiguous
/// datatype (MPI has no standard fp16 type; Horovod does the same) and one commutative user op per format.
final class HalfReduceHandles: @unchecked Sendable {
    let datatype: MPI_Datatype?
    let fp16Sum: MPI_Op?
    let bf16Sum: MPI_Op?

    private init() {
        var t: MPI_Datatype? = nil
        MPI_Type_contiguous(2, swmpi_byte(), &t)
        MPI_Type_commit(&t)
        datatype = t
        var a: MPI_Op? = nil, b: MPI_Op? = nil
        MPI_Op_create(halfSumFP16, 1, &a)
        MPI_Op_create(halfSumBF16, 1, &b)
        fp16Sum = a
        bf16Sum = b
    }

    /// Created on first use (by then `Communicator.world` or `.solo` has initialised MPI).
    static let shared = HalfReduceHandles()

    /// The sum operation of a 16-bit wire format.
    func sum(_ wire: GradientWireType) -> MPI_Op? {
        precondition(wire != .fp32, "fp32 is reduced by MPI_SUM")
        return wire == .fp16 ? fp16Sum : bf16Sum
    }
}

extension Communicator {
    /// The mean over ranks of a float buffer, in place: `buf[i] = (1/p) Σ_r buf_r[i]`. With `.fp32` one
    /// `MPI_Allreduce` of the floats then the 1/p scale; with `.fp16`/`.bf16` each rank scales by 1/p first (as DDP's
    /// compression hooks do, so the sum cannot overflow where the mean does not), encodes into `scratch`
    /// (resized as needed), allreduces the 16-bit values with a user op that adds in fp32 and rounds once per
    /// addition, and decodes the result back into `buf`. Every rank ends with the same values. Returns false when
    /// the reduced buffer holds a non-finite value (fp16 overflow above 65504), the same on every rank.
    @discardableResult
    public func allreduceMean(_ buf: UnsafeMutableBufferPointer<Float>, wire: GradientWireType, scratch: inout [UInt16]) throws -> Bool {
        guard let base = buf.baseAddress, size > 1 else { return true }
        let inv = 1 / Float(size)
        if wire == .fp32 {
            try allreduceSum(buf)
            for i in buf.indices { buf[i] *= inv }
            return true
        }
        let n = buf.count
        if scratch.count < n { scratch = [UInt16](repeating: 0, count: n) }
        let handles = HalfReduceHandles.shared
        return try scratch.withUnsafeMutableBufferPointer { s in
            let h = s.baseAddress!
            HalfCodec.encode(base, into: h, count: n, scale: inv, wire)
            watchdogGate("MPI_Allreduce"); defer { watchdogDone() }
            try chunked(n, "MPI_Allreduce") { off, count in
                MPI_Allreduce(UnsafeRawPointer(swmpi_in_place()), UnsafeMutableRawPointer(h + off), count, handles.datatype, handles.sum(wire), comm)
            }
            return HalfCodec.decode(h, into: base, count: n, wire)
        }
    }
}
