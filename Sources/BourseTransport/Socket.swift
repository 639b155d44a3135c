import CNNG
import Dispatch
import Synchronization

/// The scalability protocols Bourse uses.
public enum SocketProtocol: String, Sendable, CaseIterable {
    /// Request side of request/reply: clients of the gateway, shard -> agent commands.
    case request
    /// Reply side: the gateway's client API, agents' command endpoints.
    case reply
    /// One-way sender: gossip (SWIM pings and acks), trade messages.
    case push
    /// One-way receiver: a member's gossip inbox.
    case pull
}

/// Settings every socket takes.
public struct SocketOptions: Sendable, Hashable {
    /// Frames larger than this are refused by NNG (the connection that sent one is dropped).
    public var receiveMaxBytes: Int
    /// Messages NNG buffers per direction; gossip bursts need more than NNG's default.
    public var bufferMessages: Int32
    /// Minimum delay before NNG re-dials a lost peer.
    public var reconnectMin: Duration

    public init(receiveMaxBytes: Int = 4 << 20, bufferMessages: Int32 = 1024, reconnectMin: Duration = .milliseconds(50)) {
        self.receiveMaxBytes = receiveMaxBytes
        self.bufferMessages = bufferMessages
        self.reconnectMin = reconnectMin
    }

    public static let `default` = SocketOptions()
}

/// An open NNG socket. Thread-safe (NNG sockets are); closing is idempotent.
///
/// Higher-level types (`RequestClient`, `ReplyServer`, `PushSender`, `PullReceiver`) wrap it; use
/// this directly only for what they do not cover.
public final class Socket: @unchecked Sendable {
    // @unchecked: `raw` is an NNG handle (a plain id, thread-safe by NNG's contract); the
    // mutable state is behind a mutex.
    let raw: nng_socket
    public let socketProtocol: SocketProtocol
    private let state = Mutex<(closed: Bool, contexts: [UInt32: nng_ctx])>((false, [:]))

    public init(_ socketProtocol: SocketProtocol, options: SocketOptions = .default) throws(NNGError) {
        var socket = nng_socket()
        let rv: Int32
        switch socketProtocol {
        case .request: rv = nng_req0_open(&socket)
        case .reply: rv = nng_rep0_open(&socket)
        case .push: rv = nng_push0_open(&socket)
        case .pull: rv = nng_pull0_open(&socket)
        }
        try NNGError.check(rv, "open \(socketProtocol) socket")
        self.raw = socket
        self.socketProtocol = socketProtocol
        try NNGError.check(
            nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, options.receiveMaxBytes), "set receive size limit")
        if socketProtocol != .request && socketProtocol != .reply {
            try NNGError.check(nng_socket_set_int(socket, NNG_OPT_SENDBUF, options.bufferMessages), "set send buffer")
            try NNGError.check(nng_socket_set_int(socket, NNG_OPT_RECVBUF, options.bufferMessages), "set receive buffer")
        }
        try NNGError.check(
            nng_socket_set_ms(socket, NNG_OPT_RECONNMINT, AsyncIO.milliseconds(options.reconnectMin)),
            "set reconnect time")
    }

    deinit { close() }

    /// Listens on `url` (tcp://host:port, ipc:///path, inproc://name).
    public func listen(_ url: String) throws(NNGError) {
        try NNGError.check(nng_listen(raw, url, nil, 0), "listen on \(url)")
    }

    /// Dials `url`. Non-blocking by default: NNG keeps retrying in the background until the peer
    /// is up, so processes can start in any order.
    public func dial(_ url: String, waitForConnection: Bool = false) throws(NNGError) {
        let flags: Int32 = waitForConnection ? 0 : 2  // 2: NNG_FLAG_NONBLOCK
        try NNGError.check(nng_dial(raw, url, nil, flags), "dial \(url)")
    }

    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Where `nng_close` runs. It can block (it waits for the socket's pipes to be torn down),
    /// and NNG 1.5.x — Debian's version — has a known race in which it never returns
    /// (nanomsg/nng#1543, #1813). So it never runs on the caller's thread, which may belong to
    /// the cooperative pool: a stuck close then costs one leaked socket, not a stalled process.
    /// Prefer long-lived sockets; closing in a hot loop is what exposes the race.
    /// Concurrent: one close stuck in that race must not hold up the closes queued after it.
    private static let closer = DispatchQueue(label: "bourse.nng.close", attributes: .concurrent)

    /// Socket-level sends and receives in flight: cancelled by `close`, so a waiter never depends
    /// on `nng_close` returning.
    private let inFlight = Mutex<[ObjectIdentifier: AsyncIO]>([:])

    /// Closes the socket, failing pending operations with a closed error. Contexts first: NNG's
    /// close blocks while contexts are open. Returns at once; the socket itself is torn down in
    /// the background.
    public func close() {
        let contexts: [nng_ctx]? = state.withLock { state in
            if state.closed { return nil }
            state.closed = true
            defer { state.contexts = [:] }
            return Array(state.contexts.values)
        }
        guard let contexts else { return }
        for context in contexts { nng_ctx_close(context) }
        for io in inFlight.withLock({ Array($0.values) }) { io.cancel() }
        let raw = self.raw
        Self.closer.async { _ = nng_close(raw) }
    }

    // MARK: - Contexts (request/reply run several exchanges concurrently, one per context)

    func openContext() throws(NNGError) -> nng_ctx {
        var context = nng_ctx()
        try NNGError.check(nng_ctx_open(&context, raw), "open context")
        let registered = state.withLock { state -> Bool in
            if state.closed { return false }
            state.contexts[context.id] = context
            return true
        }
        if !registered {
            nng_ctx_close(context)
            throw NNGError(code: Int32(NNG_ECLOSED.rawValue), operation: "open context")
        }
        return context
    }

    func closeContext(_ context: nng_ctx) {
        let owned = state.withLock { $0.contexts.removeValue(forKey: context.id) != nil }
        if owned { nng_ctx_close(context) }
    }

    // MARK: - Raw async send/receive on the socket (one-way protocols)

    func send(_ bytes: [UInt8], timeout: Duration?, operation: String) async throws(NNGError) {
        let io = try AsyncIO()
        try io.attachMessage(bytes)
        let raw = self.raw
        let rv = try await tracked(io, operation) { await io.perform(timeout: timeout) { nng_send_aio(raw, $0) } }
        if rv != 0 {
            io.discardUnsentMessage()
            throw NNGError(code: rv, operation: operation)
        }
    }

    func receive(timeout: Duration?, operation: String) async throws(NNGError) -> [UInt8] {
        let io = try AsyncIO()
        let raw = self.raw
        let rv = try await tracked(io, operation) { await io.perform(timeout: timeout) { nng_recv_aio(raw, $0) } }
        try NNGError.check(rv, operation)
        return io.takeMessageBytes()
    }

    /// Runs `body` with `io` registered for cancellation by `close`; an operation ended by the
    /// close (or started after it) reports NNG_ECLOSED.
    private func tracked(_ io: AsyncIO, _ operation: String, _ body: () async -> Int32) async throws(NNGError) -> Int32 {
        let closed = Int32(NNG_ECLOSED.rawValue)
        inFlight.withLock { $0[ObjectIdentifier(io)] = io }
        defer { inFlight.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(io)) } }
        if isClosed { throw NNGError(code: closed, operation: operation) }
        let rv = await body()
        return rv != 0 && isClosed ? closed : rv
    }
}
