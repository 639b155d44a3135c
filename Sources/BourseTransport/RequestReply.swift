import CNNG

/// The request side of request/reply. Each `request` runs on its own NNG context, so many
/// requests may be in flight on one client at once.
public final class RequestClient: Sendable {
    public let url: String
    private let socket: Socket

    /// Dials `url` in the background; the first request waits until the peer is reachable or
    /// its timeout passes.
    public init(dialing url: String, options: SocketOptions = .default) throws(NNGError) {
        self.url = url
        self.socket = try Socket(.request, options: options)
        try socket.dial(url)
    }

    /// Sends `bytes` and waits for the reply. Throws a timeout error after `timeout`; task
    /// cancellation cancels the exchange.
    public func request(_ bytes: [UInt8], timeout: Duration = .seconds(5)) async throws(NNGError) -> [UInt8] {
        if FaultInjection.isActive, let fates = FaultInjection.decide(url: url) {
            return try await faulted(bytes, timeout: timeout, fates: fates)
        }
        return try await plainRequest(bytes, timeout: timeout)
    }

    func plainRequest(_ bytes: [UInt8], timeout: Duration) async throws(NNGError) -> [UInt8] {
        let context = try socket.openContext()
        defer { socket.closeContext(context) }
        let io = try AsyncIO()
        try io.attachMessage(bytes)
        let sent = await io.perform(timeout: timeout) { nng_ctx_send(context, $0) }
        if sent != 0 {
            io.discardUnsentMessage()
            throw NNGError(code: sent, operation: "request to \(url)")
        }
        let received = await io.perform(timeout: timeout) { nng_ctx_recv(context, $0) }
        try NNGError.check(received, "reply from \(url)")
        return io.takeMessageBytes()
    }

    public func close() { socket.close() }
}

/// The reply side of request/reply: answers requests with a handler, several at once.
public final class ReplyServer: Sendable {
    public let url: String
    private let socket: Socket

    public init(listening url: String, options: SocketOptions = .default) throws(NNGError) {
        self.url = url
        self.socket = try Socket(.reply, options: options)
        try socket.listen(url)
    }

    /// Serves requests until the server is closed or the task is cancelled. `concurrency` NNG
    /// contexts each receive a request, await `handler` and send its reply. A reply that cannot be
    /// sent (the requester went away) is dropped; serving goes on.
    public func serve(
        concurrency: Int = 8, handler: @escaping @Sendable ([UInt8]) async -> [UInt8]
    ) async throws(NNGError) {
        let socket = self.socket
        let url = self.url
        let outcome: NNGError? = await withTaskGroup(of: NNGError?.self) { group in
            for _ in 0..<max(1, concurrency) {
                group.addTask {
                    do throws(NNGError) {
                        let context = try socket.openContext()
                        defer { socket.closeContext(context) }
                        let io = try AsyncIO()
                        while !Task.isCancelled {
                            let received = await io.perform(timeout: nil) { nng_ctx_recv(context, $0) }
                            if received != 0 {
                                let error = NNGError(code: received, operation: "receive on \(url)")
                                if error.isClosed || error.isCancelled { return nil }
                                if error.isTimeout { continue }
                                return error
                            }
                            let reply = await handler(io.takeMessageBytes())
                            try io.attachMessage(reply)
                            let sent = await io.perform(timeout: .seconds(5)) { nng_ctx_send(context, $0) }
                            if sent != 0 { io.discardUnsentMessage() }
                        }
                        return nil
                    } catch {
                        return socket.isClosed ? nil : error
                    }
                }
            }
            // A context ends with nil when the server closes; an error ends serving for all.
            for await result in group {
                if let error = result {
                    group.cancelAll()
                    return error
                }
            }
            return nil
        }
        if let outcome { throw outcome }
    }

    public func close() { socket.close() }
}
