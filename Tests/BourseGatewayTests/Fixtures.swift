import BourseGateway
import BourseWire
import Foundation

/// A catalog shaped like the shipped table's: 1, 2, 4, 8 workers for most models.
let testCatalog = JobCatalog(scaleFactors: [
    "ResNet-18 (batch size 32)": [1, 2, 4, 8],
    "Transformer (batch size 64)": [1, 2, 4, 8],
    "CycleGAN": [1],
])

let testSettings = GatewaySettings(shards: ["shard-r0", "shard-r1", "shard-r2"], catalog: testCatalog)

func spec(
    _ type: String = "ResNet-18 (batch size 32)", steps: UInt64 = 1000, workers: UInt32 = 2, min: UInt32 = 0,
    max: UInt32 = 0, tenant: String = ""
) -> JobSpec {
    JobSpec(jobType: type, totalSteps: steps, workers: workers, minWorkers: min, maxWorkers: max, tenant: tenant)
}

func submit(_ spec: JobSpec?, key: String = "") -> Envelope {
    Envelope(senderID: "cli", body: .submitJob(SubmitJob(spec: spec, idempotencyKey: key)))
}

func transition(
    _ job: String, _ state: JobState, id: UInt64, from shard: String = "shard-r0", at: Double = 100,
    steps: Double = 0, reason: String = ""
) -> Envelope {
    Envelope(
        senderID: shard,
        body: .jobTransition(JobTransition(
            jobID: job, state: state, at: at, stepsDone: steps, checkpointSteps: steps, reason: reason,
            transitionID: id)))
}

/// A fresh path for a store file, in a directory removed by `cleanup`.
struct TempDirectory: ~Copyable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-gw-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

extension Envelope.Body {
    var submitAck: SubmitAck? { if case .submitAck(let a) = self { a } else { nil } }
    var errorMessage: WireErrorMessage? { if case .error(let e) = self { e } else { nil } }
    var jobStatus: JobStatus? { if case .jobStatus(let s) = self { s } else { nil } }
    var cancelAck: CancelAck? { if case .cancelAck(let c) = self { c } else { nil } }
    var listJobs: ListJobsReply? { if case .listJobsReply(let l) = self { l } else { nil } }
}
