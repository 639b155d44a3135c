/// One-way sender (PUSH), for gossip and trade messages: fire and forget, no reply.
public final class PushSender: Sendable {
    public let url: String
    private let socket: Socket

    public init(dialing url: String, options: SocketOptions = .default) throws(NNGError) {
        self.url = url
        self.socket = try Socket(.push, options: options)
        try socket.dial(url)
    }

    /// Queues `bytes` for the peer. Waits at most `timeout` for room (the peer may be down: then
    /// the message is dropped with a timeout error, which gossip tolerates by design).
    public func send(_ bytes: [UInt8], timeout: Duration = .milliseconds(500)) async throws(NNGError) {
        try await socket.send(bytes, timeout: timeout, operation: "send to \(url)")
    }

    public func close() { socket.close() }
}

/// One-way receiver (PULL): a member's inbox. Any number of `PushSender`s may dial it.
public final class PullReceiver: Sendable {
    public let url: String
    private let socket: Socket

    public init(listening url: String, options: SocketOptions = .default) throws(NNGError) {
        self.url = url
        self.socket = try Socket(.pull, options: options)
        try socket.listen(url)
    }

    /// The next message; throws a timeout error after `timeout` (nil: wait indefinitely), a closed
    /// error once the receiver is closed. Task cancellation ends the wait.
    public func receive(timeout: Duration? = nil) async throws(NNGError) -> [UInt8] {
        try await socket.receive(timeout: timeout, operation: "receive on \(url)")
    }

    /// Messages until the receiver is closed or the task is cancelled.
    public var messages: AsyncStream<[UInt8]> {
        AsyncStream { continuation in
            let task = Task {
                while !Task.isCancelled {
                    do { continuation.yield(try await self.receive()) } catch { break }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func close() { socket.close() }
}
