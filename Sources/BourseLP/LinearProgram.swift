import CGLPK

/// Bounds of a column (variable) or a row (constraint) of a linear program.
public enum LPBound: Sendable, Hashable {
    /// No bound.
    case free
    /// value >= lower.
    case atLeast(Double)
    /// value <= upper.
    case atMost(Double)
    /// lower <= value <= upper (lower == upper is a fixed value).
    case between(Double, Double)
    /// value == x.
    case fixed(Double)
}

/// A term `coefficient * column` of a row.
public struct LPTerm: Sendable, Hashable {
    public var column: Int
    public var coefficient: Double

    public init(_ column: Int, _ coefficient: Double) {
        self.column = column
        self.coefficient = coefficient
    }
}

public enum LPDirection: Sendable, Hashable {
    case minimize
    case maximize
}

/// Which GLPK solver to run.
public enum LPMethod: Sendable, Hashable {
    /// Primal simplex with GLPK's presolver; returns a vertex of the optimal face.
    case simplex
    /// GLPK's primal-dual interior-point method; returns a point near the analytic centre of the
    /// optimal face (close to what interior-point solvers such as ECOS return). Falls back to the
    /// simplex method when the interior-point method fails numerically or the problem is empty.
    case interiorPoint
}

/// Why a linear program has no solution.
public enum LPError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No point satisfies all constraints and bounds.
    case infeasible
    /// The objective can improve without limit.
    case unbounded
    /// The model itself is malformed (bad index, non-finite number, lower > upper); nothing was
    /// passed to GLPK.
    case invalidModel(String)
    /// GLPK gave up (numerical trouble, iteration limit), with its return code.
    case solverFailed(String)

    public var description: String {
        switch self {
        case .infeasible: return "the linear program is infeasible"
        case .unbounded: return "the linear program is unbounded"
        case .invalidModel(let m): return "invalid linear program: \(m)"
        case .solverFailed(let m): return "GLPK failed: \(m)"
        }
    }
}

/// An optimal solution.
public struct LPSolution: Sendable, Hashable {
    /// Objective value.
    public var objective: Double
    /// Value of each column, in column order.
    public var values: [Double]
    /// Value (activity) of each row, in row order.
    public var rowValues: [Double]
    /// The method that produced this solution (`.simplex` after an interior-point fallback).
    public var method: LPMethod

    public init(objective: Double, values: [Double], rowValues: [Double], method: LPMethod) {
        self.objective = objective
        self.values = values
        self.rowValues = rowValues
        self.method = method
    }
}

/// A linear program built in Swift and solved by GLPK:
///
///     minimize / maximize   sum_j c_j x_j
///     subject to            bounds on each row   r_i = sum_j a_ij x_j
///                           bounds on each column x_j
///
/// Values only; `solve` creates a GLPK problem object, solves it and deletes it before
/// returning, so no C pointer leaves this module.
///
/// Threads: GLPK is not thread-safe per environment, but the Debian/Ubuntu `libglpk` keeps its
/// environment in thread-local storage, and every `solve` call uses its own problem object on the
/// calling thread only. So `solve` may be called from several threads at once; a GLPK problem
/// object is never shared between threads. (With a GLPK build without thread-local storage,
/// callers must serialise solves.)
public struct LinearProgram: Sendable, Hashable {
    public var direction: LPDirection
    public private(set) var columnBounds: [LPBound] = []
    public private(set) var objective: [Double] = []
    public private(set) var rowBounds: [LPBound] = []
    public private(set) var rows: [[LPTerm]] = []
    /// Constant added to the objective.
    public var objectiveConstant: Double = 0

    public init(_ direction: LPDirection) {
        self.direction = direction
    }

    public var columnCount: Int { columnBounds.count }
    public var rowCount: Int { rowBounds.count }

    /// Adds a column (variable) and returns its index.
    @discardableResult
    public mutating func addColumn(_ bound: LPBound = .atLeast(0), objective coefficient: Double = 0) -> Int {
        columnBounds.append(bound)
        objective.append(coefficient)
        return columnBounds.count - 1
    }

    /// Sets the objective coefficient of a column.
    public mutating func setObjective(_ column: Int, _ coefficient: Double) {
        objective[column] = coefficient
    }

    /// Adds a row (constraint) `bound` on `sum terms` and returns its index. Terms naming the
    /// same column are summed.
    @discardableResult
    public mutating func addRow(_ terms: [LPTerm], _ bound: LPBound) -> Int {
        rows.append(terms)
        rowBounds.append(bound)
        return rows.count - 1
    }

    /// Solves the program with GLPK, with all GLPK terminal output off.
    public func solve(method: LPMethod = .simplex) throws -> LPSolution {
        let model = try validated()
        if columnCount == 0 {
            return LPSolution(
                objective: objectiveConstant, values: [], rowValues: Array(repeating: 0, count: rowCount), method: method)
        }
        switch method {
        case .simplex:
            return try runGLPK(model, interior: false)
        case .interiorPoint:
            if rowCount == 0 || model.ne == 0 { return try runGLPK(model, interior: false) }
            do {
                return try runGLPK(model, interior: true)
            } catch LPError.solverFailed {
                return try runGLPK(model, interior: false)
            } catch LPError.infeasible {
                // The interior-point method cannot tell infeasible from unbounded; ask simplex.
                return try runGLPK(model, interior: false)
            } catch LPError.unbounded {
                return try runGLPK(model, interior: false)
            }
        }
    }

    // MARK: - Validation and GLPK calls

    /// The matrix in GLPK's 1-based triplet form (index 0 unused).
    private struct Triplets {
        var ia: [Int32] = [0]
        var ja: [Int32] = [0]
        var ar: [Double] = [0]
        var ne: Int32 { Int32(ia.count - 1) }
    }

    private func check(_ bound: LPBound, _ what: String) throws {
        switch bound {
        case .free: return
        case .atLeast(let x), .atMost(let x), .fixed(let x):
            guard x.isFinite else { throw LPError.invalidModel("\(what) has a non-finite bound \(x)") }
        case .between(let lo, let hi):
            guard lo.isFinite, hi.isFinite else {
                throw LPError.invalidModel("\(what) has a non-finite bound [\(lo), \(hi)]")
            }
            guard lo <= hi else { throw LPError.invalidModel("\(what) has lower bound \(lo) > upper bound \(hi)") }
        }
    }

    private func validated() throws -> Triplets {
        guard columnCount < Int(Int32.max) / 2, rowCount < Int(Int32.max) / 2 else {
            throw LPError.invalidModel("too many rows or columns for GLPK")
        }
        guard objectiveConstant.isFinite else { throw LPError.invalidModel("non-finite objective constant") }
        for (j, bound) in columnBounds.enumerated() {
            try check(bound, "column \(j)")
            guard objective[j].isFinite else {
                throw LPError.invalidModel("column \(j) has a non-finite objective coefficient")
            }
        }
        var t = Triplets()
        for (i, terms) in rows.enumerated() {
            try check(rowBounds[i], "row \(i)")
            var merged: [Int: Double] = [:]
            for term in terms {
                guard term.column >= 0, term.column < columnCount else {
                    throw LPError.invalidModel("row \(i) names column \(term.column), but there are \(columnCount) columns")
                }
                guard term.coefficient.isFinite else {
                    throw LPError.invalidModel("row \(i), column \(term.column) has a non-finite coefficient")
                }
                merged[term.column, default: 0] += term.coefficient
            }
            for column in merged.keys.sorted() {
                let value = merged[column]!
                if value == 0 { continue }
                t.ia.append(Int32(i + 1))
                t.ja.append(Int32(column + 1))
                t.ar.append(value)
            }
        }
        guard t.ia.count < Int(Int32.max) else { throw LPError.invalidModel("too many non-zeros for GLPK") }
        return t
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

    private func runGLPK(_ t: Triplets, interior: Bool) throws -> LPSolution {
        glp_term_out(GLP_OFF)
        guard let prob = glp_create_prob() else { throw LPError.solverFailed("glp_create_prob returned NULL") }
        defer { glp_delete_prob(prob) }
        glp_set_obj_dir(prob, direction == .maximize ? GLP_MAX : GLP_MIN)
        glp_set_obj_coef(prob, 0, objectiveConstant)
        if rowCount > 0 { glp_add_rows(prob, Int32(rowCount)) }
        glp_add_cols(prob, Int32(columnCount))
        for (i, bound) in rowBounds.enumerated() {
            Self.setBounds(bound) { type, lo, hi in glp_set_row_bnds(prob, Int32(i + 1), type, lo, hi) }
        }
        for (j, bound) in columnBounds.enumerated() {
            Self.setBounds(bound) { type, lo, hi in glp_set_col_bnds(prob, Int32(j + 1), type, lo, hi) }
            glp_set_obj_coef(prob, Int32(j + 1), objective[j])
        }
        if t.ne > 0 { glp_load_matrix(prob, t.ne, t.ia, t.ja, t.ar) }

        if interior {
            var parm = glp_iptcp()
            glp_init_iptcp(&parm)
            parm.msg_lev = GLP_MSG_OFF
            let code = glp_interior(prob, &parm)
            switch code {
            case 0: break
            case GLP_ENOFEAS: throw LPError.infeasible
            default: throw LPError.solverFailed("glp_interior returned \(Self.codeName(code))")
            }
            switch glp_ipt_status(prob) {
            case GLP_OPT: break
            case GLP_NOFEAS, GLP_INFEAS: throw LPError.infeasible
            default: throw LPError.solverFailed("interior-point solution status \(glp_ipt_status(prob))")
            }
            return LPSolution(
                objective: glp_ipt_obj_val(prob),
                values: (0..<columnCount).map { glp_ipt_col_prim(prob, Int32($0 + 1)) },
                rowValues: (0..<rowCount).map { glp_ipt_row_prim(prob, Int32($0 + 1)) },
                method: .interiorPoint)
        }

        var parm = glp_smcp()
        glp_init_smcp(&parm)
        parm.msg_lev = GLP_MSG_OFF
        parm.presolve = GLP_ON
        let code = glp_simplex(prob, &parm)
        switch code {
        case 0: break
        case GLP_ENOPFS: throw LPError.infeasible
        case GLP_ENODFS: throw LPError.unbounded
        default: throw LPError.solverFailed("glp_simplex returned \(Self.codeName(code))")
        }
        switch glp_get_status(prob) {
        case GLP_OPT: break
        case GLP_NOFEAS: throw LPError.infeasible
        case GLP_UNBND: throw LPError.unbounded
        default:
            // With the presolver a primal infeasible problem may also end here.
            if glp_get_prim_stat(prob) == GLP_NOFEAS { throw LPError.infeasible }
            if glp_get_dual_stat(prob) == GLP_NOFEAS { throw LPError.unbounded }
            throw LPError.solverFailed("simplex solution status \(glp_get_status(prob))")
        }
        return LPSolution(
            objective: glp_get_obj_val(prob),
            values: (0..<columnCount).map { glp_get_col_prim(prob, Int32($0 + 1)) },
            rowValues: (0..<rowCount).map { glp_get_row_prim(prob, Int32($0 + 1)) },
            method: .simplex)
    }

    private static func codeName(_ code: Int32) -> String {
        switch code {
        case GLP_EBADB: return "GLP_EBADB (invalid basis)"
        case GLP_ESING: return "GLP_ESING (singular matrix)"
        case GLP_ECOND: return "GLP_ECOND (ill-conditioned matrix)"
        case GLP_EBOUND: return "GLP_EBOUND (invalid bounds)"
        case GLP_EFAIL: return "GLP_EFAIL (solver failed)"
        case GLP_EITLIM: return "GLP_EITLIM (iteration limit)"
        case GLP_ETMLIM: return "GLP_ETMLIM (time limit)"
        case GLP_ENOCVG: return "GLP_ENOCVG (no convergence)"
        case GLP_EINSTAB: return "GLP_EINSTAB (numerical instability)"
        default: return "code \(code)"
        }
    }
}
