/// A data problem (unreadable image, bad patch file, ...) as one line naming the file: "file: message".
public struct DataError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let message: String

    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message)" }
}
