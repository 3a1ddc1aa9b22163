import CMPI
import Foundation

/// Gradient allreduce overlapped with the backward, as PyTorch DDP's reducer does it: the flat trainable-gradient
/// buffer is cut into buckets of whole tensors (in reverse parameter order, the order in which a backward finishes
/// them; the first bucket small, 1 MiB as DDP's, the others `capBytes`), and a bucket's nonblocking
/// `MPI_Iallreduce` starts as soon as every tensor in it has its final gradient (`Autograd.backward(leafReady:)`).
/// Buckets start in index order on every rank (a bucket waits for the ones before it), so all ranks issue the same
/// collectives in the same order; outstanding ones are progressed (`MPI_Testall`) at every later ready tensor, and
/// `finish` starts what is left and waits. Each bucket's gradients are scanned for non-finite values when it starts,
/// and the result is the mean over ranks (1/p), in fp32 or in a 16-bit wire format as `Communicator.allreduceMean`.
public final class BucketedReducer {
    public struct Bucket: Sendable {
        /// Element range of the flat gradient buffer.
        public let range: Range<Int>
        /// Its tensors (key and element range of the flat buffer), in buffer order.
        public let tensors: [(key: String, range: Range<Int>)]
        public var keys: [String] { tensors.map(\.key) }
    }

    public let comm: Communicator
    public let wire: GradientWireType
    public let buckets: [Bucket]
    private let grads: UnsafeMutablePointer<Float>
    private let bucketOf: [ObjectIdentifier: Int]
    private let sizes: [Int]
    private var pending: [Int] = []
    private var requests: [MPI_Request?] = []
    private var started = 0
    private var scratch: [UInt16] = []
    private var launchError: Int32 = 0
    /// Seconds spent in the non-finite scans of this step's buckets.
    public private(set) var scanSeconds = 0.0
    /// The first trainable tensor of this step with a non-finite gradient on this rank.
    public private(set) var firstNonFinite: String?

    /// Buckets over the trainable tensors of `store`; `capBytes` of fp32 gradient per bucket (25 MiB is DDP's
    /// default), the first one at most `firstCapBytes`.
    public init(store: ParameterStore, comm: Communicator, wire: GradientWireType, capBytes: Int, firstCapBytes: Int = 1 << 20) {
        precondition(capBytes > 0, "bucket capacity must be positive")
        self.comm = comm
        self.wire = wire
        grads = store.trainableGrad.base
        var offsets: [(key: String, offset: Int, count: Int)] = []
        var o = 0
        for s in store.specs where store.isTrainable(s.key) { offsets.append((s.key, o, s.count)); o += s.count }
        var made: [Bucket] = [], current: [(key: String, offset: Int, count: Int)] = []
        var bytes = 0
        func close() {
            guard let lo = current.map(\.offset).min(), let hi = current.map({ $0.offset + $0.count }).max() else { return }
            made.append(Bucket(range: lo..<hi, tensors: current.sorted { $0.offset < $1.offset }.map { ($0.key, $0.offset..<($0.offset + $0.count)) }))
            current = []; bytes = 0
        }
        for t in offsets.reversed() {
            let cap = made.isEmpty ? min(firstCapBytes, capBytes) : capBytes
            if !current.isEmpty && bytes + 4 * t.count > cap { close() }
            current.append(t); bytes += 4 * t.count
        }
        close()
        buckets = made
        var map: [ObjectIdentifier: Int] = [:]
        for (i, b) in made.enumerated() { for k in b.keys { map[ObjectIdentifier(store[k])] = i } }
        bucketOf = map
        sizes = made.map(\.keys.count)
        if wire != .fp32 { scratch = [UInt16](repeating: 0, count: store.trainableCount) }
    }

    /// Resets the per-step state (call before the backward).
    public func begin() {
        pending = sizes
        requests = [MPI_Request?](repeating: nil, count: buckets.count)
        started = 0
        scanSeconds = 0
        firstNonFinite = nil
        launchError = 0
    }

    /// `Autograd.backward(leafReady:)`: the tensor's gradient is final.
    public func tensorReady(_ t: Tensor) {
        guard let b = bucketOf[ObjectIdentifier(t)], started < buckets.count else { return }
        pending[b] -= 1
        var launched = false
        while started < buckets.count && pending[started] <= 0 {
            start(started)
            started += 1
            launched = true
        }
        if !launched && started > 0 { progress() }
    }

    private func start(_ i: Int) {
        let r = buckets[i].range, p = grads + r.lowerBound, n = r.count
        let t0 = monotonicSeconds()
        if firstNonFinite == nil, let j = (0..<n).first(where: { !p[$0].isFinite }) {
            let element = r.lowerBound + j
            firstNonFinite = "gradient of " + (buckets[i].tensors.first { $0.range.contains(element) }?.key ?? "?")
        }
        scanSeconds += monotonicSeconds() - t0
        let inv = 1 / Float(comm.size)
        if wire == .fp32 {
            let rc = MPI_Iallreduce(UnsafeRawPointer(swmpi_in_place()), UnsafeMutableRawPointer(p), Int32(n), swmpi_float(), swmpi_sum(), comm.comm, &requests[i])
            if rc != MPI_SUCCESS && launchError == 0 { launchError = rc }
        } else {
            scratch.withUnsafeMutableBufferPointer { s in
                let h = s.baseAddress! + r.lowerBound
                HalfCodec.encode(p, into: h, count: n, scale: inv, wire)
                let handles = HalfReduceHandles.shared
                let rc = MPI_Iallreduce(UnsafeRawPointer(swmpi_in_place()), UnsafeMutableRawPointer(h), Int32(n), handles.datatype,
                                        handles.sum(wire), comm.comm, &requests[i])
                if rc != MPI_SUCCESS && launchError == 0 { launchError = rc }
            }
        }
    }

    /// Lets MPI move the outstanding buckets (nonblocking collectives progress only inside MPI calls).
    private func progress() {
        var flag: Int32 = 0
        requests.withUnsafeMutableBufferPointer { r in
            _ = MPI_Testall(Int32(started), r.baseAddress!, &flag, swmpi_statuses_ignore())
        }
    }

    /// Starts the buckets not started yet (tensors that got no gradient this step), waits for all, and leaves the
    /// mean over ranks in the gradient buffer. Returns false when a reduced value is not finite (fp16 overflow).
    @discardableResult
    public func finish() throws -> Bool {
        while started < buckets.count { start(started); started += 1 }
        try comm.check(launchError, "MPI_Iallreduce (gradient bucket)")
        comm.watchdogGate("MPI_Waitall"); defer { comm.watchdogDone() }
        try requests.withUnsafeMutableBufferPointer { r in
            try comm.check(MPI_Waitall(Int32(r.count), r.baseAddress!, swmpi_statuses_ignore()), "MPI_Waitall (gradient buckets)")
        }
        let inv = 1 / Float(comm.size)
        var finite = true
        for b in buckets {
            let p = grads + b.range.lowerBound
            if wire == .fp32 {
                for j in 0..<b.range.count { p[j] *= inv }
            } else if !scratch.withUnsafeBufferPointer({ HalfCodec.decode($0.baseAddress! + b.range.lowerBound, into: p, count: b.range.count, wire) }) {
                finite = false
            }
        }
        return finite
    }
}
