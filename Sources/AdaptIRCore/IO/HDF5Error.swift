import CHDF5
import Foundation
import Synchronization

/// A failed HDF5 operation, described on one line naming the file and the object, e.g.
/// `ckpt.h5: dataset 'body.encoder.layers.0.linear1.weight': shape [4, 5] expected [5, 4]`.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    /// The file path as given to `open`/`create`.
    public let file: String
    /// The object, already formatted (`dataset 'x'`, `attribute 'a' on '/'`), or nil for the file itself.
    public let object: String?
    /// What went wrong.
    public let message: String

    public init(file: String, object: String? = nil, message: String) {
        self.file = file
        self.object = object
        self.message = message
    }

    /// `file: object: message` (object omitted when nil), newlines flattened so it stays one line.
    public var description: String {
        let text = object.map { "\(file): \($0): \(message)" } ?? "\(file): \(message)"
        return text.replacingOccurrences(of: "\n", with: " ")
    }
}

/// Library set-up and HDF5 error-stack helpers shared by `HDF5File`.
enum H5Lib {
    /// `H5P_DEFAULT` as `hid_t` (it imports as Int32).
    static let hp = hid_t(H5P_DEFAULT)

    /// Initialises the library and turns off HDF5's automatic error-stack printing for the calling thread. The
    /// thread-safe build keeps the error stack (and its auto-print setting) per thread, so every public entry point
    /// calls this; it is a cheap store.
    @inline(__always) static func prepare() {
        _ = setUp
        _ = H5open()
        _ = H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    }

    /// Set when an `H5Fclose` failed (e.g. its final flush hit ENOSPC). HDF5 1.10 then keeps the file's id with a
    /// half-destroyed file behind it, and its exit handler (H5_term_library, closing every open file) dereferences
    /// that and segfaults, after the error was reported and the temporary file removed.
    static let closeFailed = Atomic<Bool>(false)

    /// Once per process, before the library initialises: HDF5's own exit handler is replaced by one that shuts the
    /// library down (flushing and closing what is still open, as HDF5's does) unless a close failed, in which case
    /// the process exits without touching the broken file state.
    private static let setUp: Void = {
        _ = H5dont_atexit()
        atexit {
            if !H5Lib.closeFailed.load(ordering: .relaxed) { _ = H5close() }
        }
    }()

    /// A readable name of an HDF5 type class, for messages.
    static func className(_ c: H5T_class_t) -> String {
        switch c {
        case H5T_INTEGER: return "integer"
        case H5T_FLOAT: return "float"
        case H5T_STRING: return "string"
        case H5T_COMPOUND: return "compound"
        case H5T_ENUM: return "enum"
        case H5T_ARRAY: return "array"
        case H5T_VLEN: return "vlen"
        case H5T_OPAQUE: return "opaque"
        case H5T_BITFIELD: return "bitfield"
        case H5T_REFERENCE: return "reference"
        default: return "class \(c.rawValue)"
        }
    }

    /// The innermost message of the current thread's HDF5 error stack (e.g. "unable to open file"), then clears it.
    static func stackMessage() -> String? {
        final class Box { var text: String? }
        let box = Box()
        let ptr = Unmanaged.passUnretained(box).toOpaque()
        _ = H5Ewalk2(hid_t(H5E_DEFAULT), H5E_WALK_UPWARD, { n, err, data in
            guard n == 0, let err, let data, let desc = err.pointee.desc else { return 0 }
            let b = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            b.text = String(cString: desc)
            return 0
        }, ptr)
        _ = H5Eclear2(hid_t(H5E_DEFAULT))
        withExtendedLifetime(box) {}
        if let t = box.text, !t.isEmpty { return t }
        return nil
    }
}
