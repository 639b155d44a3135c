import Foundation
import Testing
@testable import BourseModel

private let withTenants = """
    name: t
    gpu_types: [v100]
    gateway: {address: "tcp://127.0.0.1:7700"}
    racks:
      - id: r0
        shard: "tcp://127.0.0.1:7710"
        agent: "tcp://127.0.0.1:7720"
        nodes:
          - {id: r0-n0, gpus: {v100: 4}}
    tenants:
      - {name: vision, weight: 2}
      - {name: nlp}

    """

@Suite("Cluster config tenants")
struct TenantConfigTests {
    @Test("tenants load with their weights (default 1); no tenants: list = none")
    func loads() throws {
        let config = try ClusterConfig.parse(yaml: withTenants, file: "t.yaml")
        #expect(config.tenants == [TenantSpec(name: "vision", weight: 2), TenantSpec(name: "nlp", weight: 1)])
        let none = try ClusterConfig.parse(
            yaml: withTenants.components(separatedBy: "tenants:")[0], file: "t.yaml")
        #expect(none.tenants.isEmpty)
    }

    @Test(
        "bad tenants are errors naming the field",
        arguments: [
            ("weight: 2}", "weight: 0}", "tenants[0].weight", "must be greater than 0"),
            ("weight: 2}", "weight: -1}", "tenants[0].weight", "must be greater than 0"),
            ("{name: nlp}", "{name: vision}", "tenants[1].name", "duplicate tenant 'vision'"),
            ("{name: nlp}", "{weight: 3}", "tenants[1].name", "missing required field 'name'"),
            ("{name: nlp}", "{name: nlp, wieght: 3}", "tenants[1].wieght", "unknown key"),
            ("  - {name: nlp}\n", "  - nlp\n", "tenants[1]", "mapping"),
        ])
    func errors(_ old: String, _ new: String, _ path: String, _ message: String) throws {
        #expect(withTenants.contains(old))
        do {
            _ = try ClusterConfig.parse(yaml: withTenants.replacingOccurrences(of: old, with: new), file: "t.yaml")
            Issue.record("expected an error for \(new)")
        } catch {
            let problem = try #require(error.errors.first { $0.path == path }, "\(error.errors)")
            #expect(problem.message.contains(message), "\(problem.message)")
            #expect(problem.line != nil)
            #expect("\(problem)".hasPrefix("t.yaml:"))
        }
    }
}
