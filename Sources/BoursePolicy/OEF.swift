import BourseLP

// OEF's idea (Mo, Xu and Lau, Middleware'24): on heterogeneous GPUs, maximise the total
// normalised throughput subject to envy-freeness and sharing incentive across tenants, each
// tenant described by a speed-up vector over GPU types — one linear program. Our formulation
// (Bourse's own code; see docs/fairness.md):
//
//   variables   X[i][t] >= 0, Gavel's base constraints (sum_t X[i][t] <= 1, per-type capacity)
//   bundles     y_k[t] = sum_{i of tenant k} scale_i * X[i][t]       (GPUs of type t)
//   amounts     sum_t y_k[t] >= g_k, g = weighted max-min division of the GPUs among the
//               tenants, capped by each tenant's demand (sum of its jobs' scale factors)
//   envy-free   v_k(y_k) / g_k >= v_k(y_l) / g_l       for every pair of tenants k != l
//   sharing     v_k(y_k) >= value of k's weighted equal share of every type (capped by demand)
//   maximise    sum_i sum_t scale_i * X[i][t] * thr[i][t] / best_thr[i]
//
// v_k(y) = sum_t s_k[t] * y[t] with the tenant's speed-up vector s_k (`TenantFairness`).
//
// The non-cooperative mode never looks at the speed-up vectors across tenants: every tenant gets
// the same mix of types (g_k * n_t / N of each type t) and only its own jobs' throughputs decide
// how they use it. A tenant's allocation then depends on nothing it can misreport about speed
// (strategy-proof for speed-ups); amounts come from weighted max-min water-filling over demands,
// which is strategy-proof too (a tenant gains nothing by claiming GPUs its jobs cannot use).

/// OEF-style tenant-fair allocation on GLPK.
public struct OEFPolicy: AllocationPolicy {
    public enum Mode: String, Sendable, Hashable {
        /// Maximise total normalised throughput subject to envy-freeness and sharing incentive.
        case cooperative
        /// Speed-up-blind proportional mixes (strategy-proof), efficiency only inside tenants.
        case nonCooperative
    }

    /// What the policy observed of its own outputs (checked with `TenantFairness.check`, which
    /// is independent of the LP).
    public struct Audit: Sendable, Hashable {
        public var allocations = 0
        /// Largest envy and sharing-incentive shortfall of any allocation returned.
        public var maxEnvy = 0.0
        public var maxSharingIncentiveShortfall = 0.0
        /// Allocations that needed a relaxed program: amount rows dropped (level 1), or envy rows
        /// only (level 2, sharing incentive not guaranteed).
        public var relaxed = 0
        public var envyOnly = 0
    }

    public let mode: Mode
    public var lpMethod: LPMethod
    public private(set) var audit = Audit()
    /// Relative tolerance of the fairness checks that decide whether to re-solve with simplex.
    public static let tolerance = 1e-6

    public init(mode: Mode = .cooperative, lpMethod: LPMethod = .interiorPoint) {
        self.mode = mode
        self.lpMethod = lpMethod
    }

    public var name: String { mode == .cooperative ? "oef" : "oef-nc" }
    public var gavelName: String { "-" }

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        let views = TenantFairness.views(snapshot)
        let total = Double(snapshot.totalGPUs)
        let g = TenantFairness.entitledGPUs(total: total, demands: views.map(\.demand), weights: views.map(\.weight))
        var result: Allocation?
        var usedLevel = 0
        for level in 0..<3 {
            guard let lp = program(snapshot, views, g, level: level) else { continue }
            var candidate: Allocation?
            for method in lpMethod == .interiorPoint ? [LPMethod.interiorPoint, .simplex] : [.simplex] {
                guard let solution = try? lp.model.lp.solve(method: method) else { continue }
                let allocation = lp.model.allocation(snapshot, solution)
                let c = TenantFairness.check(allocation, snapshot)
                candidate = allocation
                if c.envy <= Self.tolerance && c.sharingIncentiveShortfall <= Self.tolerance { break }
            }
            if let candidate {
                result = candidate
                usedLevel = level
                break
            }
        }
        guard let result else { throw PolicyError("oef: no allocation found (not even with relaxed constraints)") }
        let c = TenantFairness.check(result, snapshot)
        audit.allocations += 1
        audit.maxEnvy = max(audit.maxEnvy, c.envy)
        audit.maxSharingIncentiveShortfall = max(audit.maxSharingIncentiveShortfall, c.sharingIncentiveShortfall)
        if usedLevel > 0 { audit.relaxed += 1 }
        if usedLevel > 1 { audit.envyOnly += 1 }
        return result
    }

    private struct Program {
        var model: AllocationLP
    }

    /// Level 0: the full program; 1: without the amount rows (envy-freeness, still measured at
    /// the entitled amounts, and sharing incentive hold; a tenant may get fewer or more GPUs than
    /// its entitlement); 2: envy rows only (always feasible: X = 0 satisfies them).
    private func program(_ snapshot: PolicySnapshot, _ views: [TenantFairness.View], _ g: [Double], level: Int)
        -> Program?
    {
        var base = AllocationLP(snapshot, .maximize)
        guard !base.jobIndices.isEmpty else { return Program(model: base) }
        let types = snapshot.workerTypes.count
        var position: [Int: Int] = [:]
        for (k, i) in base.jobIndices.enumerated() { position[i] = k }
        // Objective: normalised throughput in GPU units.
        for (k, i) in base.jobIndices.enumerated() {
            let job = snapshot.jobs[i]
            let speeds = TenantFairness.normalisedSpeeds(job)
            for t in 0..<types where speeds[t] > 0 {
                base.lp.setObjective(base.column[k][t], speeds[t] * Double(job.scaleFactor))
            }
        }
        // y_k[t] as terms, scaled by `factor`.
        func bundle(_ view: TenantFairness.View, _ t: Int, _ factor: Double) -> [LPTerm] {
            view.jobIndices.compactMap { i in
                guard let k = position[i] else { return nil }
                return LPTerm(base.column[k][t], Double(snapshot.jobs[i].scaleFactor) * factor)
            }
        }
        func valueTerms(of owner: TenantFairness.View, bundleOf view: TenantFairness.View, _ factor: Double) -> [LPTerm] {
            (0..<types).flatMap { t in owner.speedUp[t] > 0 ? bundle(view, t, owner.speedUp[t] * factor) : [] }
        }
        let total = Double(snapshot.totalGPUs)
        switch mode {
        case .nonCooperative:
            if level > 0 { return nil }
            for (k, view) in views.enumerated() where g[k] > 0 {
                for t in 0..<types {
                    base.lp.addRow(bundle(view, t, 1), .atMost(g[k] * Double(snapshot.capacity[t]) / total))
                }
            }
        case .cooperative:
            let weightSum = views.reduce(0) { $0 + $1.weight }
            for (k, view) in views.enumerated() {
                if level == 0 && g[k] > 0 {
                    let terms = (0..<types).flatMap { bundle(view, $0, 1) }
                    base.lp.addRow(terms, .atLeast(g[k] * (1 - 1e-9)))
                }
                if level <= 1 {
                    let floor = TenantFairness.sharingIncentiveFloor(
                        speedUp: view.speedUp, demand: view.demand, weight: view.weight, weightSum: weightSum,
                        capacity: snapshot.capacity)
                    if floor > 0 { base.lp.addRow(valueTerms(of: view, bundleOf: view, 1), .atLeast(floor * (1 - 1e-9))) }
                }
                for (l, other) in views.enumerated() where l != k && g[k] > 0 && g[l] > 0 {
                    // v_k(y_k) / g_k - v_k(y_l) / g_l >= 0
                    base.lp.addRow(
                        valueTerms(of: view, bundleOf: view, 1 / g[k]) + valueTerms(of: view, bundleOf: other, -1 / g[l]),
                        .atLeast(0))
                }
            }
        }
        return Program(model: base)
    }
}
