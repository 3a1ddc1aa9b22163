import CHDF5
import Foundation

/// A packed training file (format version 1, written by `adaptir-dist pack`), opened read-only and validated.
///
/// Layout (HDF5): root attributes `format_version` (1), `kind` ("patches" | "images"), `task`, `scale` (1...4),
/// `patch_size` (48, the LQ patch side), `degradation` (JSON), `seed`, `sources` (JSON array of file names relative
/// to the input folder, sorted), `count`, `content_sha256`; kind "images" also `image_size` S.
/// - kind "patches": uint8 datasets `gt` [N, 48s, 48s, 3] and `lq` [N, 48, 48, 3], HWC RGB, one patch per chunk.
/// - kind "images": uint8 dataset `images` [M, S, S, 3] of clean sub-images, degraded on the fly at training time.
/// `content_sha256` = SHA-256 over the raw bytes of `gt` then `lq` (or of `images`) in dataset order, as stored;
/// `header_sha256` = SHA-256 of the other attributes (`headerHash`), checked whenever the file is opened.
///
/// Not thread-safe (one HDF5 file handle): open one `PatchFile` per reading thread.
public final class PatchFile {
    /// What the file stores.
    public enum Kind: String, Sendable {
        /// Aligned (gt, lq) patch pairs, already degraded.
        case patches
        /// Clean high-resolution sub-images, degraded at training time.
        case images
    }

    /// The only format version this build reads and writes.
    public static let formatVersion = 1

    public let path: String
    public let kind: Kind
    public let task: String
    public let scale: Int
    /// Side of an LQ patch (48); a GT patch has side `patchSize * scale`.
    public let patchSize: Int
    /// Side S of the stored sub-images (kind images), else nil.
    public let imageSize: Int?
    /// Number of patch pairs (kind patches) or sub-images (kind images).
    public let count: Int
    public let contentSHA256: String
    /// SHA-256 of the attributes (`headerHash`), checked at every open; nil in files packed before it existed.
    public let headerSHA256: String?
    public let seed: Int
    /// The degradation parameters as JSON.
    public let degradation: String
    /// Source file names relative to the input folder, sorted.
    public let sources: [String]
    let file: HDF5File

    /// Bytes of one GT patch (`(48s)^2 * 3`), one LQ patch (`48^2 * 3`), one sub-image (`S^2 * 3`).
    public var gtPatchBytes: Int { (patchSize * scale) * (patchSize * scale) * 3 }
    public var lqPatchBytes: Int { patchSize * patchSize * 3 }
    public var imageBytes: Int { (imageSize ?? 0) * (imageSize ?? 0) * 3 }

    private init(path: String, file: HDF5File, kind: Kind, task: String, scale: Int, patchSize: Int, imageSize: Int?,
                 count: Int, sha: String, headerSHA: String?, seed: Int, degradation: String, sources: [String]) {
        self.path = path; self.file = file; self.kind = kind; self.task = task; self.scale = scale
        self.patchSize = patchSize; self.imageSize = imageSize; self.count = count; self.contentSHA256 = sha
        self.headerSHA256 = headerSHA
        self.seed = seed; self.degradation = degradation; self.sources = sources
    }

    /// Opens `path` read-only and validates it: every attribute present with a known value, datasets present with
    /// the shapes the attributes imply. A missing, truncated or foreign file, an unknown version or kind, a missing
    /// attribute or a mis-shaped dataset throws a `DataError` naming the file and the attribute or dataset.
    public static func open(_ path: String) throws -> PatchFile {
        let f: HDF5File
        do { f = try HDF5File.open(path, readOnly: true) } catch let e as HDF5Error { throw dataError(e, path) }
        func bad(_ what: String, _ msg: String) -> DataError { DataError(file: path, message: "\(what): \(msg)") }
        func int(_ name: String) throws -> Int {
            do {
                guard let v = try f.attributeInt(name) else { throw bad("attribute '\(name)'", "missing (not a patch file?)") }
                return v
            } catch let e as HDF5Error { throw bad("attribute '\(name)'", e.message) }
        }
        func str(_ name: String) throws -> String {
            do {
                guard let v = try f.attributeString(name) else { throw bad("attribute '\(name)'", "missing (not a patch file?)") }
                return v
            } catch let e as HDF5Error { throw bad("attribute '\(name)'", e.message) }
        }
        let version = try int("format_version")
        guard version == formatVersion else {
            throw bad("attribute 'format_version'", "version \(version) is not supported (this build reads \(formatVersion))")
        }
        let kindName = try str("kind")
        guard let kind = Kind(rawValue: kindName) else {
            throw bad("attribute 'kind'", "unknown kind '\(kindName)' (expected patches or images)")
        }
        let task = try str("task")
        let scale = try int("scale")
        guard (1...4).contains(scale) else { throw bad("attribute 'scale'", "\(scale) is not in 1...4") }
        let patchSize = try int("patch_size")
        guard patchSize >= 1 else { throw bad("attribute 'patch_size'", "\(patchSize) is not positive") }
        let count = try int("count")
        guard count >= 0 else { throw bad("attribute 'count'", "\(count) is negative") }
        let sha = try str("content_sha256")
        guard sha.utf8.count == 64, sha.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw bad("attribute 'content_sha256'", "'\(sha)' is not 64 lowercase hex digits")
        }
        let seed = try int("seed")
        let degradation = try str("degradation")
        let sourcesJSON = try str("sources")
        guard let sources = (try? JSONSerialization.jsonObject(with: Data(sourcesJSON.utf8))) as? [String] else {
            throw bad("attribute 'sources'", "not a JSON array of strings")
        }
        var imageSize: Int?
        func checkShape(_ name: String, _ expected: [Int]) throws {
            guard f.exists(name) else { throw bad("dataset '\(name)'", "missing") }
            let s: [Int]
            do { s = try f.shape(of: name) } catch let e as HDF5Error { throw bad("dataset '\(name)'", e.message) }
            guard s == expected else { throw bad("dataset '\(name)'", "shape \(s) expected \(expected)") }
            // An empty read checks the stored type (uint8 reads need an integer type) without touching data.
            do {
                try f.readUInt8(name, start: [0, 0, 0, 0], count: [0, 0, 0, 0], into: UnsafeMutableBufferPointer(start: nil, count: 0))
            } catch let e as HDF5Error { throw bad("dataset '\(name)'", e.message) }
        }
        switch kind {
        case .patches:
            let g = patchSize * scale
            try checkShape("gt", [count, g, g, 3])
            try checkShape("lq", [count, patchSize, patchSize, 3])
        case .images:
            let s = try int("image_size")
            guard s >= patchSize * scale else {
                throw bad("attribute 'image_size'", "\(s) is smaller than a GT patch (\(patchSize * scale))")
            }
            imageSize = s
            try checkShape("images", [count, s, s, 3])
        }
        // The attributes say what the pixels are (task, scale, degradation): an edited one would train silently on
        // the wrong task, so their hash is checked at every open (cheap: no pixel is read).
        let storedHeader: String?
        do { storedHeader = try f.attributeString("header_sha256") } catch let e as HDF5Error { throw bad("attribute 'header_sha256'", e.message) }
        if let storedHeader {
            let computed = headerHash(version: version, kind: kind, task: task, scale: scale, patchSize: patchSize, imageSize: imageSize,
                                      count: count, contentSHA256: sha, seed: seed, degradation: degradation, sources: sourcesJSON)
            guard computed == storedHeader else {
                throw bad("attribute 'header_sha256'", "the attributes changed after packing (stored \(storedHeader.prefix(12))..., computed \(computed.prefix(12))...): an edited task, scale, count or degradation; pack the file again")
            }
        }
        return PatchFile(path: path, file: f, kind: kind, task: task, scale: scale, patchSize: patchSize,
                         imageSize: imageSize, count: count, sha: sha, headerSHA: storedHeader, seed: seed, degradation: degradation,
                         sources: sources)
    }

    /// SHA-256 of every attribute but itself, as canonical text (one `name=value` line each, in this order).
    static func headerHash(version: Int, kind: Kind, task: String, scale: Int, patchSize: Int, imageSize: Int?, count: Int,
                           contentSHA256: String, seed: Int, degradation: String, sources: String) -> String {
        var lines = ["format_version=\(version)", "kind=\(kind.rawValue)", "task=\(task)", "scale=\(scale)", "patch_size=\(patchSize)"]
        if let imageSize { lines.append("image_size=\(imageSize)") }
        lines += ["count=\(count)", "content_sha256=\(contentSHA256)", "seed=\(seed)", "degradation=\(degradation)", "sources=\(sources)"]
        var h = SHA256()
        h.update(Array((lines.joined(separator: "\n") + "\n").utf8))
        return h.finalizeHex()
    }

    /// Reads patch pairs `range` (kind patches): `lq` receives `range.count * lqPatchBytes` bytes, `gt`
    /// `range.count * gtPatchBytes`, both HWC RGB, patch after patch (one hyperslab read per dataset).
    public func readPatches(_ range: Range<Int>, lq: UnsafeMutableBufferPointer<UInt8>,
                            gt: UnsafeMutableBufferPointer<UInt8>) throws {
        guard kind == .patches else { throw DataError(file: path, message: "kind '\(kind.rawValue)' has no patch pairs") }
        guard range.lowerBound >= 0, range.upperBound <= count else {
            throw DataError(file: path, message: "patches \(range) outside 0..<\(count)")
        }
        let g = patchSize * scale
        do {
            try file.readUInt8("lq", start: [range.lowerBound, 0, 0, 0], count: [range.count, patchSize, patchSize, 3], into: lq)
            try file.readUInt8("gt", start: [range.lowerBound, 0, 0, 0], count: [range.count, g, g, 3], into: gt)
        } catch let e as HDF5Error { throw Self.dataError(e, path) }
    }

    /// Reads patch pair `index` (kind patches) into `lq` (48*48*3 bytes) and `gt` ((48s)^2*3 bytes), HWC RGB.
    public func readPatches(_ index: Int, lq: UnsafeMutableBufferPointer<UInt8>, gt: UnsafeMutableBufferPointer<UInt8>) throws {
        try readPatches(index..<(index + 1), lq: lq, gt: gt)
    }

    /// Reads sub-image `index` (kind images) into `into` (S*S*3 bytes, HWC RGB).
    public func readImage(_ index: Int, into: UnsafeMutableBufferPointer<UInt8>) throws {
        guard kind == .images, let s = imageSize else {
            throw DataError(file: path, message: "kind '\(kind.rawValue)' has no images")
        }
        guard index >= 0, index < count else { throw DataError(file: path, message: "image \(index) outside 0..<\(count)") }
        do {
            try file.readUInt8("images", start: [index, 0, 0, 0], count: [1, s, s, 3], into: into)
        } catch let e as HDF5Error { throw Self.dataError(e, path) }
    }

    /// Recomputes the content hash and compares it with `content_sha256`: a mismatch throws
    /// `DataError(file, "content_sha256 mismatch: stored X, computed Y")`.
    public func verify() throws {
        let computed: String
        do { computed = try Self.contentHash(of: file, kind: kind) } catch let e as HDF5Error { throw Self.dataError(e, path) }
        guard computed == contentSHA256 else {
            throw DataError(file: path, message: "content_sha256 mismatch: stored \(contentSHA256), computed \(computed) (pixel data changed or corrupt)")
        }
    }

    /// An HDF5 failure as a one-line `DataError` naming the file: `path: object: message`.
    static func dataError(_ e: HDF5Error, _ path: String) -> DataError {
        DataError(file: path, message: e.object.map { "\($0): \(e.message)" } ?? e.message)
    }

    /// SHA-256 of the stored bytes of `gt` then `lq` (kind patches) or of `images`, read in blocks of items.
    static func contentHash(of f: HDF5File, kind: Kind) throws -> String {
        var h = SHA256()
        let names = kind == .patches ? ["gt", "lq"] : ["images"]
        for name in names {
            let shape = try f.shape(of: name)
            let item = shape.dropFirst().reduce(1, *)
            let n = shape.first ?? 0
            let block = max(1, min(n, (8 << 20) / max(item, 1)))
            var buf = [UInt8](repeating: 0, count: block * item)
            var i = 0
            while i < n {
                let m = min(block, n - i)
                try buf.withUnsafeMutableBufferPointer { b in
                    try f.readUInt8(name, start: [i, 0, 0, 0], count: [m] + Array(shape.dropFirst()), into: b)
                    h.update(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: b[0..<(m * item)])))
                }
                i += m
            }
        }
        return h.finalizeHex()
    }
}

// MARK: Writing (used by the packer, `bench data` and tests)

extension PatchFile {
    /// The header of a file to write; `count` and `content_sha256` are computed from the datasets by `write`.
    public struct Header: Sendable {
        public var kind: Kind
        public var task: String
        public var scale: Int
        /// LQ patch side (48).
        public var patchSize: Int
        /// Side S of the sub-images; required for kind images, ignored for patches.
        public var imageSize: Int?
        /// The degradation parameters as JSON.
        public var degradation: String
        public var seed: Int
        /// Source file names relative to the input folder (stored sorted as given).
        public var sources: [String]

        public init(kind: Kind = .patches, task: String, scale: Int, patchSize: Int = 48, imageSize: Int? = nil,
                    degradation: String = "{}", seed: Int = 0, sources: [String] = []) {
            self.kind = kind; self.task = task; self.scale = scale; self.patchSize = patchSize
            self.imageSize = imageSize; self.degradation = degradation; self.seed = seed; self.sources = sources
        }
    }

    /// Appends items to the file that `PatchFile.write` is writing; valid only inside its `body`.
    public struct Writer {
        let file: HDF5File
        public let header: Header

        /// Appends `count` patch pairs (kind patches): `gt` holds `count * (48s)^2 * 3` bytes and `lq`
        /// `count * 48^2 * 3`, HWC RGB, patch after patch.
        public func appendPatches(gt: UnsafeRawBufferPointer, lq: UnsafeRawBufferPointer, count: Int) throws {
            precondition(header.kind == .patches, "PatchFile.Writer.appendPatches: kind is \(header.kind.rawValue)")
            try file.appendItems("gt", gt, items: count)
            try file.appendItems("lq", lq, items: count)
        }

        /// `appendPatches` from arrays.
        public func appendPatches(gt: [UInt8], lq: [UInt8], count: Int) throws {
            try gt.withUnsafeBytes { g in try lq.withUnsafeBytes { l in try appendPatches(gt: g, lq: l, count: count) } }
        }

        /// Appends `count` sub-images (kind images) of `S * S * 3` bytes each, HWC RGB.
        public func appendImages(_ bytes: UnsafeRawBufferPointer, count: Int) throws {
            precondition(header.kind == .images, "PatchFile.Writer.appendImages: kind is \(header.kind.rawValue)")
            try file.appendItems("images", bytes, items: count)
        }

        /// `appendImages` from an array.
        public func appendImages(_ bytes: [UInt8], count: Int) throws {
            try bytes.withUnsafeBytes { try appendImages($0, count: count) }
        }
    }

    /// Writes a version-1 patch file at `path` atomically (temp name, then rename; nothing left behind on error):
    /// creates the empty datasets of `header.kind` (one item per chunk, gzip 4 when `compress`), runs `body` to
    /// append the items, then writes the header attributes with `count` and `content_sha256` (`writeHeader`).
    @discardableResult
    public static func write(to path: String, header: Header, compress: Bool = false,
                             body: (Writer) throws -> Void) throws -> (count: Int, contentSHA256: String) {
        var result = (count: 0, contentSHA256: "")
        try HDF5File.writeAtomically(to: path) { f in
            try createDatasets(in: f, header: header, compress: compress)
            try body(Writer(file: f, header: header))
            result = try writeHeader(header, into: f)
        }
        return result
    }

    /// Creates the empty, extendable datasets of `header.kind`: `gt` and `lq`, or `images`.
    static func createDatasets(in f: HDF5File, header h: Header, compress: Bool) throws {
        if h.kind == .patches {
            let g = h.patchSize * h.scale
            try f.createItemDataset("gt", item: [g, g, 3], compress: compress)
            try f.createItemDataset("lq", item: [h.patchSize, h.patchSize, 3], compress: compress)
        } else {
            guard let s = h.imageSize else { throw f.error(nil, "kind images needs an image size") }
            try f.createItemDataset("images", item: [s, s, 3], compress: compress)
        }
    }

    /// Writes the root attributes of format version 1 from `header`, with `count` (items in the datasets) and
    /// `content_sha256` (`contentHash` of the stored bytes); returns both.
    @discardableResult
    static func writeHeader(_ h: Header, into f: HDF5File) throws -> (count: Int, contentSHA256: String) {
        let count = try f.shape(of: h.kind == .patches ? "lq" : "images").first ?? 0
        let sha = try contentHash(of: f, kind: h.kind)
        let sources = try JSONSerialization.data(withJSONObject: h.sources, options: [.sortedKeys, .withoutEscapingSlashes])
        try f.setAttribute("format_version", formatVersion)
        try f.setAttribute("kind", h.kind.rawValue)
        try f.setAttribute("task", h.task)
        try f.setAttribute("scale", h.scale)
        try f.setAttribute("patch_size", h.patchSize)
        if h.kind == .images, let s = h.imageSize { try f.setAttribute("image_size", s) }
        try f.setAttribute("degradation", h.degradation)
        try f.setAttribute("seed", h.seed)
        try f.setAttribute("sources", String(decoding: sources, as: UTF8.self))
        try f.setAttribute("count", count)
        try f.setAttribute("content_sha256", sha)
        let sourcesText = String(decoding: sources, as: UTF8.self)
        try f.setAttribute("header_sha256", headerHash(version: formatVersion, kind: h.kind, task: h.task, scale: h.scale, patchSize: h.patchSize,
                                                       imageSize: h.kind == .images ? h.imageSize : nil, count: count, contentSHA256: sha,
                                                       seed: h.seed, degradation: h.degradation, sources: sourcesText))
        return (count, sha)
    }
}

// MARK: HDF5 helpers of the writer

extension HDF5File {
    /// Creates an empty, extendable uint8 dataset `name` of shape [0] + `item` (max [unlimited] + item), chunked one
    /// item per chunk, gzip level 4 when `compress`. Object modification times are not recorded
    /// (H5Pset_obj_track_times 0), so identical content gives identical file bytes.
    func createItemDataset(_ name: String, item: [Int], compress: Bool) throws {
        let object = "dataset '\(name)'"
        try checkWritable(object)
        var dims = [hsize_t(0)] + item.map { hsize_t($0) }
        var maxDims = [hsize_t.max] + item.map { hsize_t($0) }  // hsize_t.max == H5S_UNLIMITED
        let space = H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        guard space >= 0 else { throw failure(object, "cannot create dataspace") }
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(swh5_p_dataset_create())
        defer { H5Pclose(dcpl) }
        var chunk = [hsize_t(1)] + item.map { hsize_t($0) }
        guard H5Pset_chunk(dcpl, Int32(chunk.count), &chunk) >= 0 else { throw failure(object, "invalid chunk") }
        guard H5Pset_obj_track_times(dcpl, false) >= 0 else { throw failure(object, "cannot disable time tracking") }
        if compress { guard H5Pset_deflate(dcpl, 4) >= 0 else { throw failure(object, "gzip unavailable") } }
        let d = H5Dcreate2(fid, name, swh5_native_uint8(), space, H5Lib.hp, dcpl, H5Lib.hp)
        guard d >= 0 else { throw failure(object, "cannot create dataset") }
        H5Dclose(d)
    }

    /// Appends `items` items (row-major bytes) to the extendable dataset `name`, returning the new length.
    @discardableResult
    func appendItems(_ name: String, _ bytes: UnsafeRawBufferPointer, items: Int) throws -> Int {
        let object = "dataset '\(name)'"
        try checkWritable(object)
        if items == 0 { return try shape(of: name).first ?? 0 }
        let d = H5Dopen2(fid, name, H5Lib.hp)
        guard d >= 0 else { throw failure(object, "cannot open dataset") }
        defer { H5Dclose(d) }
        var space = H5Dget_space(d)
        var dims = [hsize_t](repeating: 0, count: Int(H5Sget_simple_extent_ndims(space)))
        H5Sget_simple_extent_dims(space, &dims, nil)
        H5Sclose(space)
        let itemBytes = dims.dropFirst().reduce(1) { $0 * Int($1) }
        guard bytes.count == items * itemBytes else {
            throw error(object, "append of \(items) items needs \(items * itemBytes) bytes, got \(bytes.count)")
        }
        let old = dims[0]
        dims[0] += hsize_t(items)
        guard H5Dset_extent(d, &dims) >= 0 else { throw failure(object, "cannot extend") }
        space = H5Dget_space(d)
        defer { H5Sclose(space) }
        var start = [hsize_t](repeating: 0, count: dims.count); start[0] = old
        var count = dims; count[0] = hsize_t(items)
        guard H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
            throw failure(object, "cannot select hyperslab")
        }
        let mem = H5Screate_simple(Int32(count.count), &count, nil)
        defer { H5Sclose(mem) }
        guard H5Dwrite(d, swh5_native_uint8(), mem, space, H5Lib.hp, bytes.baseAddress) >= 0 else {
            throw failure(object, "write failed")
        }
        return Int(dims[0])
    }
}
