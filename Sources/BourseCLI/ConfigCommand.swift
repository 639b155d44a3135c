import ArgumentParser
import BourseModel
import Foundation

/// `bourse config ...`: work with cluster config files. A command group so later subcommands
/// (e.g. printing a normalised config, diffing two configs) slot in next to `check`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Validate and summarise cluster configs.",
        discussion: """
            A cluster config is a YAML file describing GPU types, racks of nodes, one scheduler shard \
            per rack, the gateway, and the round and clock settings. Shipped examples live in \
            cluster-configs/ (demo.yaml, gavel-*.yaml, large-16k.yaml).
            """,
        subcommands: [Check.self]
    )
}

extension ConfigCommand {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Check cluster config files and print a summary of each.",
            discussion: """
                Every problem is reported as FILE:LINE:COLUMN: FIELD.PATH: PROBLEM, on standard error. \
                Exit status is 0 when every file is valid, 1 otherwise.

                Schema (see cluster-configs/demo.yaml for a complete, commented example):

                  name: demo              # required
                  round_seconds: 360      # round length, > 0 (default 360)
                  speedup: 60             # cluster clock / wall clock, > 0 (default 1)
                  restart_seconds: 30     # checkpoint-restart delay, >= 0 (default 30)
                  gpu_types:              # required; names as in the throughput table
                    - {name: v100, memory_gib: 16}
                    - {name: k80, memory_gib: 12}
                  network:                # optional; these are the defaults
                    node:  {bandwidth_gbps: 300, latency_us: 2}
                    rack:  {bandwidth_gbps: 100, latency_us: 5}
                    spine: {bandwidth_gbps: 25,  latency_us: 20}
                  gateway: {address: "tcp://127.0.0.1:7700"}
                  racks:                  # required; order = shard failover order
                    - id: r0
                      shard: "tcp://127.0.0.1:7710"
                      agent: "tcp://127.0.0.1:7720"
                      nodes:
                        - {id: r0-n0, gpus: {v100: 4}}
                        # a node group: r0-n1, r0-n2, r0-n3
                        - {prefix: r0-n, from: 1, count: 3, gpus: {k80: 4}}

                Addresses are tcp://HOST:PORT, ipc://PATH or inproc://NAME, one per \
                endpoint. Node ids are unique over the cluster, rack ids over the racks.
                """
        )

        @Argument(help: ArgumentHelp("Cluster config files to check.", valueName: "file"))
        var files: [String]

        @Flag(help: "Print the summaries (and problems) as JSON on standard output.")
        var json = false

        @Flag(name: .shortAndLong, help: "Print nothing for valid files; only problems.")
        var quiet = false

        func run() throws {
            var results: [FileResult] = []
            for file in files {
                do {
                    let config = try ClusterConfig.load(path: file)
                    results.append(FileResult(file: file, valid: true, summary: config.summaryInfo, errors: nil))
                    if !json && !quiet {
                        if !results.dropLast().isEmpty { print("") }
                        print("\(file): valid")
                        print(config.summary)
                    }
                } catch {
                    results.append(FileResult(file: file, valid: false, summary: nil, errors: error.errors))
                    Output.error(error.description)
                }
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                let data = try encoder.encode(results)
                print(String(decoding: data, as: UTF8.self))
            }
            let invalid = results.filter { !$0.valid }.count
            if invalid > 0 {
                if files.count > 1 { Output.error("\(invalid) of \(files.count) config files are invalid") }
                throw ExitCode.failure
            }
        }
    }

    /// One file's outcome in `--json` output.
    struct FileResult: Encodable {
        var file: String
        var valid: Bool
        var summary: ClusterSummary?
        var errors: [ConfigError]?
    }
}

