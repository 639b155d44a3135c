import BourseLP

/// Latency-ratio fairness after Hops (SoCC'24), as a round planner (Bourse's own code; see
/// docs/fairness.md):
///
/// 1. **Latency ratio.** LR_j = waiting time / expected run time without waiting (total work at
///    the job's best speed on a type with room for it). Waiting time = time since arrival - time
///    the job ran (the planner is told with `recordExecution`).
/// 2. **Priority** = weight_j * (1 + LR_j) (the weight carries the tenant's share), ties by
///    arrival.
/// 3. **Service window**: jobs in priority order until their GPUs reach `windowFactor` x the
///    cluster's GPUs.
/// 4. **Configurations** per window job: a GPU type, packed on one server of a server class
///    (servers of one type and size; re-planned every round, they are interchangeable) or spread
///    over servers. A job is *highly communication-sensitive* when
///    its spread speed is below `sensitivityThreshold` x its packed speed on its best type; such
///    a job only runs packed on one node (unless no server of the cluster can hold it at all,
///    then it may spread, or it would never run).
/// 5. **Placement program**: maximise sum_j priority_j * speed_jc / best_j * x_jc (a small bonus
///    for keeping last round's configuration) with x binary, one configuration per job, the GPUs
///    of each server class and each type — an integer program solved by GLPK (`IntegerProgram`).
///    Packing a class's jobs into its servers is then exact by first-fit decreasing when the
///    scale factors and the server size are powers of two (Gavel's 1, 2, 4, 8 on 1/2/4/8-GPU
///    servers); otherwise a job that does not fit is left out of the round.
/// 6. **Fragment filling**: GPUs still idle go to low-sensitivity jobs from beyond the window, in
///    priority order, on the fastest type with room.
/// 7. Concrete GPUs: packed jobs on their server, others keep their previous GPUs when free,
///    then take the fullest servers first (large holes stay free for packed jobs).
public struct HopsLRFPlanner: RoundPlanner {
    public struct Parameters: Sendable, Hashable {
        /// The service window holds jobs whose GPUs sum to this many times the cluster's GPUs.
        public var windowFactor: Double = 1.0
        /// Spread speed / packed speed below which a job is highly communication-sensitive.
        public var sensitivityThreshold: Double = 0.75
        /// Objective bonus (relative) for keeping last round's configuration.
        public var keepBonus: Double = 0.05
        public var name = "hops-lrf"

        public init() {}
    }

    public let pool: WorkerPool
    public let parameters: Parameters
    public private(set) var allocationCount = 0
    /// Integer programs that failed and fell back to the greedy order (should stay 0).
    public private(set) var greedyFallbacks = 0
    private var order: [Int] = []
    private var active = Set<Int>()
    private var ranSeconds: [Int: Double] = [:]
    private var totalWork: [Int: Double] = [:]
    private var previous: [Int: (type: Int, workers: [Int], server: Int?)] = [:]
    private let serverOfWorker: [Int: Int]
    /// Server classes: servers of one type and one size (>= 2 GPUs), for packed configurations.
    private let classes: [(type: Int, size: Int, servers: [Int])]
    /// (type, server) -> its class.
    private let classOfServer: [Int: [Int: Int]]

    public init(pool: WorkerPool, parameters: Parameters = Parameters()) {
        self.pool = pool
        self.parameters = parameters
        self.serverOfWorker = pool.serverIndexOfWorker
        var classes: [(type: Int, size: Int, servers: [Int])] = []
        var classOfServer: [Int: [Int: Int]] = [:]
        for c in pool.serverClasses where c.size >= 2 {
            for s in c.servers { classOfServer[c.typeIndex, default: [:]][s] = classes.count }
            classes.append((c.typeIndex, c.size, c.servers))
        }
        self.classes = classes
        self.classOfServer = classOfServer
    }

    public var name: String { parameters.name }
    public var gavelName: String { "-" }
    public var activeJobs: [Int] { order }

    public mutating func addJob(_ id: Int) {
        precondition(!active.contains(id), "job \(id) added twice")
        active.insert(id)
        order.append(id)
        ranSeconds[id] = 0
    }

    public mutating func removeJob(_ id: Int) {
        guard active.remove(id) != nil else { return }
        order.removeAll { $0 == id }
        ranSeconds[id] = nil
        totalWork[id] = nil
        previous[id] = nil
    }

    public mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double) {
        guard active.contains(id) else { return }
        ranSeconds[id, default: 0] += seconds
    }

    public mutating func requestAllocationReset() {}

    /// Speeds of a job on each type, packed on one server and spread.
    func speeds(_ job: PolicyJob) -> (packed: [Double], spread: [Double]) {
        if let option = job.elastic?.options.first(where: { $0.workers == job.scaleFactor }) {
            return (option.packed, option.spread)
        }
        return (job.throughputs, job.throughputs)
    }

    /// The latency ratio of `job` now (waiting time / run time alone at its best speed).
    public func latencyRatio(_ job: PolicyJob) -> Double {
        let best = bestSpeed(job)
        guard best > 0 else { return 0 }
        let work = totalWork[job.id] ?? job.stepsRemaining
        let wait = max(0, job.timeSinceArrival - (ranSeconds[job.id] ?? 0))
        return wait / max(work / best, 1e-9)
    }

    func bestSpeed(_ job: PolicyJob) -> Double {
        let (packed, spread) = speeds(job)
        let capacity = pool.capacity
        let maxPerServer = pool.maxGPUsPerServer
        var best = 0.0
        for t in pool.types.indices where capacity[t] >= job.scaleFactor {
            best = max(best, job.scaleFactor <= maxPerServer[t] ? packed[t] : spread[t])
        }
        return best
    }

    /// True when the job's spread speed is far below its packed speed (on its best packed type).
    public func isHighlySensitive(_ job: PolicyJob) -> Bool {
        guard job.scaleFactor > 1 else { return false }
        let (packed, spread) = speeds(job)
        guard let t = packed.indices.max(by: { packed[$0] < packed[$1] }), packed[t] > 0 else { return false }
        return spread[t] < parameters.sensitivityThreshold * packed[t]
    }

    private struct Config {
        var job: Int  // index into the window
        var type: Int
        var cls: Int?  // server class when packed; nil = spread (or a 1-GPU job anywhere on the type)
        var speed: Double
    }

    public mutating func planRound(now: Double, jobs: [PolicyJob]) throws -> [RoundAssignment] {
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        var ordered: [PolicyJob] = []
        for id in order {
            guard let job = byID[id] else { throw PolicyError("planRound: active job \(id) missing from the snapshot") }
            if totalWork[id] == nil { totalWork[id] = job.stepsRemaining }
            ordered.append(job)
        }
        allocationCount += 1
        let capacity = pool.capacity
        let totalGPUs = capacity.reduce(0, +)
        let anyServer = pool.maxGPUsPerServer.max() ?? 0

        // (1-2) Priorities.
        var priority: [Int: Double] = [:]
        for job in ordered { priority[job.id] = job.priorityWeight * (1 + latencyRatio(job)) }
        let queue = ordered.enumerated().sorted { a, b in
            let pa = priority[a.element.id]!
            let pb = priority[b.element.id]!
            return pa != pb ? pa > pb : a.offset < b.offset
        }.map(\.element).filter { bestSpeed($0) > 0 && $0.stepsRemaining > 0 }

        // (3) Service window.
        var window: [PolicyJob] = []
        var windowGPUs = 0
        let limit = parameters.windowFactor * Double(totalGPUs)
        for job in queue where Double(windowGPUs) < limit {
            window.append(job)
            windowGPUs += job.scaleFactor
        }

        // (4) Configurations.
        var configs: [Config] = []
        for (j, job) in window.enumerated() {
            let (packed, spread) = speeds(job)
            let sensitive = isHighlySensitive(job) && job.scaleFactor <= anyServer
            for t in pool.types.indices where capacity[t] >= job.scaleFactor {
                if job.scaleFactor > 1 && packed[t] > 0 {
                    for (c, cls) in classes.enumerated() where cls.type == t && cls.size >= job.scaleFactor {
                        configs.append(Config(job: j, type: t, cls: c, speed: packed[t]))
                    }
                }
                let anywhere = job.scaleFactor == 1 ? packed[t] : spread[t]
                if anywhere > 0 && (!sensitive || job.scaleFactor == 1) {
                    configs.append(Config(job: j, type: t, cls: nil, speed: anywhere))
                }
            }
        }

        // (5) The placement program.
        var chosen: [Int: Config] = [:]  // window index -> configuration
        if !configs.isEmpty {
            var ip = IntegerProgram(.maximize)
            var columns: [Int] = []
            for c in configs {
                let job = window[c.job]
                var coefficient = priority[job.id]! * c.speed / bestSpeed(job)
                if let prev = previous[job.id], prev.type == c.type,
                    prev.server.flatMap({ classOfServer[prev.type]?[$0] }) == c.cls
                {
                    coefficient *= 1 + parameters.keepBonus
                }
                columns.append(ip.addBinaryColumn(objective: coefficient))
            }
            var perJob: [[LPTerm]] = Array(repeating: [], count: window.count)
            var perType: [[LPTerm]] = Array(repeating: [], count: pool.types.count)
            var perClass: [[LPTerm]] = Array(repeating: [], count: classes.count)
            for (k, c) in configs.enumerated() {
                let scale = Double(window[c.job].scaleFactor)
                perJob[c.job].append(LPTerm(columns[k], 1))
                perType[c.type].append(LPTerm(columns[k], scale))
                if let cls = c.cls { perClass[cls].append(LPTerm(columns[k], scale)) }
            }
            for terms in perJob where !terms.isEmpty { ip.addRow(terms, .atMost(1)) }
            for (t, terms) in perType.enumerated() where !terms.isEmpty { ip.addRow(terms, .atMost(Double(capacity[t]))) }
            for (cls, terms) in perClass.enumerated() where !terms.isEmpty {
                ip.addRow(terms, .atMost(Double(classes[cls].size * classes[cls].servers.count)))
            }
            if let solution = try? ip.solve() {
                for (k, c) in configs.enumerated() where solution.values[columns[k]] > 0.5 { chosen[c.job] = c }
            } else {
                greedyFallbacks += 1
                chosen = greedy(window: window, configs: configs)
            }
        }

        // Free GPUs per type after the program's choices.
        var freeOfType = capacity
        for (j, c) in chosen { freeOfType[c.type] -= window[j].scaleFactor }

        // (6) Fragment filling from beyond the window: low-sensitivity jobs, fastest type with room.
        var fillers: [(job: PolicyJob, config: Config)] = []
        for job in queue.dropFirst(window.count) where !isHighlySensitive(job) || job.scaleFactor > anyServer {
            let (packed, spread) = speeds(job)
            var best: (t: Int, speed: Double)?
            for t in pool.types.indices where freeOfType[t] >= job.scaleFactor {
                let speed = job.scaleFactor == 1 ? packed[t] : spread[t]
                if speed > 0 && speed > (best?.speed ?? 0) { best = (t, speed) }
            }
            guard let best else { continue }
            freeOfType[best.t] -= job.scaleFactor
            fillers.append((job, Config(job: -1, type: best.t, cls: nil, speed: best.speed)))
        }

        // (7) Concrete GPUs.
        var plan: [(job: PolicyJob, config: Config)] = chosen.keys.sorted().map { (window[$0], chosen[$0]!) } + fillers
        plan.sort { a, b in
            // Packed first, then larger jobs, then by id.
            if (a.config.cls != nil) != (b.config.cls != nil) { return a.config.cls != nil }
            if a.job.scaleFactor != b.job.scaleFactor { return a.job.scaleFactor > b.job.scaleFactor }
            return a.job.id < b.job.id
        }
        var free: [[Set<Int>]] = pool.servers.map { $0.map(Set.init) }
        var workersOf: [Int: [Int]] = [:]
        var packedServer: [Int: Int] = [:]
        // Packed jobs, class by class: first those that can keep last round's GPUs, then the
        // others by decreasing size, best fit. If one does not fit, re-pack the whole class by
        // first-fit decreasing without keeping (exact for power-of-two sizes); a job that still
        // does not fit sits this round out.
        for cls in classes.indices {
            let members = plan.filter { $0.config.cls == cls }.map(\.job)
            guard !members.isEmpty else { continue }
            let t = classes[cls].type
            let servers = classes[cls].servers
            func pack(keeping: Bool) -> (placed: [Int: (Int, [Int])], free: [Int: Set<Int>], misfits: [Int]) {
                var room = Dictionary(uniqueKeysWithValues: servers.map { ($0, free[t][$0]) })
                var placed: [Int: (Int, [Int])] = [:]
                var misfits: [Int] = []
                if keeping {
                    for job in members {
                        guard let prev = previous[job.id], prev.type == t, let s = prev.server, room[s] != nil,
                            prev.workers.count == job.scaleFactor, prev.workers.allSatisfy(room[s]!.contains)
                        else { continue }
                        room[s]!.subtract(prev.workers)
                        placed[job.id] = (s, prev.workers)
                    }
                }
                for job in members where placed[job.id] == nil {
                    let fits = servers.filter { room[$0]!.count >= job.scaleFactor }
                    guard let s = fits.min(by: { (room[$0]!.count, $0) < (room[$1]!.count, $1) }) else {
                        misfits.append(job.id)
                        continue
                    }
                    let mine = Array(room[s]!.sorted().prefix(job.scaleFactor))
                    room[s]!.subtract(mine)
                    placed[job.id] = (s, mine)
                }
                return (placed, room, misfits)
            }
            var result = pack(keeping: true)
            if !result.misfits.isEmpty { result = pack(keeping: false) }
            for (s, room) in result.free { free[t][s] = room }
            for (id, (s, mine)) in result.placed {
                workersOf[id] = mine
                packedServer[id] = s
            }
        }
        plan.removeAll { $0.config.cls != nil && workersOf[$0.job.id] == nil }
        // The others keep their previous GPUs when all are still free.
        for (job, c) in plan where c.cls == nil {
            guard let prev = previous[job.id], prev.type == c.type, prev.workers.count == job.scaleFactor,
                prev.workers.allSatisfy({ free[c.type][serverOfWorker[$0]!].contains($0) })
            else { continue }
            for w in prev.workers { free[c.type][serverOfWorker[w]!].remove(w) }
            workersOf[job.id] = prev.workers
        }
        // Then take GPUs from the fullest servers first (fewest free GPUs).
        for (job, c) in plan where c.cls == nil && workersOf[job.id] == nil {
            let t = c.type
            var mine: [Int] = []
            // A single server that holds the job whole, best fit.
            let fits = free[t].indices.filter { free[t][$0].count >= job.scaleFactor }
            if let s = fits.min(by: { (free[t][$0].count, $0) < (free[t][$1].count, $1) }) {
                mine = Array(free[t][s].sorted().prefix(job.scaleFactor))
                free[t][s].subtract(mine)
            } else {
                let servers = free[t].indices.filter { !free[t][$0].isEmpty }
                    .sorted { (free[t][$0].count, $0) < (free[t][$1].count, $1) }
                for s in servers where mine.count < job.scaleFactor {
                    let take = Array(free[t][s].sorted().prefix(job.scaleFactor - mine.count))
                    free[t][s].subtract(take)
                    mine += take
                }
            }
            guard mine.count == job.scaleFactor else {
                throw PolicyError("hops-lrf: could not find \(job.scaleFactor) free \(pool.types[t]) GPUs for job \(job.id)")
            }
            workersOf[job.id] = mine
        }

        var assignments: [RoundAssignment] = []
        var next: [Int: (type: Int, workers: [Int], server: Int?)] = [:]
        for (job, c) in plan {
            let workers = workersOf[job.id]!
            let kept = previous[job.id].map { $0.type == c.type && Set($0.workers) == Set(workers) } ?? false
            assignments.append(RoundAssignment(jobID: job.id, typeIndex: c.type, workers: workers, keepsPreviousWorkers: kept))
            let servers = Set(workers.map { serverOfWorker[$0]! })
            next[job.id] = (c.type, workers, packedServer[job.id] ?? (servers.count == 1 && job.scaleFactor > 1 ? servers.first : nil))
        }
        previous = next
        assignments.sort { $0.jobID < $1.jobID }
        return assignments
    }

    /// Window jobs in priority order, each on its best configuration that still fits.
    private func greedy(window: [PolicyJob], configs: [Config]) -> [Int: Config] {
        var freeOfType = pool.capacity
        var freeInClass = classes.map { $0.size * $0.servers.count }
        var chosen: [Int: Config] = [:]
        for j in window.indices {
            let scale = window[j].scaleFactor
            let fitting = configs.filter { c in
                c.job == j && freeOfType[c.type] >= scale && (c.cls.map { freeInClass[$0] >= scale } ?? true)
            }
            guard let c = fitting.max(by: { $0.speed < $1.speed }) else { continue }
            chosen[j] = c
            freeOfType[c.type] -= scale
            if let cls = c.cls { freeInClass[cls] -= scale }
        }
        return chosen
    }
}
