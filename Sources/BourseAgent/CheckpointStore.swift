import Foundation

/// Checkpoints on storage every agent of the cluster shares (a directory: on one machine the run
/// directory, on a real cluster a shared filesystem): one file per job holding the steps of its
/// newest checkpoint. A worker that stops saves its checkpoint there; a worker that starts on
/// another rack loads the newest one, as a training job restarting from shared storage would.
public struct CheckpointStore: Sendable {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The steps of `jobID`'s newest checkpoint, nil when there is none (or the id is not a
    /// plain file name).
    public func read(_ jobID: String) -> Double? {
        guard let path = path(jobID), let data = FileManager.default.contents(atPath: path) else { return nil }
        return Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Saves a checkpoint of `steps` unless a newer one is already there (written to a temporary
    /// file and renamed, so a reader never sees half a number). Several agents save a job's
    /// checkpoints (a job moving between racks, the parts of a job spread over racks), so the
    /// compare-and-replace holds an exclusive lock on the job's lock file: without it, an agent
    /// that read an older value could rename its lower checkpoint over a higher one saved
    /// meanwhile (a chaos run lost a part's checkpoint that way, and the other part restarted
    /// from below it).
    public func save(_ jobID: String, steps: Double) {
        guard steps.isFinite, let path = path(jobID) else { return }
        let lock = open(path + ".lock", O_CREAT | O_RDWR, 0o644)
        guard lock >= 0 else { return }
        defer { close(lock) }  // releases the lock
        guard flock(lock, LOCK_EX) == 0, steps > (read(jobID) ?? -1) else { return }
        let temporary = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: temporary, contents: Data("\(steps)\n".utf8)) else { return }
        if rename(temporary, path) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
    }

    private func path(_ jobID: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        guard !jobID.isEmpty, jobID.count <= 128, jobID.allSatisfy(allowed.contains) else { return nil }
        return URL(fileURLWithPath: directory).appendingPathComponent(jobID).path
    }
}
