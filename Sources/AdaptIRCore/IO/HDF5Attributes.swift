import CHDF5
import Foundation

/// Scalar attributes (string, Int, Double) on any object, and atomic file writing.
extension HDF5File {
    // MARK: Attributes

    private static func attribute(_ name: String, _ object: String) -> String { "attribute '\(name)' on '\(object)'" }

    private static func objectPath(_ object: String) -> String {
        object.split(separator: "/").isEmpty ? "/" : object
    }

    /// Opens attribute `name` of `object`: nil when the object exists but has no such attribute.
    private func openAttribute(_ name: String, on object: String) throws -> hid_t? {
        let desc = Self.attribute(name, object)
        try checkOpen(desc)
        let obj = Self.objectPath(object)
        guard obj == "/" || exists(obj) else { throw error(desc, "no such object '\(object)'") }
        let e = H5Aexists_by_name(fid, obj, name, H5Lib.hp)
        guard e >= 0 else { throw failure(desc, "cannot query attribute") }
        if e == 0 { return nil }
        let a = H5Aopen_by_name(fid, obj, name, H5Lib.hp, H5Lib.hp)
        guard a >= 0 else { throw failure(desc, "cannot open attribute") }
        return a
    }

    /// Number of elements of attribute `a` (1 for a scalar).
    private func elementCount(_ a: hid_t, _ desc: String) throws -> Int {
        let s = H5Aget_space(a)
        guard s >= 0 else { throw failure(desc, "cannot get dataspace") }
        defer { H5Sclose(s) }
        return Int(H5Sget_simple_extent_npoints(s))
    }

    /// Reads a one-element numeric attribute with memory type `memType`, accepting the stored type classes `accept`.
    private func readScalar<T: BitwiseCopyable>(_ name: String, on object: String, memType: hid_t, accept: [H5T_class_t], typeName: String,
                               _ zero: T) throws -> T? {
        let desc = Self.attribute(name, object)
        guard let a = try openAttribute(name, on: object) else { return nil }
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        guard t >= 0 else { throw failure(desc, "cannot get datatype") }
        let cls = H5Tget_class(t)
        H5Tclose(t)
        guard accept.contains(cls) else { throw error(desc, "stored type \(H5Lib.className(cls)) does not convert to \(typeName)") }
        let n = try elementCount(a, desc)
        guard n == 1 else { throw error(desc, "has \(n) elements, expected one") }
        var v = zero
        guard withUnsafeMutableBytes(of: &v, { H5Aread(a, memType, $0.baseAddress) }) >= 0 else { throw failure(desc, "read failed") }
        return v
    }

    /// Creates (or replaces) attribute `name` on `object` with type `type` and scalar dataspace, writing `data`.
    private func writeAttribute(_ name: String, on object: String, type: hid_t, _ data: UnsafeRawPointer) throws {
        let desc = Self.attribute(name, object)
        try checkWritable(desc)
        let obj = Self.objectPath(object)
        guard obj == "/" || exists(obj) else { throw error(desc, "no such object '\(object)'") }
        if H5Aexists_by_name(fid, obj, name, H5Lib.hp) > 0 {
            guard H5Adelete_by_name(fid, obj, name, H5Lib.hp) >= 0 else { throw failure(desc, "cannot replace") }
        }
        let space = H5Screate(H5S_SCALAR)
        guard space >= 0 else { throw failure(desc, "cannot create dataspace") }
        defer { H5Sclose(space) }
        let a = H5Acreate_by_name(fid, obj, name, type, space, H5Lib.hp, H5Lib.hp, H5Lib.hp)
        guard a >= 0 else { throw failure(desc, "cannot create attribute") }
        defer { H5Aclose(a) }
        guard H5Awrite(a, type, data) >= 0 else { throw failure(desc, "write failed") }
    }

    /// Sets string attribute `name` on `object` (default the root group): a variable-length UTF-8 string like
    /// h5py's default, or a fixed-length null-terminated one with `fixedLength`.
    public func setAttribute(_ name: String, _ value: String, on object: String = "/", fixedLength: Bool = false) throws {
        let t = H5Tcopy(swh5_c_s1())
        defer { H5Tclose(t) }
        _ = H5Tset_cset(t, H5T_CSET_UTF8)
        if fixedLength {
            let bytes = Array(value.utf8CString)  // includes the terminating NUL
            _ = H5Tset_size(t, bytes.count)
            _ = H5Tset_strpad(t, H5T_STR_NULLTERM)
            try bytes.withUnsafeBytes { try writeAttribute(name, on: object, type: t, $0.baseAddress!) }
        } else {
            _ = H5Tset_size(t, swh5_t_variable())
            try value.withCString { p in
                var ptr: UnsafePointer<CChar>? = p
                try withUnsafePointer(to: &ptr) { try writeAttribute(name, on: object, type: t, UnsafeRawPointer($0)) }
            }
        }
    }

    /// Sets an integer attribute (stored as int64).
    public func setAttribute(_ name: String, _ value: Int, on object: String = "/") throws {
        var v = Int64(value)
        try writeAttribute(name, on: object, type: swh5_native_int64(), &v)
    }

    /// Sets a floating-point attribute (stored as float64).
    public func setAttribute(_ name: String, _ value: Double, on object: String = "/") throws {
        var v = value
        try writeAttribute(name, on: object, type: swh5_native_double(), &v)
    }

    /// Integer attribute `name` of `object`, or nil when absent. Throws for a missing object or a non-integer type.
    public func attributeInt(_ name: String, on object: String = "/") throws -> Int? {
        try readScalar(name, on: object, memType: swh5_native_int64(), accept: [H5T_INTEGER], typeName: "Int", Int64(0)).map { Int($0) }
    }

    /// Floating-point attribute `name` of `object` (integers are converted), or nil when absent.
    public func attributeDouble(_ name: String, on object: String = "/") throws -> Double? {
        try readScalar(name, on: object, memType: swh5_native_double(), accept: [H5T_FLOAT, H5T_INTEGER], typeName: "Double", 0.0)
    }

    /// String attribute `name` of `object`, or nil when absent. Accepts variable-length strings (h5py's default)
    /// and fixed-length ones (null-terminated, null- or space-padded; padding is stripped).
    public func attributeString(_ name: String, on object: String = "/") throws -> String? {
        let desc = Self.attribute(name, object)
        guard let a = try openAttribute(name, on: object) else { return nil }
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        guard t >= 0 else { throw failure(desc, "cannot get datatype") }
        defer { H5Tclose(t) }
        guard H5Tget_class(t) == H5T_STRING else { throw error(desc, "is not a string attribute") }
        let n = try elementCount(a, desc)
        guard n == 1 else { throw error(desc, "has \(n) elements, expected one string") }
        let mem = H5Tcopy(t)
        defer { H5Tclose(mem) }
        if H5Tis_variable_str(t) > 0 {
            var p: UnsafeMutablePointer<CChar>? = nil
            guard H5Aread(a, mem, &p) >= 0 else { throw failure(desc, "read failed") }
            defer { if let p { H5free_memory(p) } }
            return p.map { String(cString: $0) } ?? ""
        }
        let size = H5Tget_size(t)
        guard size > 0 else { throw failure(desc, "bad string size") }
        var buf = [UInt8](repeating: 0, count: size)
        guard H5Aread(a, mem, &buf) >= 0 else { throw failure(desc, "read failed") }
        var bytes = buf.prefix { $0 != 0 }[...]
        if H5Tget_strpad(t) == H5T_STR_SPACEPAD { while bytes.last == 0x20 { bytes.removeLast() } }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Atomic writing

    /// Writes a new file at `path` atomically: `body` fills a file created at `path + ".tmp-<pid>"` (same
    /// directory), which is then closed (flushed), fsync'ed and `rename(2)`d over `path`. On any error the temp
    /// file is removed, an existing `path` is left untouched, and the error is rethrown.
    public static func writeAtomically(to path: String, _ body: (HDF5File) throws -> Void) throws {
        let tmp = path + ".tmp-\(getpid())"
        removeStaleTemporaries(of: path)
        do {
            let f = try create(tmp)
            do {
                try body(f)
                try f.closeChecked()
            } catch {
                f.close()
                throw error
            }
            let fd = Foundation.open(tmp, O_RDONLY)
            if fd >= 0 { _ = fsync(fd); _ = Foundation.close(fd) }
            guard rename(tmp, path) == 0 else {
                let reason = String(cString: strerror(errno))
                throw HDF5Error(file: path, message: "cannot rename \(tmp) over it: \(reason)")
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Removes `path.tmp-<pid>` files left by writers that were killed mid-write (a checkpoint of the ipt preset
    /// with full fine-tuning is 1.4 GB): those whose process no longer exists on this machine. A temporary of a
    /// live process (another writer of the same path) is left alone. Returns the names removed.
    @discardableResult
    public static func removeStaleTemporaries(of path: String) -> [String] {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path, prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH, unlink((dir as NSString).appendingPathComponent(name)) == 0 {
                removed.append(name)
            }
        }
        return removed
    }
}
