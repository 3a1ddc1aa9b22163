import CHDF5
import Foundation

/// A small, safe wrapper over one HDF5 file (serial library): float32 tensors named by PyTorch state_dict keys for
/// checkpoints and fixtures, uint8 arrays read by hyperslab for training patches, and scalar attributes.
///
/// Object names are paths relative to the root, with or without a leading `/` (`weights/head.0.0.weight`). Every
/// failure throws an `HDF5Error` naming the file and the object; HDF5's own error-stack printing is turned off.
/// Not thread-safe: use one `HDF5File` per thread (the HDF5 library itself serialises calls with a global lock).
public final class HDF5File {
    /// The path as given to `open`/`create`; used in error messages.
    public let path: String
    /// Whether the file was opened read-only.
    public let readOnly: Bool
    /// The HDF5 file id, or -1 once closed.
    private(set) var fid: hid_t

    private init(path: String, fid: hid_t, readOnly: Bool) {
        self.path = path
        self.fid = fid
        self.readOnly = readOnly
    }

    deinit { close() }

    // MARK: Opening and closing

    /// Opens an existing file (read-only by default). Throws "no such file" for a missing path and
    /// "not an HDF5 file or truncated" when the library cannot open it.
    public static func open(_ path: String, readOnly: Bool = true) throws -> HDF5File {
        H5Lib.prepare()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw HDF5Error(file: path, message: "no such file")
        }
        if isDir.boolValue { throw HDF5Error(file: path, message: "is a directory, not an HDF5 file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw HDF5Error(file: path, message: "permission denied")
        }
        let fid = H5Fopen(path, readOnly ? swh5_acc_rdonly() : swh5_acc_rdwr(), H5Lib.hp)
        guard fid >= 0 else {
            let detail = H5Lib.stackMessage().map { " (HDF5: \($0))" } ?? ""
            throw HDF5Error(file: path, message: "not an HDF5 file or truncated\(detail)")
        }
        return HDF5File(path: path, fid: fid, readOnly: readOnly)
    }

    /// Creates a file for writing, truncating any existing file at `path`.
    public static func create(_ path: String) throws -> HDF5File {
        H5Lib.prepare()
        let fid = H5Fcreate(path, swh5_acc_trunc(), H5Lib.hp, H5Lib.hp)
        guard fid >= 0 else {
            let detail = H5Lib.stackMessage().map { " (HDF5: \($0))" } ?? ""
            throw HDF5Error(file: path, message: "cannot create file (missing directory or no permission?)\(detail)")
        }
        return HDF5File(path: path, fid: fid, readOnly: false)
    }

    /// Whether `close()` has not been called yet.
    public var isOpen: Bool { fid >= 0 }

    /// Closes the file (idempotent; also done by deinit). Errors are ignored here: use `flush()` first, or
    /// `writeAtomically`, when a write must be known to have reached the OS.
    public func close() {
        _ = try? closeChecked()
    }

    /// Closes the file and reports a failure of the final flush.
    func closeChecked() throws {
        guard fid >= 0 else { return }
        H5Lib.prepare()
        let rc = H5Fclose(fid)
        fid = -1
        if rc < 0 {
            H5Lib.closeFailed.store(true, ordering: .relaxed)
            throw failure(nil, "closing (flushing) the file failed")
        }
    }

    /// Number of HDF5 objects (datasets, groups, types, attributes) still open in this file, excluding the file
    /// itself: 0 between calls unless an id leaked. For tests and debugging.
    public var openObjectCount: Int {
        guard fid >= 0 else { return 0 }
        H5Lib.prepare()
        let n = H5Fget_obj_count(fid, swh5_f_obj_all())
        return max(Int(n) - 1, 0)
    }

    /// Flushes buffered data of the whole file to the OS.
    public func flush() throws {
        try checkOpen(nil)
        guard H5Fflush(fid, H5F_SCOPE_GLOBAL) >= 0 else { throw failure(nil, "flush failed") }
    }

    // MARK: Errors

    func error(_ object: String?, _ message: String) -> HDF5Error {
        HDF5Error(file: path, object: object, message: message)
    }

    /// An error that appends the innermost HDF5 error-stack message, if any.
    func failure(_ object: String?, _ message: String) -> HDF5Error {
        let detail = H5Lib.stackMessage().map { " (HDF5: \($0))" } ?? ""
        return error(object, message + detail)
    }

    static func dataset(_ name: String) -> String { "dataset '\(name)'" }

    func checkOpen(_ object: String?) throws {
        H5Lib.prepare()
        guard fid >= 0 else { throw error(object, "file is closed") }
    }

    func checkWritable(_ object: String?) throws {
        try checkOpen(object)
        guard !readOnly else { throw error(object, "file is open read-only") }
    }

    // MARK: Existence and listing

    /// Whether a link `name` exists (every path component is checked, so a missing parent gives false, not an error).
    public func exists(_ name: String) -> Bool {
        guard fid >= 0 else { return false }
        H5Lib.prepare()
        let parts = name.split(separator: "/", omittingEmptySubsequences: true)
        var prefix = ""
        for p in parts {
            prefix += prefix.isEmpty ? String(p) : "/" + p
            if H5Lexists(fid, prefix, H5Lib.hp) <= 0 {
                _ = H5Eclear2(hid_t(H5E_DEFAULT))
                return false
            }
        }
        return true
    }

    /// The HDF5 object type at `name` (group, dataset, ...), or nil when absent.
    func objectType(_ name: String) -> H5I_type_t? {
        guard exists(name) else { return nil }
        let oid = H5Oopen(fid, name, H5Lib.hp)
        guard oid >= 0 else { _ = H5Eclear2(hid_t(H5E_DEFAULT)); return nil }
        defer { H5Oclose(oid) }
        return H5Iget_type(oid)
    }

    /// Full paths (no leading `/`, e.g. `weights/head.0.0.weight`) of the datasets under `group`, in name order,
    /// depth first when `recursive`.
    public func datasetNames(under group: String = "/", recursive: Bool = true) throws -> [String] {
        var out: [String] = []
        try walk(group, recursive: recursive) { path, type in if type == H5I_DATASET { out.append(path) } }
        return out
    }

    /// Full paths of the groups under `group` (not including `group` itself), in name order, depth first.
    public func groupNames(under group: String = "/", recursive: Bool = true) throws -> [String] {
        var out: [String] = []
        try walk(group, recursive: recursive) { path, type in if type == H5I_GROUP { out.append(path) } }
        return out
    }

    /// All groups of the file except the root, recursively (see `groupNames`).
    public var groups: [String] { get throws { try groupNames() } }

    /// Visits the links of `group` by increasing name (H5Lget_name_by_idx), reporting each target's type;
    /// depth first like `h5ls -r`.
    private func walk(_ group: String, recursive: Bool, _ visit: (String, H5I_type_t) -> Void) throws {
        let object = "group '\(group)'"
        try checkOpen(object)
        let isRoot = group.split(separator: "/").isEmpty
        if !isRoot && objectType(group) != H5I_GROUP { throw error(object, "no such group") }
        let g = H5Gopen2(fid, isRoot ? "/" : group, H5Lib.hp)
        guard g >= 0 else { throw failure(object, "cannot open group") }
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        guard H5Gget_info(g, &info) >= 0 else { throw failure(object, "cannot read group info") }
        let prefix = isRoot ? "" : group.split(separator: "/").joined(separator: "/") + "/"
        for i in 0..<info.nlinks {
            let len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, H5Lib.hp)
            guard len >= 0 else { throw failure(object, "cannot read link name #\(i)") }
            var buf = [CChar](repeating: 0, count: Int(len) + 1)
            _ = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(len) + 1, H5Lib.hp)
            let name = String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let oid = H5Oopen(g, name, H5Lib.hp)
            guard oid >= 0 else { _ = H5Eclear2(hid_t(H5E_DEFAULT)); continue }  // dangling soft link
            let type = H5Iget_type(oid)
            H5Oclose(oid)
            visit(prefix + name, type)
            if recursive && type == H5I_GROUP { try walk(prefix + name, recursive: true, visit) }
        }
    }
}
