/// Philox4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as 1, 2, 3"; Random123).
///
/// A counter-based generator: `philox(ctr, key)` is a bijection of the 128-bit counter for each 64-bit key, so any
/// block of random bits is computed directly from its coordinates, with no state carried between samples.
/// One round: `(hi0, lo0) = M0 * c0`, `(hi1, lo1) = M1 * c2`, `c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)`;
/// the key is bumped by the Weyl constants `(W0, W1)` between rounds; 10 rounds.
public enum Philox4x32 {
    static let m0: UInt32 = 0xD251_1F53, m1: UInt32 = 0xCD9E_8D57
    static let w0: UInt32 = 0x9E37_79B9, w1: UInt32 = 0xBB67_AE85

    /// The 10-round Philox4x32 block function: four 32-bit outputs for counter `ctr` and key `key`.
    @inline(__always)
    public static func block(_ ctr: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32))
        -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = ctr
        var (k0, k1) = key
        for r in 0..<10 {
            if r > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = UInt64(m0) * UInt64(c0), p1 = UInt64(m1) * UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }
}

/// Which use of a sample's randomness a `SampleRNG` serves: each stream is an independent Philox counter range, so
/// adding draws to one (e.g. a different degradation) never shifts the others.
public enum SampleStream: UInt32, Sendable {
    /// Random crop position (kind "images").
    case crop = 0
    /// Augmentation mode 1...7.
    case augment = 1
    /// On-the-fly degradation (noise, JPEG, ...).
    case degrade = 2
}

/// The random numbers of one training sample, a pure function of `(seed, epoch, global sample index, stream)`:
/// Philox4x32-10 with key `(seed_lo32, seed_hi32)` and counter `(block, stream, index, epoch)`, where `block` counts
/// the 128-bit blocks drawn so far. Because the key and counter name the sample by its GLOBAL dataset index, the
/// draws (crop position, augmentation mode, noise) are identical whatever the number of ranks, the shard a sample
/// falls in, or the order samples are processed in.
public struct SampleRNG: RandomNumberGenerator, Sendable {
    /// Philox key words.
    public let key: (UInt32, UInt32)
    /// Fixed counter words 1...3: stream, index, epoch.
    public let stream: UInt32, index: UInt32, epoch: UInt32
    /// Next block number (counter word 0).
    public private(set) var block: UInt32 = 0
    private var buffer: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    private var used = 4

    /// The generator of sample `index` (global dataset index) in `epoch` for `stream`, under `seed`.
    public init(seed: UInt64, epoch: Int, index: Int, stream: SampleStream) {
        self.init(seed: seed, epoch: epoch, index: index, rawStream: stream.rawValue)
    }

    /// As above with a raw stream number (for callers that need more than the named streams).
    public init(seed: UInt64, epoch: Int, index: Int, rawStream: UInt32) {
        precondition(epoch >= 0 && epoch <= Int(UInt32.max), "SampleRNG: epoch \(epoch) outside 0...2^32-1")
        precondition(index >= 0 && index <= Int(UInt32.max), "SampleRNG: index \(index) outside 0...2^32-1")
        key = (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        stream = rawStream
        self.index = UInt32(index)
        self.epoch = UInt32(epoch)
    }

    /// The next 32 random bits (the four words of each Philox block in order, then the next block).
    public mutating func next32() -> UInt32 {
        if used == 4 {
            precondition(block < UInt32.max, "SampleRNG: more than 2^34 words drawn for one sample")
            buffer = Philox4x32.block((block, stream, index, epoch), key: key)
            block += 1
            used = 0
        }
        defer { used += 1 }
        switch used {
        case 0: return buffer.0
        case 1: return buffer.1
        case 2: return buffer.2
        default: return buffer.3
        }
    }

    /// 64 random bits: `lo | hi << 32` from two consecutive words.
    public mutating func next() -> UInt64 {
        let lo = UInt64(next32())
        return lo | UInt64(next32()) << 32
    }

    /// Uniform integer in `0..<n` by Lemire's multiply-and-reject on 32-bit words (unbiased).
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0 && n <= Int(UInt32.max), "SampleRNG.below: n = \(n) outside 1...2^32-1")
        let bound = UInt32(n)
        var m = UInt64(next32()) * UInt64(bound)
        if UInt32(truncatingIfNeeded: m) < bound {
            let threshold = (0 &- bound) % bound
            while UInt32(truncatingIfNeeded: m) < threshold { m = UInt64(next32()) * UInt64(bound) }
        }
        return Int(m >> 32)
    }

    /// Uniform Float in [0, 1) with 24 random bits.
    public mutating func unitFloat() -> Float { Float(next32() >> 8) * (1.0 / 16_777_216.0) }

    /// Standard normal by Box-Muller from two 53-bit uniforms: `sqrt(-2 ln u1) cos(2 pi u2)`, u1 in (0, 1].
    public mutating func normal() -> Double {
        let u1 = Double((next() >> 11) + 1) * 0x1p-53
        let u2 = Double(next() >> 11) * 0x1p-53
        return (-2 * _sampleLog(u1)).squareRoot() * _sampleCos(2 * Double.pi * u2)
    }
}

import Foundation
@inline(__always) private func _sampleLog(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _sampleCos(_ x: Double) -> Double { Foundation.cos(x) }
