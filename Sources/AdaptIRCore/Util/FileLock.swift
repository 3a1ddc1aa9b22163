import Foundation

/// An exclusive advisory lock (flock) on `path` for as long as the value lives: one writer per output folder or
/// packed file. The holder's pid, host and start time are written into the lock file, so a refusal names them.
/// The lock ends with the process, also when it is killed, so no stale lock needs cleaning.
public final class FileLock {
    public let path: String
    private let fd: Int32

    /// Takes the lock or throws a one-line error naming `what` and the holder.
    public init(path: String, what: String) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataError(file: path, message: "cannot create the lock file for \(what): \(String(cString: strerror(errno)))")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw DataError(file: path, message: "\(what) is in use by another run (\(holder.isEmpty ? "holder unknown" : holder)); wait for it or choose another output")
        }
        self.fd = fd
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let stamp = ISO8601DateFormatter().string(from: Date())
        let text = "pid \(getpid()) on \(cMessage(host)) since \(stamp)\n"
        ftruncate(fd, 0)
        _ = text.withCString { write(fd, $0, strlen($0)) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
