import ArgumentParser

/// `bourse`: the one binary for users, operators and researchers.
@main
struct Bourse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bourse",
        abstract: "A distributed, heterogeneity-aware scheduler for deep-learning training jobs.",
        discussion: """
            Operators run one shard per rack, agents on the nodes and a gateway; users submit and \
            watch jobs through the gateway; researchers replay traces in the simulator.

            Start here:
              bourse config check cluster-configs/demo.yaml   validate a cluster and see its GPUs
              bourse up cluster-configs/demo.yaml             start a local multi-process cluster
              bourse sim --help                               compare policies on a trace
            """,
        subcommands: [
            ConfigCommand.self,
            // Live cluster
            Up.self, Down.self, Gateway.self, Shard.self, Agent.self,
            // Clients
            Submit.self, Jobs.self, Status.self, Cancel.self, Nodes.self, Members.self, Report.self,
            // Research
            Sim.self, TraceCommand.self, EstimatorCommand.self, Bench.self, Chaos.self, Audit.self,
            // Diagnostics
            Wire.self,
        ]
    )
}
