/// One problem found in a cluster config file: where it is (file, line/column when known, field path)
/// and what is wrong.
///
/// Printed compiler-style so editors can jump to it:
/// `cluster-configs/x.yaml:14:25: racks[2].nodes[1].gpus.v200: unknown GPU type 'v200' (declared: v100, p100, k80)`
public struct ConfigError: Error, CustomStringConvertible, Sendable, Hashable, Codable {
    /// The file as the caller named it (or a label such as "<stdin>").
    public var file: String
    /// Field path inside the document, e.g. `racks[2].nodes[1].gpus.v200`; empty for the whole file.
    public var path: String
    /// What is wrong, in words an operator can act on.
    public var message: String
    /// 1-based line and column of the offending YAML node, when known.
    public var line: Int?
    public var column: Int?

    public init(file: String, path: String, message: String, line: Int? = nil, column: Int? = nil) {
        self.file = file
        self.path = path
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        var location = file
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        return path.isEmpty ? "\(location): \(message)" : "\(location): \(path): \(message)"
    }
}

/// Everything wrong with one config file (never empty). Thrown by `ClusterConfig.load(path:)` and
/// `ClusterConfig.parse(yaml:file:)`; problems are in document order.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable, Hashable {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        precondition(!errors.isEmpty, "ConfigErrors needs at least one error")
        self.errors = errors
    }

    /// The file the problems are in.
    public var file: String { errors[0].file }

    /// One problem per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
