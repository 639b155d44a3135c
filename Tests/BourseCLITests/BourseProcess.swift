import Foundation
import Testing

/// Running the built `bourse` executable as real processes, bounded in time, cleaned up.

/// The repository root, found from this file's path (Tests/BourseCLITests/<this file>).
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The built `bourse` executable: next to the test binary/bundle (SwiftPM puts both in
/// .build/<config>/), else in the repository's .build/debug/.
func bourseExecutable() -> URL? {
    var directories: [URL] = []
    if let argv0 = CommandLine.arguments.first {
        directories.append(URL(fileURLWithPath: argv0).deletingLastPathComponent())
    }
    let bundle = Bundle.main.bundleURL
    directories.append(bundle)
    directories.append(bundle.deletingLastPathComponent())
    for b in Bundle.allBundles where b.bundleURL.pathExtension == "xctest" {
        directories.append(b.bundleURL.deletingLastPathComponent())
    }
    directories.append(repoRoot.appendingPathComponent(".build/debug"))
    for directory in directories {
        let candidate = directory.appendingPathComponent("bourse")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
           FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate
        }
    }
    return nil
}

struct RunResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A `bourse` process whose output goes to temp files (so a large output cannot fill a pipe and
/// block it). Terminated (SIGKILL after a grace period) when released.
final class BourseProcess {
    let process = Process()
    private let scratch: URL
    private let outURL: URL
    private let errURL: URL

    /// `environment`: variables set for the child on top of this process's environment.
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        let executable = try #require(bourseExecutable(), "bourse executable not found; build it with `swift build --product bourse`")
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        outURL = scratch.appendingPathComponent("stdout")
        errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.currentDirectoryURL = repoRoot
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: scratch)
    }

    var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Waits until standard output contains `text`; false if the process exits or time runs out.
    func waitForOutput(_ text: String, timeout: Duration = .seconds(20)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if stdout.contains(text) { return true }
            if !process.isRunning { return stdout.contains(text) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Waits for the process to exit; kills it if it has not within `timeout`.
    func wait(timeout: Duration = .seconds(60)) async -> RunResult {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        stop()
        return RunResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// SIGTERM, then SIGKILL if it lingers.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<50 where process.isRunning { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// Runs `bourse` with `arguments` from the repository root and returns when it exits (killed
/// after `timeout`).
func runBourse(_ arguments: [String], timeout: Duration = .seconds(60), environment: [String: String] = [:]) throws -> RunResult {
    let child = try BourseProcess(arguments, environment: environment)
    let deadline = ContinuousClock.now + timeout
    while child.process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
    child.stop()
    return RunResult(status: child.process.terminationStatus, stdout: child.stdout, stderr: child.stderr)
}

/// A loopback TCP port the kernel just handed out (bound, then released).
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A unique ipc:// address in the temp directory.
func uniqueIPCAddress(_ name: String) -> String {
    "ipc://\(FileManager.default.temporaryDirectory.path)/bourse-\(getpid())-\(name)-\(UUID().uuidString.prefix(8)).sock"
}
