import Foundation
import Synchronization

/// The cluster clock: time in cluster seconds, shared by every process of a live cluster.
///
/// Cluster time is anchored at a common epoch (a Unix time every process is started with) and
/// runs `speedup` times faster than the wall clock from there:
/// `now = epoch + (wall - epoch) * speedup`. At speed-up 1 it is plain Unix time, so tools that
/// print times as dates (and processes that still use the wall clock) agree with it.
///
/// Shards and agents read time only through this protocol, so tests drive them with
/// ``ManualClusterClock`` and never sleep.
public protocol ClusterClock: Sendable {
    /// Current cluster time in cluster seconds.
    var now: Double { get }
    /// Wall-clock seconds since the common epoch, not sped up (for protocols that run on real
    /// time whatever the replay speed, e.g. SWIM's probe period).
    var wallSinceEpoch: Double { get }
    /// Cluster seconds per wall second.
    var speedup: Double { get }
}

extension ClusterClock {
    /// How long `clusterSeconds` of cluster time take on the wall clock.
    public func wallDuration(ofClusterSeconds clusterSeconds: Double) -> Duration {
        let seconds = max(0, clusterSeconds / max(speedup, 1e-9))
        return .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}

/// The live cluster's clock: the wall clock times `speedup` from `epoch` (Unix seconds).
public struct WallClusterClock: ClusterClock {
    public let epoch: Double
    public let speedup: Double

    public init(epoch: Double, speedup: Double) {
        self.epoch = epoch
        self.speedup = speedup > 0 ? speedup : 1
    }

    public var now: Double { epoch + (Date().timeIntervalSince1970 - epoch) * speedup }
    public var wallSinceEpoch: Double { Date().timeIntervalSince1970 - epoch }
}

/// A clock tests set and advance by hand (thread-safe).
public final class ManualClusterClock: ClusterClock {
    private let state: Mutex<(now: Double, wall: Double)>
    public let speedup: Double

    public init(now: Double = 0, speedup: Double = 1) {
        self.state = Mutex((now, now / (speedup > 0 ? speedup : 1)))
        self.speedup = speedup > 0 ? speedup : 1
    }

    public var now: Double { state.withLock { $0.now } }
    public var wallSinceEpoch: Double { state.withLock { $0.wall } }

    /// Sets cluster time (wall time follows at `1 / speedup`).
    public func set(_ now: Double) {
        let speedup = self.speedup
        state.withLock { $0 = (now, now / speedup) }
    }

    /// Advances cluster time by `seconds`.
    public func advance(by seconds: Double) {
        let speedup = self.speedup
        state.withLock { $0 = ($0.now + seconds, $0.wall + seconds / speedup) }
    }
}
