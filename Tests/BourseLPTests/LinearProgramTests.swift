import Dispatch
import XCTest

@testable import BourseLP

final class LinearProgramTests: XCTestCase {
    /// max 3x + 2y  s.t.  x + y <= 4,  x + 3y <= 6,  x, y >= 0  ->  x = 4, y = 0, 12.
    private var textbook: LinearProgram {
        var lp = LinearProgram(.maximize)
        let x = lp.addColumn(objective: 3)
        let y = lp.addColumn(objective: 2)
        lp.addRow([LPTerm(x, 1), LPTerm(y, 1)], .atMost(4))
        lp.addRow([LPTerm(x, 1), LPTerm(y, 3)], .atMost(6))
        return lp
    }

    func testMaximise() throws {
        for method in [LPMethod.simplex, .interiorPoint] {
            let s = try textbook.solve(method: method)
            XCTAssertEqual(s.objective, 12, accuracy: 1e-6)
            XCTAssertEqual(s.values[0], 4, accuracy: 1e-6)
            XCTAssertEqual(s.values[1], 0, accuracy: 1e-6)
            XCTAssertEqual(s.rowValues[0], 4, accuracy: 1e-6)
        }
    }

    /// min x + y  s.t.  x + 2y >= 4,  3x + y >= 6  ->  (1.6, 1.2), 2.8.
    func testMinimise() throws {
        var lp = LinearProgram(.minimize)
        let x = lp.addColumn(objective: 1)
        let y = lp.addColumn(objective: 1)
        lp.addRow([LPTerm(x, 1), LPTerm(y, 2)], .atLeast(4))
        lp.addRow([LPTerm(x, 3), LPTerm(y, 1)], .atLeast(6))
        let s = try lp.solve()
        XCTAssertEqual(s.objective, 2.8, accuracy: 1e-9)
        XCTAssertEqual(s.values[0], 1.6, accuracy: 1e-9)
        XCTAssertEqual(s.values[1], 1.2, accuracy: 1e-9)
    }

    /// Equality rows, a free column, duplicate terms and an objective constant.
    func testEqualityFreeColumnAndDuplicates() throws {
        var lp = LinearProgram(.minimize)
        let x = lp.addColumn(.free, objective: 1)
        let y = lp.addColumn(.between(0, 10), objective: 2)
        lp.objectiveConstant = 5
        lp.addRow([LPTerm(x, 1), LPTerm(y, 0.5), LPTerm(y, 0.5)], .fixed(3))  // x + y = 3
        lp.addRow([LPTerm(x, 1)], .atLeast(-2))
        let s = try lp.solve()
        // Cheapest: y as small as possible -> y = 0, x = 3 -> 3 + 5.
        XCTAssertEqual(s.objective, 8, accuracy: 1e-9)
        XCTAssertEqual(s.values[0], 3, accuracy: 1e-9)
    }

    func testInfeasibleAndUnbounded() {
        var infeasible = LinearProgram(.maximize)
        let x = infeasible.addColumn(.atLeast(0), objective: 1)
        infeasible.addRow([LPTerm(x, 1)], .atMost(-1))
        for method in [LPMethod.simplex, .interiorPoint] {
            XCTAssertThrowsError(try infeasible.solve(method: method)) { XCTAssertEqual($0 as? LPError, .infeasible) }
        }
        var unbounded = LinearProgram(.maximize)
        let z = unbounded.addColumn(.atLeast(0), objective: 1)
        let w = unbounded.addColumn(.atLeast(0), objective: 0)
        unbounded.addRow([LPTerm(z, 1), LPTerm(w, -1)], .atMost(1))
        for method in [LPMethod.simplex, .interiorPoint] {
            XCTAssertThrowsError(try unbounded.solve(method: method)) { XCTAssertEqual($0 as? LPError, .unbounded) }
        }
    }

    func testInvalidModelsNeverReachGLPK() {
        var lp = LinearProgram(.maximize)
        let x = lp.addColumn(objective: 1)
        lp.addRow([LPTerm(x + 1, 1)], .atMost(1))
        XCTAssertThrowsError(try lp.solve()) {
            XCTAssertEqual($0 as? LPError, .invalidModel("row 0 names column 1, but there are 1 columns"))
        }
        var bad = LinearProgram(.minimize)
        bad.addColumn(.between(2, 1))
        XCTAssertThrowsError(try bad.solve()) {
            XCTAssertEqual($0 as? LPError, .invalidModel("column 0 has lower bound 2.0 > upper bound 1.0"))
        }
        var nan = LinearProgram(.minimize)
        nan.addColumn(objective: .nan)
        XCTAssertThrowsError(try nan.solve()) { XCTAssertNotNil($0 as? LPError) }
    }

    /// On a degenerate optimum the interior-point method lands near the centre of the optimal
    /// face, the simplex method on a vertex.
    func testInteriorPointIsCentred() throws {
        var lp = LinearProgram(.maximize)
        let x = lp.addColumn(.between(0, 1), objective: 1)
        let y = lp.addColumn(.between(0, 1), objective: 1)
        lp.addRow([LPTerm(x, 1), LPTerm(y, 1)], .atMost(1))
        let centre = try lp.solve(method: .interiorPoint)
        XCTAssertEqual(centre.objective, 1, accuracy: 1e-6)
        XCTAssertEqual(centre.values[0], 0.5, accuracy: 1e-3)
        XCTAssertEqual(centre.values[1], 0.5, accuracy: 1e-3)
        let vertex = try lp.solve(method: .simplex)
        XCTAssertEqual(vertex.objective, 1, accuracy: 1e-9)
        XCTAssertEqual(min(vertex.values[0], vertex.values[1]), 0, accuracy: 1e-9)
    }

    func testEmptyPrograms() throws {
        XCTAssertEqual(try LinearProgram(.minimize).solve().values, [])
        var bounds = LinearProgram(.maximize)
        bounds.addColumn(.between(0, 2), objective: 3)
        XCTAssertEqual(try bounds.solve(method: .interiorPoint).objective, 6, accuracy: 1e-9)
    }

    func testConcurrentSolves() throws {
        let lp = textbook
        let results = UnsafeSendableBox(Array(repeating: 0.0, count: 16))
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let value = (try? lp.solve(method: i % 2 == 0 ? .simplex : .interiorPoint).objective) ?? -1
            results.set(i, value)
        }
        for value in results.values { XCTAssertEqual(value, 12, accuracy: 1e-6) }
    }
}

/// A lock-protected array for collecting results from concurrent iterations.
private final class UnsafeSendableBox: @unchecked Sendable {
    private var storage: [Double]
    private let lock = NSLockLike()
    init(_ values: [Double]) { storage = values }
    func set(_ i: Int, _ v: Double) { lock.withLock { storage[i] = v } }
    var values: [Double] { lock.withLock { storage } }
}

private final class NSLockLike: @unchecked Sendable {
    private let queue = DispatchQueue(label: "lp-test-lock")
    func withLock<T>(_ body: () -> T) -> T { queue.sync(execute: body) }
}
