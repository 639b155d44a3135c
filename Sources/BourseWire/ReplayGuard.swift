/// Replay rejection for authenticated envelopes, per sender id.
///
/// Sequences are stamped by ``WireEndpoint`` as `max(previous + 1, wall clock in microseconds)`,
/// so a sequence is also (a lower bound of) the Unix time in microseconds it was sent at, and a
/// restarted sender continues above everything it sent before. The guard accepts a sequence
/// when all of these hold:
/// - it is not older than `horizon` (receiver's wall clock minus the sequence as a time): frames
///   from senders the guard no longer remembers, or never saw, cannot be replayed after that;
/// - it is above the sender's floor: the newest sequence seen from that sender minus `window`
///   (frames of one sender may arrive out of order, e.g. replies of concurrent REQ/REP contexts,
///   or several tasks sending; the window tolerates that much reordering);
/// - it was not seen before from that sender (a replay of the same frame).
/// Memory: per sender, the sequences seen within the window; senders whose newest sequence is
/// older than the horizon are forgotten, and above `maxSenders` the oldest are forgotten after
/// raising a global floor over their newest sequences (so forgetting never re-opens a replay).
public struct ReplayGuard: Sendable {
    /// Reordering tolerated within one sender, in microseconds of sequence. 30 s.
    public var window: UInt64 = 30_000_000
    /// Oldest acceptable sequence relative to the receiver's wall clock, in microseconds. 5 min
    /// (also the clock skew tolerated between machines).
    public var horizon: UInt64 = 300_000_000
    /// Senders remembered before the oldest are forgotten.
    public var maxSenders = 4096

    private struct SenderState: Sendable {
        var highest: UInt64
        var floor: UInt64
        var seen: Set<UInt64>
        var pruneAt: Int
    }

    private var senders: [String: SenderState] = [:]
    /// Sequences at or below this are refused from senders not remembered (raised when forgetting).
    private var forgottenFloor: UInt64 = 0

    public init() {}

    public var rememberedSenders: Int { senders.count }

    /// nil when `sequence` from `sender` is fresh (and records it), else why it is refused.
    public mutating func admit(sender: String, sequence: UInt64, now: UInt64) -> String? {
        if now > horizon, sequence < now - horizon {
            return "sequence \(sequence) is more than \(horizon / 1_000_000) s older than this receiver's clock"
        }
        guard var state = senders[sender] else {
            if sequence <= forgottenFloor { return "sequence \(sequence) is at or below the floor of forgotten senders" }
            senders[sender] = SenderState(
                highest: sequence, floor: sequence > window ? sequence - window : 0, seen: [sequence], pruneAt: 64)
            if senders.count > maxSenders { forget(now: now) }
            return nil
        }
        if sequence <= state.floor {
            return "sequence \(sequence) is more than \(window / 1_000_000) s behind the newest from '\(sender)' (\(state.highest))"
        }
        if state.seen.contains(sequence) { return "sequence \(sequence) from '\(sender)' was already received (a replay)" }
        state.seen.insert(sequence)
        if sequence > state.highest {
            state.highest = sequence
            if sequence > window { state.floor = max(state.floor, sequence - window) }
        }
        if state.seen.count > state.pruneAt {
            let floor = state.floor
            state.seen = state.seen.filter { $0 > floor }
            state.pruneAt = max(64, state.seen.count * 2)
        }
        senders[sender] = state
        return nil
    }

    private mutating func forget(now: UInt64) {
        let horizonFloor = now > horizon ? now - horizon : 0
        senders = senders.filter { $0.value.highest >= horizonFloor }
        guard senders.count > maxSenders else { return }
        let oldest = senders.sorted { $0.value.highest < $1.value.highest }.prefix(senders.count - maxSenders * 3 / 4)
        for (sender, state) in oldest {
            forgottenFloor = max(forgottenFloor, state.highest)
            senders[sender] = nil
        }
    }
}
