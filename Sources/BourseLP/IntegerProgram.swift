import CGLPK

/// A mixed-integer linear program: a `LinearProgram` some of whose columns must take integer
/// values, solved by GLPK's branch-and-cut (`glp_intopt`, with its presolver) on the calling
/// thread. Values only, as `LinearProgram`; no C pointer leaves the module.
public struct IntegerProgram: Sendable, Hashable {
    public var lp: LinearProgram
    /// Columns that must be integral.
    public private(set) var integerColumns: Set<Int> = []

    public init(_ direction: LPDirection) {
        lp = LinearProgram(direction)
    }

    /// Adds a continuous column.
    @discardableResult
    public mutating func addColumn(_ bound: LPBound = .atLeast(0), objective coefficient: Double = 0) -> Int {
        lp.addColumn(bound, objective: coefficient)
    }

    /// Adds an integer column.
    @discardableResult
    public mutating func addIntegerColumn(_ bound: LPBound = .atLeast(0), objective coefficient: Double = 0) -> Int {
        let c = lp.addColumn(bound, objective: coefficient)
        integerColumns.insert(c)
        return c
    }

    /// Adds a 0/1 column.
    @discardableResult
    public mutating func addBinaryColumn(objective coefficient: Double = 0) -> Int {
        addIntegerColumn(.between(0, 1), objective: coefficient)
    }

    @discardableResult
    public mutating func addRow(_ terms: [LPTerm], _ bound: LPBound) -> Int { lp.addRow(terms, bound) }

    /// Solves to optimality (GLPK's default relative MIP gap 0). Throws `LPError.infeasible`,
    /// `.unbounded` (of the relaxation), `.invalidModel` or `.solverFailed`.
    public func solve() throws -> LPSolution {
        // Validates the model exactly as the LP does (GLPK aborts on bad indices).
        if lp.columnCount == 0 { return try lp.solve(method: .simplex) }
        try Self.validate(lp)
        glp_term_out(GLP_OFF)
        guard let prob = glp_create_prob() else { throw LPError.solverFailed("glp_create_prob returned NULL") }
        defer { glp_delete_prob(prob) }
        glp_set_obj_dir(prob, lp.direction == .maximize ? GLP_MAX : GLP_MIN)
        glp_set_obj_coef(prob, 0, lp.objectiveConstant)
        if lp.rowCount > 0 { glp_add_rows(prob, Int32(lp.rowCount)) }
        glp_add_cols(prob, Int32(lp.columnCount))
        for (i, bound) in lp.rowBounds.enumerated() {
            Self.setBounds(bound) { type, lo, hi in glp_set_row_bnds(prob, Int32(i + 1), type, lo, hi) }
        }
        for (j, bound) in lp.columnBounds.enumerated() {
            Self.setBounds(bound) { type, lo, hi in glp_set_col_bnds(prob, Int32(j + 1), type, lo, hi) }
            glp_set_obj_coef(prob, Int32(j + 1), lp.objective[j])
            if integerColumns.contains(j) { glp_set_col_kind(prob, Int32(j + 1), GLP_IV) }
        }
        var ia: [Int32] = [0]
        var ja: [Int32] = [0]
        var ar: [Double] = [0]
        for (i, terms) in lp.rows.enumerated() {
            var merged: [Int: Double] = [:]
            for term in terms { merged[term.column, default: 0] += term.coefficient }
            for column in merged.keys.sorted() where merged[column]! != 0 {
                ia.append(Int32(i + 1))
                ja.append(Int32(column + 1))
                ar.append(merged[column]!)
            }
        }
        if ia.count > 1 { glp_load_matrix(prob, Int32(ia.count - 1), ia, ja, ar) }

        var parm = glp_iocp()
        glp_init_iocp(&parm)
        parm.msg_lev = GLP_MSG_OFF
        parm.presolve = GLP_ON
        let code = glp_intopt(prob, &parm)
        switch code {
        case 0: break
        case GLP_ENOPFS: throw LPError.infeasible
        case GLP_ENODFS: throw LPError.unbounded
        default: throw LPError.solverFailed("glp_intopt returned code \(code)")
        }
        switch glp_mip_status(prob) {
        case GLP_OPT: break
        case GLP_NOFEAS: throw LPError.infeasible
        default: throw LPError.solverFailed("integer solution status \(glp_mip_status(prob))")
        }
        return LPSolution(
            objective: glp_mip_obj_val(prob),
            values: (0..<lp.columnCount).map { glp_mip_col_val(prob, Int32($0 + 1)) },
            rowValues: (0..<lp.rowCount).map { glp_mip_row_val(prob, Int32($0 + 1)) },
            method: .simplex)
    }

    private static func validate(_ lp: LinearProgram) throws {
        guard lp.columnCount < Int(Int32.max) / 2, lp.rowCount < Int(Int32.max) / 2 else {
            throw LPError.invalidModel("too many rows or columns for GLPK")
        }
        func check(_ bound: LPBound, _ what: String) throws {
            switch bound {
            case .free: return
            case .atLeast(let x), .atMost(let x), .fixed(let x):
                guard x.isFinite else { throw LPError.invalidModel("\(what) has a non-finite bound \(x)") }
            case .between(let lo, let hi):
                guard lo.isFinite, hi.isFinite, lo <= hi else {
                    throw LPError.invalidModel("\(what) has an invalid bound [\(lo), \(hi)]")
                }
            }
        }
        for (j, bound) in lp.columnBounds.enumerated() {
            try check(bound, "column \(j)")
            guard lp.objective[j].isFinite else { throw LPError.invalidModel("column \(j) has a non-finite objective") }
        }
        for (i, terms) in lp.rows.enumerated() {
            try check(lp.rowBounds[i], "row \(i)")
            for term in terms {
                guard term.column >= 0, term.column < lp.columnCount else {
                    throw LPError.invalidModel("row \(i) names column \(term.column), but there are \(lp.columnCount) columns")
                }
                guard term.coefficient.isFinite else {
                    throw LPError.invalidModel("row \(i), column \(term.column) has a non-finite coefficient")
                }
            }
        }
    }

    private static func setBounds(_ bound: LPBound, _ apply: (Int32, Double, Double) -> Void) {
        switch bound {
        case .free: apply(GLP_FR, 0, 0)
        case .atLeast(let x): apply(GLP_LO, x, 0)
        case .atMost(let x): apply(GLP_UP, 0, x)
        case .fixed(let x): apply(GLP_FX, x, x)
        case .between(let lo, let hi): lo == hi ? apply(GLP_FX, lo, lo) : apply(GLP_DB, lo, hi)
        }
    }
}
