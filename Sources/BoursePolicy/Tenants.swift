// Tenants: who shares the cluster, with what weight, and how a tenant values GPUs.
//
// A tenant's *speed-up vector* s_k (OEF's model) says how much one GPU-second of each worker type
// is worth to it: the mean over its jobs of throughput on the type / the job's best throughput
// (1 on a job's fastest type, 0 where it cannot run). A bundle y (GPUs, or GPU-seconds, per type)
// is worth v_k(y) = sum_t s_k[t] * y[t] to tenant k.
//
// Envy between tenants compares bundles at amounts a_k: tenant k envies l by
//
//     envy(k, l) = max(0, a_k / a_l * v_k(y_l) - v_k(y_k)) / v_k(y_k)
//
// how much more k would get from l's mix of GPU types, scaled to k's amount. For one allocation
// (`check`) the amounts are the entitled GPUs; over a run (the simulator's `envy_max`) the
// GPU-seconds each tenant received. How *many* GPUs each tenant gets is the weighted max-min share (`entitledGPUs`),
// reported as share received vs entitled.

/// A tenant of a run: a name and a weight (> 0).
public struct Tenant: Sendable, Hashable {
    public var name: String
    public var weight: Double

    public init(name: String, weight: Double = 1) {
        self.name = name
        self.weight = weight
    }

    /// `count` equally weighted tenants named t0, t1, ...
    public static func equal(_ count: Int) -> [Tenant] { (0..<max(count, 1)).map { Tenant(name: "t\($0)") } }

    /// Checks a tenant list: at least one tenant, unique non-empty names, finite weights > 0.
    /// Errors name the field, e.g. `tenants[1].weight: must be > 0, got 0`.
    public static func validate(_ tenants: [Tenant], field: String = "tenants") throws {
        guard !tenants.isEmpty else { throw PolicyError("\(field): declare at least one tenant") }
        var seen = Set<String>()
        for (i, t) in tenants.enumerated() {
            if t.name.isEmpty { throw PolicyError("\(field)[\(i)].name: must not be empty") }
            if !seen.insert(t.name).inserted { throw PolicyError("\(field)[\(i)].name: duplicate tenant '\(t.name)'") }
            if !(t.weight > 0) || !t.weight.isFinite {
                throw PolicyError("\(field)[\(i)].weight: must be a finite number > 0, got \(t.weight)")
            }
        }
    }

    /// The index of the tenant named `name`, or an error naming the field and the known tenants.
    public static func index(of name: String, in tenants: [Tenant], field: String = "tenant") throws -> Int {
        guard let i = tenants.firstIndex(where: { $0.name == name }) else {
            throw PolicyError("\(field): unknown tenant '\(name)' (declared: \(tenants.map(\.name).joined(separator: ", ")))")
        }
        return i
    }

    /// Round-robin over the tenants in a seeded order: job i belongs to order[i % count].
    public static func roundRobin(jobs: Int, tenants: Int, seed: UInt64) -> [Int] {
        let n = max(tenants, 1)
        var order = Array(0..<n)
        // Fisher-Yates with SplitMix64 (deterministic on every platform).
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &+ 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        return (0..<jobs).map { order[$0 % n] }
    }
}

/// Tenant-level views of a snapshot and of allocations (pure functions).
public enum TenantFairness {
    /// Normalised per-GPU speed of a job on each type: throughput / its best throughput.
    public static func normalisedSpeeds(_ job: PolicyJob) -> [Double] {
        let best = job.throughputs.max() ?? 0
        guard best > 0 else { return job.throughputs.map { _ in 0 } }
        return job.throughputs.map { max(0, $0) / best }
    }

    /// The speed-up vector of a tenant: the mean of its jobs' normalised speeds.
    public static func speedUp(of jobs: [PolicyJob], types: Int) -> [Double] {
        var s = Array(repeating: 0.0, count: types)
        guard !jobs.isEmpty else { return s }
        for job in jobs {
            let n = normalisedSpeeds(job)
            for t in 0..<types where t < n.count { s[t] += n[t] }
        }
        return s.map { $0 / Double(jobs.count) }
    }

    /// v(y) = sum_t s[t] * y[t].
    public static func value(_ s: [Double], _ y: [Double]) -> Double {
        var v = 0.0
        for t in s.indices where t < y.count { v += s[t] * y[t] }
        return v
    }

    /// Weighted max-min fair division of `total` GPUs among tenants with `demands` (GPUs they can
    /// use at once) and `weights`: water-filling, every tenant gets min(demand, weight * level).
    public static func entitledGPUs(total: Double, demands: [Double], weights: [Double]) -> [Double] {
        var share = Array(repeating: 0.0, count: demands.count)
        var open = Set(demands.indices.filter { demands[$0] > 0 })
        var left = total
        while !open.isEmpty && left > 1e-12 {
            let weightSum = open.reduce(0.0) { $0 + weights[$1] }
            let level = left / weightSum
            let capped = open.filter { demands[$0] - share[$0] <= weights[$0] * level + 1e-12 }
            if capped.isEmpty {
                for k in open { share[k] += weights[k] * level }
                left = 0
            } else {
                for k in capped {
                    left -= demands[k] - share[k]
                    share[k] = demands[k]
                    open.remove(k)
                }
            }
        }
        return share
    }

    /// Tenant k's sharing-incentive floor: the value of its weighted equal share of every type
    /// (w_k / W of each type), scaled down to the GPUs it can use.
    public static func sharingIncentiveFloor(
        speedUp s: [Double], demand: Double, weight: Double, weightSum: Double, capacity: [Int]
    ) -> Double {
        let total = Double(capacity.reduce(0, +))
        guard total > 0, weightSum > 0 else { return 0 }
        let gpus = min(demand, weight / weightSum * total)
        return gpus / total * value(s, capacity.map(Double.init))
    }

    /// Tenants with jobs in the snapshot, in tenant order, with their jobs, weight, demand and
    /// speed-up vector.
    public struct View: Sendable, Hashable {
        public var tenant: Int
        public var weight: Double
        public var jobIndices: [Int]
        public var demand: Double
        public var speedUp: [Double]
    }

    public static func views(_ snapshot: PolicySnapshot) -> [View] {
        var byTenant: [Int: [Int]] = [:]
        for (i, job) in snapshot.jobs.enumerated() where job.throughputs.contains(where: { $0 > 0 }) {
            byTenant[job.tenant, default: []].append(i)
        }
        return byTenant.keys.sorted().map { k in
            let idx = byTenant[k]!
            let jobs = idx.map { snapshot.jobs[$0] }
            return View(
                tenant: k, weight: jobs[0].tenantWeight, jobIndices: idx,
                demand: Double(jobs.reduce(0) { $0 + $1.scaleFactor }),
                speedUp: speedUp(of: jobs, types: snapshot.workerTypes.count))
        }
    }

    /// GPUs per type each tenant's jobs hold on average under `allocation` (sum of scale * X).
    public static func bundles(_ allocation: Allocation, _ snapshot: PolicySnapshot, _ views: [View]) -> [[Double]] {
        views.map { view in
            var y = Array(repeating: 0.0, count: snapshot.workerTypes.count)
            for i in view.jobIndices {
                let job = snapshot.jobs[i]
                for t in y.indices { y[t] += allocation.fraction(job: job.id, type: t) * Double(job.scaleFactor) }
            }
            return y
        }
    }

    /// Largest relative envy between two tenants (see the top of this file), 0 with < 2 tenants.
    /// `amounts` are the amounts bundles are compared at (default: each bundle's own size).
    public static func maxEnvy(speedUps: [[Double]], bundles: [[Double]], amounts: [Double]? = nil) -> Double {
        let sizes = amounts ?? bundles.map { $0.reduce(0, +) }
        var worst = 0.0
        for k in bundles.indices {
            let own = value(speedUps[k], bundles[k])
            let amount = sizes[k]
            guard own > 1e-12, amount > 1e-12 else { continue }
            for l in bundles.indices where l != k {
                let other = sizes[l]
                guard other > 1e-12 else { continue }
                let envy = (amount / other * value(speedUps[k], bundles[l]) - own) / own
                worst = max(worst, envy)
            }
        }
        return worst
    }

    /// How an allocation fares on a snapshot: the largest envy, and the largest relative shortfall
    /// of a tenant's value below its sharing-incentive floor (0 = satisfied). Bundles are
    /// compared at the tenants' entitled amounts (`entitledGPUs`: weighted max-min over demands),
    /// so a tenant envies another when the other's mix, scaled to its own entitlement, is worth
    /// more to it: with weights, (w_k / w_l) x the other's bundle when neither is demand-capped.
    public struct Check: Sendable, Hashable {
        public var envy: Double
        public var sharingIncentiveShortfall: Double
    }

    public static func check(_ allocation: Allocation, _ snapshot: PolicySnapshot) -> Check {
        let v = views(snapshot)
        let y = bundles(allocation, snapshot, v)
        let weightSum = v.reduce(0) { $0 + $1.weight }
        var shortfall = 0.0
        for (k, view) in v.enumerated() {
            let floor = sharingIncentiveFloor(
                speedUp: view.speedUp, demand: view.demand, weight: view.weight, weightSum: weightSum,
                capacity: snapshot.capacity)
            guard floor > 1e-12 else { continue }
            shortfall = max(shortfall, (floor - value(view.speedUp, y[k])) / floor)
        }
        let g = entitledGPUs(
            total: Double(snapshot.totalGPUs), demands: v.map(\.demand), weights: v.map(\.weight))
        return Check(envy: maxEnvy(speedUps: v.map(\.speedUp), bundles: y, amounts: g), sharingIncentiveShortfall: shortfall)
    }
}
