import CHDF5
import Foundation

/// Dataset reading and writing: float tensors (any numeric stored type converted to Float by HDF5) and uint8 arrays
/// with optional chunking and hyperslab reads.
extension HDF5File {
    // MARK: Shapes

    /// Opens dataset `name`, runs `body` with its id, closes it.
    private func withDataset<T>(_ name: String, _ body: (hid_t) throws -> T) throws -> T {
        let object = Self.dataset(name)
        try checkOpen(object)
        guard let type = objectType(name) else { throw error(object, "no such dataset") }
        guard type == H5I_DATASET else { throw error(object, "is not a dataset") }
        let d = H5Dopen2(fid, name, H5Lib.hp)
        guard d >= 0 else { throw failure(object, "cannot open dataset") }
        defer { H5Dclose(d) }
        return try body(d)
    }

    /// The dimensions of a dataspace ([] for a scalar).
    private func dims(of space: hid_t, _ object: String) throws -> [Int] {
        let nd = H5Sget_simple_extent_ndims(space)
        guard nd >= 0 else { throw failure(object, "cannot read dataspace") }
        var d = [hsize_t](repeating: 0, count: Int(nd))
        if nd > 0 { guard H5Sget_simple_extent_dims(space, &d, nil) >= 0 else { throw failure(object, "cannot read dims") } }
        return d.map { Int($0) }
    }

    private func shape(ofDataset d: hid_t, _ object: String) throws -> [Int] {
        let space = H5Dget_space(d)
        guard space >= 0 else { throw failure(object, "cannot get dataspace") }
        defer { H5Sclose(space) }
        return try dims(of: space, object)
    }

    /// The stored type class of dataset `d`.
    private func typeClass(ofDataset d: hid_t, _ object: String) throws -> H5T_class_t {
        let t = H5Dget_type(d)
        guard t >= 0 else { throw failure(object, "cannot get datatype") }
        defer { H5Tclose(t) }
        return H5Tget_class(t)
    }

    /// The shape of dataset `name` ([] for a scalar dataset).
    public func shape(of name: String) throws -> [Int] {
        try withDataset(name) { d in try shape(ofDataset: d, Self.dataset(name)) }
    }

    // MARK: Float reading

    /// Reads a numeric dataset converted to Float (H5Dread with the native float memory type), after checking its
    /// shape against `expectedShape` when given.
    private func readFloatsInto(_ name: String, expectedShape: [Int]?,
                                _ alloc: ([Int]) -> UnsafeMutableRawPointer) throws {
        let object = Self.dataset(name)
        try withDataset(name) { d in
            let shape = try shape(ofDataset: d, object)
            if let e = expectedShape, e != shape { throw error(object, "shape \(shape) expected \(e)") }
            let cls = try typeClass(ofDataset: d, object)
            guard cls == H5T_FLOAT || cls == H5T_INTEGER else {
                throw error(object, "stored type \(H5Lib.className(cls)) is not numeric")
            }
            let ptr = alloc(shape)
            guard H5Dread(d, swh5_native_float(), hid_t(H5S_ALL), hid_t(H5S_ALL), H5Lib.hp, ptr) >= 0 else {
                throw failure(object, "read failed")
            }
        }
    }

    /// Reads dataset `name` as Float values in row-major order, whatever numeric type is stored (float64 and
    /// integers are converted by HDF5): `values[i] = Float(stored[i])`.
    public func readFloats(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let t = try readTensor(name)
        return (t.shape, t.toArray())
    }

    /// Reads dataset `name` into a new Tensor of its stored shape (values converted to Float). With
    /// `expectedShape`, a different stored shape throws `dataset 'name': shape [a, b] expected [c, d]`.
    public func readTensor(_ name: String, expectedShape: [Int]? = nil) throws -> Tensor {
        var tensor: Tensor?
        try readFloatsInto(name, expectedShape: expectedShape) { s in
            let t = Tensor(uninitialized: s)
            tensor = t
            return UnsafeMutableRawPointer(t.data)
        }
        let t = tensor!
        t.name = name
        return t
    }

    // MARK: Writing

    /// Creates dataset `name` (replacing an existing link of that name, creating missing parent groups) with
    /// `shape`, stored type `fileType`, optional chunking, and writes `count` elements of `memType` from `data`.
    private func writeRaw(_ name: String, shape: [Int], memType: hid_t, fileType: hid_t, chunk: [Int]?,
                          data: UnsafeRawPointer) throws {
        let object = Self.dataset(name)
        try checkWritable(object)
        guard !name.split(separator: "/").isEmpty else { throw error(object, "empty dataset name") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw error(object, "negative dimension in shape \(shape)") }
        if let c = chunk {
            guard c.count == shape.count, !c.isEmpty else {
                throw error(object, "chunk \(c) does not match the rank of shape \(shape)")
            }
            guard zip(c, shape).allSatisfy({ $0 >= 1 && $0 <= max($1, 1) }) else {
                throw error(object, "chunk \(c) must be within 1...dim of shape \(shape)")
            }
        }
        if exists(name) {
            guard H5Ldelete(fid, name, H5Lib.hp) >= 0 else { throw failure(object, "cannot replace existing object") }
        }
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(shape.count), &dims, nil)
        guard space >= 0 else { throw failure(object, "cannot create dataspace for shape \(shape)") }
        defer { H5Sclose(space) }
        let lcpl = H5Pcreate(swh5_p_link_create())
        defer { H5Pclose(lcpl) }
        _ = H5Pset_create_intermediate_group(lcpl, 1)
        let dcpl = H5Pcreate(swh5_p_dataset_create())
        defer { H5Pclose(dcpl) }
        if let c = chunk {
            var cd = c.map { hsize_t($0) }
            guard H5Pset_chunk(dcpl, Int32(c.count), &cd) >= 0 else { throw failure(object, "invalid chunk \(c)") }
        }
        let d = H5Dcreate2(fid, name, fileType, space, lcpl, dcpl, H5Lib.hp)
        guard d >= 0 else { throw failure(object, "cannot create dataset") }
        defer { H5Dclose(d) }
        guard H5Dwrite(d, memType, hid_t(H5S_ALL), hid_t(H5S_ALL), H5Lib.hp, data) >= 0 else {
            throw failure(object, "write failed")
        }
    }

    /// Writes `floats` (row-major, `shape.product` values) as a float32 dataset `name`, creating parent groups.
    public func write(_ name: String, floats: UnsafeBufferPointer<Float>, shape: [Int]) throws {
        let n = shape.reduce(1, *)
        guard floats.count == n else {
            throw error(Self.dataset(name), "shape \(shape) needs \(n) values, got \(floats.count)")
        }
        var dummy: Float = 0
        try withUnsafePointer(to: &dummy) { zero in
            try writeRaw(name, shape: shape, memType: swh5_native_float(), fileType: swh5_native_float(), chunk: nil,
                         data: UnsafeRawPointer(floats.baseAddress ?? zero))
        }
    }

    /// Writes `floats` (row-major) as a float32 dataset `name` of `shape`, creating parent groups.
    public func write(_ name: String, floats: [Float], shape: [Int]) throws {
        try floats.withUnsafeBufferPointer { try write(name, floats: $0, shape: shape) }
    }

    /// Writes a tensor's values as a float32 dataset `name` of the tensor's shape, creating parent groups.
    public func write(_ name: String, tensor: Tensor) throws {
        try write(name, floats: UnsafeBufferPointer(start: tensor.data, count: tensor.count), shape: tensor.shape)
    }

    // MARK: UInt8

    /// Writes `bytes` (row-major) as a uint8 dataset `name` of `shape`, chunked by `chunk` when given
    /// (e.g. `[1, C, h, w]`: one patch per chunk, so a patch read touches one chunk).
    public func writeUInt8(_ name: String, bytes: [UInt8], shape: [Int], chunk: [Int]? = nil) throws {
        let n = shape.reduce(1, *)
        guard bytes.count == n else {
            throw error(Self.dataset(name), "shape \(shape) needs \(n) values, got \(bytes.count)")
        }
        var dummy: UInt8 = 0
        try withUnsafePointer(to: &dummy) { zero in
            try bytes.withUnsafeBufferPointer { b in
                try writeRaw(name, shape: shape, memType: swh5_native_uint8(), fileType: swh5_native_uint8(),
                             chunk: chunk, data: UnsafeRawPointer(b.baseAddress ?? zero))
            }
        }
    }

    /// Reads the box `[start, start + count)` of an integer dataset `name` into `into` (which must hold
    /// `count.product` bytes), as uint8, row-major over the box: a hyperslab selection (H5Sselect_hyperslab).
    public func readUInt8(_ name: String, start: [Int], count: [Int], into: UnsafeMutableBufferPointer<UInt8>) throws {
        let object = Self.dataset(name)
        try withDataset(name) { d in
            let shape = try shape(ofDataset: d, object)
            guard start.count == shape.count, count.count == shape.count else {
                throw error(object, "hyperslab start \(start) count \(count) has the wrong rank for shape \(shape)")
            }
            for i in 0..<shape.count where start[i] < 0 || count[i] < 0 || start[i] + count[i] > shape[i] {
                throw error(object, "hyperslab start \(start) count \(count) outside shape \(shape)")
            }
            let n = count.reduce(1, *)
            guard into.count >= n else { throw error(object, "buffer of \(into.count) bytes, need \(n)") }
            let cls = try typeClass(ofDataset: d, object)
            guard cls == H5T_INTEGER else {
                throw error(object, "stored type \(H5Lib.className(cls)) is not an integer type")
            }
            if n == 0 { return }
            let fspace = H5Dget_space(d)
            guard fspace >= 0 else { throw failure(object, "cannot get dataspace") }
            defer { H5Sclose(fspace) }
            var mspace = hid_t(H5S_ALL)
            if !shape.isEmpty {
                var st = start.map { hsize_t($0) }, ct = count.map { hsize_t($0) }
                guard H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &st, nil, &ct, nil) >= 0 else {
                    throw failure(object, "invalid hyperslab start \(start) count \(count)")
                }
                mspace = H5Screate_simple(Int32(ct.count), &ct, nil)
                guard mspace >= 0 else { throw failure(object, "cannot create memory dataspace") }
            }
            defer { if mspace != hid_t(H5S_ALL) { H5Sclose(mspace) } }
            guard H5Dread(d, swh5_native_uint8(), mspace, shape.isEmpty ? hid_t(H5S_ALL) : fspace, H5Lib.hp,
                          into.baseAddress) >= 0 else {
                throw failure(object, "hyperslab read failed (start \(start) count \(count))")
            }
        }
    }

    /// Reads the box `[start, start + count)` of an integer dataset `name` as uint8, row-major over the box.
    public func readUInt8(_ name: String, start: [Int], count: [Int]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max(count.reduce(1, *), 0))
        try out.withUnsafeMutableBufferPointer { try readUInt8(name, start: start, count: count, into: $0) }
        return out
    }

    /// Reads a whole integer dataset `name` as uint8.
    public func readUInt8(_ name: String) throws -> (shape: [Int], values: [UInt8]) {
        let s = try shape(of: name)
        return (s, try readUInt8(name, start: [Int](repeating: 0, count: s.count), count: s))
    }
}
