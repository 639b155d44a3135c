/// One job of a trace, as in Gavel's 10-field trace format (tab-separated, one job per line):
///
///     job_type  command  working_directory  num_steps_arg  needs_data_dir  total_steps
///     scale_factor  priority_weight  SLO  arrival_time_s
///
/// `jobType` is a model key of the throughput table without the scale factor, e.g.
/// "ResNet-18 (batch size 32)"; `totalSteps` is the work in steps at `scaleFactor` workers.
public struct TraceJob: Sendable, Hashable {
    public var jobType: String
    public var command: String
    public var workingDirectory: String
    public var numStepsArg: String
    public var needsDataDir: Bool
    public var totalSteps: Int
    /// Worker (GPU) count the job asks for; 1, 2, 4 or 8.
    public var scaleFactor: Int
    public var priorityWeight: Double
    /// Seconds; -1 (or any value <= 0) means none.
    public var slo: Double
    /// Arrival time in seconds from the start of the trace.
    public var arrivalTime: Double
    /// Elastic range of worker counts; nil = the policy's default (fixed at `scaleFactor` for
    /// baselines). Not part of Gavel's format.
    public var minWorkers: Int?
    public var maxWorkers: Int?
    /// Tenant (not part of Gavel's format); nil = the default tenant.
    public var tenant: String?

    public init(
        jobType: String, command: String = "", workingDirectory: String = "", numStepsArg: String = "--num_steps",
        needsDataDir: Bool = true, totalSteps: Int, scaleFactor: Int = 1, priorityWeight: Double = 1,
        slo: Double = -1, arrivalTime: Double = 0, minWorkers: Int? = nil, maxWorkers: Int? = nil,
        tenant: String? = nil
    ) {
        self.jobType = jobType
        self.command = command
        self.workingDirectory = workingDirectory
        self.numStepsArg = numStepsArg
        self.needsDataDir = needsDataDir
        self.totalSteps = totalSteps
        self.scaleFactor = scaleFactor
        self.priorityWeight = priorityWeight
        self.slo = slo
        self.arrivalTime = arrivalTime
        self.minWorkers = minWorkers
        self.maxWorkers = maxWorkers
        self.tenant = tenant
    }
}
