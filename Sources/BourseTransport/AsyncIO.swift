import CNNG
import Synchronization

/// One NNG asynchronous I/O handle bridged to Swift concurrency.
///
/// NNG completes an aio on one of its own threads by calling a C callback. The callback here only
/// resumes a continuation: it never frees anything and never holds the last reference to this
/// object (it reaches a separately allocated `Completion` box, unretained), so `nng_aio_free` is
/// never called from inside the aio's own callback — the deadlock described in
/// design/interop-notes.md. Awaiting an operation suspends the task; it does not block a thread of
/// the cooperative pool. Cancelling the task cancels the aio.
///
/// One operation at a time per `AsyncIO`.
final class AsyncIO: @unchecked Sendable {
    // @unchecked: `aio` is an NNG handle, thread-safe per NNG's documentation; all other mutable
    // state sits behind the `Completion` box's mutex.

    /// State shared with the C callback. Outlives every callback: `AsyncIO.deinit` frees the aio
    /// (which waits for a running callback) before the box can be released.
    private final class Completion: Sendable {
        struct State {
            var continuation: CheckedContinuation<Void, Never>?
            var cancelled = false
        }
        let state = Mutex(State())

        func fire() {
            let continuation = state.withLock { state in
                let c = state.continuation
                state.continuation = nil
                return c
            }
            continuation?.resume()
        }
    }

    private let aio: OpaquePointer
    private let completion: Completion

    init() throws(NNGError) {
        let completion = Completion()
        var handle: OpaquePointer?
        let rv = nng_aio_alloc(
            &handle,
            { argument in
                guard let argument else { return }
                Unmanaged<Completion>.fromOpaque(argument).takeUnretainedValue().fire()
            },
            Unmanaged.passUnretained(completion).toOpaque())
        try NNGError.check(rv, "allocate aio")
        self.aio = handle!
        self.completion = completion
    }

    deinit {
        // Stops any operation and waits for its callback; safe because we are never on it.
        nng_aio_free(aio)
    }

    /// Starts an operation with `start` and waits for it. Returns NNG's result code (0 = success).
    /// `timeout` nil means no timeout.
    func perform(timeout: Duration?, _ start: (OpaquePointer) -> Void) async -> Int32 {
        nng_aio_set_timeout(aio, timeout.map(Self.milliseconds) ?? -1)  // -1: NNG_DURATION_INFINITE
        let aio = self.aio
        let completion = self.completion
        completion.state.withLock { $0.cancelled = false }
        var startedCancelled = false
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let alreadyCancelled = completion.state.withLock { state -> Bool in
                    if state.cancelled { return true }
                    state.continuation = continuation
                    return false
                }
                if alreadyCancelled {
                    startedCancelled = true
                    continuation.resume()
                    return
                }
                start(aio)
                // The task may have been cancelled between storing the continuation and starting.
                if completion.state.withLock({ $0.cancelled }) { nng_aio_cancel(aio) }
            }
        } onCancel: {
            self.cancel()
        }
        return startedCancelled ? Int32(NNG_ECANCELED.rawValue) : nng_aio_result(aio)
    }

    /// Ends the operation now (it completes with NNG_ECANCELED); used when its socket closes.
    func cancel() {
        completion.state.withLock { $0.cancelled = true }
        nng_aio_cancel(aio)
    }

    /// Receives one message (after `perform` of a receive succeeded) as bytes, freeing it.
    func takeMessageBytes() -> [UInt8] {
        guard let message = nng_aio_get_msg(aio) else { return [] }
        defer { nng_msg_free(message) }
        let length = nng_msg_len(message)
        guard length > 0, let body = nng_msg_body(message) else { return [] }
        return Array(UnsafeRawBufferPointer(start: body, count: length))
    }

    /// Attaches a new message holding `bytes` to the aio, for a send.
    func attachMessage(_ bytes: [UInt8]) throws(NNGError) {
        var message: OpaquePointer?
        try NNGError.check(nng_msg_alloc(&message, 0), "allocate message")
        let rv = bytes.withUnsafeBytes { nng_msg_append(message, $0.baseAddress, $0.count) }
        if rv != 0 {
            nng_msg_free(message)
            throw NNGError(code: rv, operation: "build message")
        }
        nng_aio_set_msg(aio, message)
    }

    /// After a failed send NNG leaves the message with the aio: free it.
    func discardUnsentMessage() {
        if let message = nng_aio_get_msg(aio) {
            nng_msg_free(message)
            nng_aio_set_msg(aio, nil)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int32 {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(ms, 0))
    }
}
