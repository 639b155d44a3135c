import Foundation

/// A low-rank factorisation of a sparse matrix, fitted by alternating least squares with L2
/// regularisation (collaborative filtering):
///
///     x[r][c] ~ mean + rowBias[r] + columnBias[c] + rowFactors[r] . columnFactors[c]
///
/// minimising the squared error on the observed cells plus `regularization` times the squared
/// norm of every bias and factor. Deterministic: the column factors start from a fixed pattern.
/// Rows or columns without observed cells get zero biases and factors.
public struct LowRankFactorization: Sendable {
    public struct Cell: Sendable, Hashable {
        public var row: Int
        public var column: Int
        public var value: Double

        public init(row: Int, column: Int, value: Double) {
            self.row = row
            self.column = column
            self.value = value
        }
    }

    public let rows: Int
    public let columns: Int
    public let rank: Int
    public private(set) var mean = 0.0
    public private(set) var rowBias: [Double]
    public private(set) var columnBias: [Double]
    /// Row-major, `rank` values per row.
    public private(set) var rowFactors: [Double]
    /// Row-major, `rank` values per column.
    public private(set) var columnFactors: [Double]

    /// Fits the factorisation to `cells` (indices must be in 0..<rows and 0..<columns; a cell
    /// given twice counts twice).
    public init(rows: Int, columns: Int, cells: [Cell], rank: Int, regularization: Double, iterations: Int = 30) {
        precondition(rows >= 0 && columns >= 0 && rank >= 0, "sizes must be >= 0")
        self.rows = rows
        self.columns = columns
        self.rank = rank
        rowBias = [Double](repeating: 0, count: rows)
        columnBias = [Double](repeating: 0, count: columns)
        rowFactors = [Double](repeating: 0, count: rows * rank)
        columnFactors = [Double](repeating: 0, count: columns * rank)
        guard !cells.isEmpty else { return }
        mean = cells.reduce(0) { $0 + $1.value } / Double(cells.count)
        var byRow = [[Int]](repeating: [], count: rows)
        var byColumn = [[Int]](repeating: [], count: columns)
        for (i, cell) in cells.enumerated() {
            precondition(cell.row >= 0 && cell.row < rows && cell.column >= 0 && cell.column < columns, "cell out of range")
            byRow[cell.row].append(i)
            byColumn[cell.column].append(i)
        }
        let lambda = max(regularization, 1e-9)
        if rank > 0 {
            spectralStart(cells: cells, byRow: byRow, byColumn: byColumn, lambda: lambda)
        }
        var solver = RidgeSolver(dimension: rank + 1)
        for _ in 0..<max(iterations, 1) {
            for r in 0..<rows {
                solver.reset()
                for i in byRow[r] {
                    let c = cells[i].column
                    solver.add(
                        target: cells[i].value - mean - columnBias[c],
                        features: { d in columnFactors[c * rank + d] })
                }
                let x = solver.solve(lambda: lambda)
                rowBias[r] = x[0]
                for d in 0..<rank { rowFactors[r * rank + d] = x[d + 1] }
            }
            for c in 0..<columns {
                solver.reset()
                for i in byColumn[c] {
                    let r = cells[i].row
                    solver.add(
                        target: cells[i].value - mean - rowBias[r],
                        features: { d in rowFactors[r * rank + d] })
                }
                let x = solver.solve(lambda: lambda)
                columnBias[c] = x[0]
                for d in 0..<rank { columnFactors[c * rank + d] = x[d + 1] }
            }
        }
    }

    /// Deterministic start of the column factors (spectral initialisation): fit the biases alone,
    /// then take the top `rank` eigenvectors of R^T R, R the zero-filled residual matrix, by
    /// orthogonal iteration from a fixed start. Random or fixed-pattern starts can leave ALS in a
    /// poor local optimum.
    private mutating func spectralStart(cells: [Cell], byRow: [[Int]], byColumn: [[Int]], lambda: Double) {
        for _ in 0..<10 {
            for r in 0..<rows where !byRow[r].isEmpty {
                var s = 0.0
                for i in byRow[r] { s += cells[i].value - mean - columnBias[cells[i].column] }
                rowBias[r] = s / (Double(byRow[r].count) + lambda)
            }
            for c in 0..<columns where !byColumn[c].isEmpty {
                var s = 0.0
                for i in byColumn[c] { s += cells[i].value - mean - rowBias[cells[i].row] }
                columnBias[c] = s / (Double(byColumn[c].count) + lambda)
            }
        }
        // G = R^T R (columns x columns).
        var g = [Double](repeating: 0, count: columns * columns)
        for r in 0..<rows {
            let list = byRow[r]
            for x in list {
                let cx = cells[x].column
                let vx = cells[x].value - mean - rowBias[r] - columnBias[cx]
                for y in list {
                    let cy = cells[y].column
                    g[cx * columns + cy] += vx * (cells[y].value - mean - rowBias[r] - columnBias[cy])
                }
            }
        }
        var q = [Double](repeating: 0, count: columns * rank)
        for c in 0..<columns {
            for d in 0..<rank { q[c * rank + d] = cos(1.7 * Double(c + 1) * Double(d + 1)) + (c % rank == d ? 1 : 0) }
        }
        var eigen = [Double](repeating: 0, count: rank)
        for _ in 0..<50 {
            var z = [Double](repeating: 0, count: columns * rank)
            for i in 0..<columns {
                for k in 0..<columns where g[i * columns + k] != 0 {
                    for d in 0..<rank { z[i * rank + d] += g[i * columns + k] * q[k * rank + d] }
                }
            }
            // Gram-Schmidt.
            for d in 0..<rank {
                for e in 0..<d {
                    var dot = 0.0
                    for i in 0..<columns { dot += z[i * rank + d] * z[i * rank + e] }
                    for i in 0..<columns { z[i * rank + d] -= dot * z[i * rank + e] }
                }
                var norm = 0.0
                for i in 0..<columns { norm += z[i * rank + d] * z[i * rank + d] }
                norm = norm.squareRoot()
                eigen[d] = norm
                if norm > 1e-12 {
                    for i in 0..<columns { z[i * rank + d] /= norm }
                }
            }
            q = z
        }
        // Scale like a balanced factorisation: v = q * sqrt(sigma), sigma^2 = eigenvalue / (fill).
        let fill = Double(cells.count) / Double(max(rows * columns, 1))
        for d in 0..<rank {
            let sigma = (eigen[d] / max(fill, 1e-9)).squareRoot()
            let scale = (sigma / Double(max(rows, 1)).squareRoot() * Double(max(columns, 1)).squareRoot()).squareRoot()
            for c in 0..<columns { columnFactors[c * rank + d] = q[c * rank + d] * scale }
        }
    }

    /// The fitted value of a cell.
    public func predict(row: Int, column: Int) -> Double {
        var x = mean + rowBias[row] + columnBias[column]
        for d in 0..<rank { x += rowFactors[row * rank + d] * columnFactors[column * rank + d] }
        return x
    }
}

/// Normal equations of a small ridge regression on [1, f_0, ..., f_{k-1}].
struct RidgeSolver {
    let dimension: Int
    private var gram: [Double]
    private var rhs: [Double]
    private var row: [Double]

    init(dimension: Int) {
        self.dimension = dimension
        gram = [Double](repeating: 0, count: dimension * dimension)
        rhs = [Double](repeating: 0, count: dimension)
        row = [Double](repeating: 1, count: dimension)
    }

    mutating func reset() {
        for i in gram.indices { gram[i] = 0 }
        for i in rhs.indices { rhs[i] = 0 }
    }

    mutating func add(target: Double, features: (Int) -> Double) {
        row[0] = 1
        for d in 1..<max(dimension, 1) { row[d] = features(d - 1) }
        for p in 0..<dimension {
            rhs[p] += row[p] * target
            for q in 0...p { gram[p * dimension + q] += row[p] * row[q] }
        }
    }

    /// Solves (gram + lambda I) x = rhs.
    func solve(lambda: Double) -> [Double] {
        var m = gram
        var b = rhs
        let n = dimension
        for p in 0..<n {
            m[p * n + p] += lambda
            for q in 0..<p { m[q * n + p] = m[p * n + q] }
        }
        ThroughputEstimator.solveSPD(&m, &b, dim: n)
        return b
    }
}
