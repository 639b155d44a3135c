import Foundation

/// Standard output and error for commands. Writes go straight to the file descriptor (no stdio
/// buffering), so a parent process reading a pipe sees each line as soon as it is written.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
