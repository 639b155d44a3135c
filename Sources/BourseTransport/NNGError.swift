import CNNG

/// An NNG failure, with the library's own message. `code` is NNG's error number.
public struct NNGError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int32
    /// What Bourse was doing, e.g. "listen on tcp://127.0.0.1:7700".
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String {
        let message = String(cString: nng_strerror(code))
        return "\(operation): \(message) (nng error \(code))"
    }

    public var isTimeout: Bool { code == Int32(NNG_ETIMEDOUT.rawValue) }
    public var isClosed: Bool { code == Int32(NNG_ECLOSED.rawValue) }
    public var isCancelled: Bool { code == Int32(NNG_ECANCELED.rawValue) }
    /// The address is already taken by another listener.
    public var isAddressInUse: Bool { code == Int32(NNG_EADDRINUSE.rawValue) }

    static func check(_ rv: Int32, _ operation: @autoclosure () -> String) throws(NNGError) {
        if rv != 0 { throw NNGError(code: rv, operation: operation()) }
    }
}
