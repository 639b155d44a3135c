import CSQLite

/// A failed SQLite call: what Bourse was doing, the statement (when there was one), SQLite's
/// result code and its own message.
public struct SQLiteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was being done, e.g. "open /var/lib/bourse/gateway.db", "prepare", "step", "commit".
    public var operation: String
    /// The SQL text, when the failure concerns one statement.
    public var sql: String?
    /// SQLite's (extended) result code.
    public var code: Int32
    /// SQLite's message (`sqlite3_errmsg`), or Bourse's when the failure is its own.
    public var message: String

    public init(operation: String, sql: String? = nil, code: Int32, message: String) {
        self.operation = operation
        self.sql = sql
        self.code = code
        self.message = message
    }

    public var description: String {
        var text = "sqlite: \(operation) failed: \(message) (code \(code))"
        if let sql { text += " in: \(sql)" }
        return text
    }

    /// SQLITE_BUSY or SQLITE_LOCKED: another connection holds the database.
    public var isBusy: Bool { code & 0xFF == 5 || code & 0xFF == 6 }
    /// SQLITE_CONSTRAINT (a UNIQUE or CHECK violation, a trigger's RAISE(ABORT)).
    public var isConstraint: Bool { code & 0xFF == 19 }
}

/// One value in or out of a statement.
enum SQLValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    var int64: Int64 {
        switch self {
        case .integer(let v): v
        case .real(let v): Int64(v)
        case .text(let s): Int64(s) ?? 0
        case .null: 0
        }
    }

    var double: Double {
        switch self {
        case .integer(let v): Double(v)
        case .real(let v): v
        case .text(let s): Double(s) ?? 0
        case .null: 0
        }
    }

    var string: String? {
        switch self {
        case .text(let s): s
        case .integer(let v): String(v)
        case .real(let v): String(v)
        case .null: nil
        }
    }

    static func optionalText(_ s: String?) -> SQLValue { s.map(SQLValue.text) ?? .null }
}

/// One SQLite connection: the only type in Bourse that sees a `sqlite3*`.
///
/// Not thread-safe by itself and deliberately not `Sendable`: exactly one owner (the gateway's
/// actor, which runs on a dedicated thread) uses it. Prepared statements are cached by SQL text
/// and finalised on `close()` (or deinit).
final class SQLiteConnection {
    let path: String
    private var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws(SQLiteError) {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw SQLiteError(operation: "open \(path)", code: rc, message: message)
        }
        sqlite3_extended_result_codes(handle, 1)
        db = handle
    }

    deinit { close() }

    var isOpen: Bool { db != nil }

    /// Finalises every cached statement and closes the connection. Idempotent.
    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    private func handle(_ operation: String, sql: String?) throws(SQLiteError) -> OpaquePointer {
        guard let db else { throw SQLiteError(operation: operation, sql: sql, code: 21, message: "the store is closed") }
        return db
    }

    private func failure(_ operation: String, sql: String?, rc: Int32) -> SQLiteError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        return SQLiteError(operation: operation, sql: sql, code: rc, message: message)
    }

    /// Runs one or more statements without parameters or results (schema, pragmas, BEGIN/COMMIT).
    func execute(_ sql: String, operation: String = "execute") throws(SQLiteError) {
        let db = try handle(operation, sql: sql)
        let rc = sqlite3_exec(db, sql, nil, nil, nil)
        if rc != SQLITE_OK { throw failure(operation, sql: sql, rc: rc) }
    }

    /// Runs one statement with `parameters` bound to `?1...`, returning every result row.
    @discardableResult
    func query(_ sql: String, _ parameters: [SQLValue] = []) throws(SQLiteError) -> [[SQLValue]] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in parameters.enumerated() {
            let position = Int32(index + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, position)
            case .integer(let v): rc = sqlite3_bind_int64(statement, position, v)
            case .real(let v): rc = sqlite3_bind_double(statement, position, v)
            case .text(let s):
                // SQLITE_TRANSIENT (a macro Swift cannot see): SQLite copies the bytes.
                let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
                rc = sqlite3_bind_text(statement, position, s, -1, transient)
            }
            if rc != SQLITE_OK { throw failure("bind parameter \(position)", sql: sql, rc: rc) }
        }
        var rows: [[SQLValue]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw failure("step", sql: sql, rc: rc) }
            let columns = sqlite3_column_count(statement)
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: row.append(.real(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default:
                    if let text = sqlite3_column_text(statement, column) {
                        row.append(.text(String(cString: text)))
                    } else {
                        row.append(.null)
                    }
                }
            }
            rows.append(row)
        }
        return rows
    }

    private func prepared(_ sql: String) throws(SQLiteError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        let db = try handle("prepare", sql: sql)
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            sqlite3_finalize(statement)
            throw failure("prepare", sql: sql, rc: rc)
        }
        statements[sql] = statement
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE ... COMMIT`, rolling back if it throws. With WAL and
    /// `synchronous=FULL`, COMMIT returns once the transaction is on disk.
    func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try execute("BEGIN IMMEDIATE", operation: "begin transaction")
        do {
            let result = try body()
            try execute("COMMIT", operation: "commit")
            return result
        } catch {
            try? execute("ROLLBACK", operation: "rollback")
            throw error
        }
    }
}
