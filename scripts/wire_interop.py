#!/usr/bin/python3
"""Cross-checks the Bourse wire format against Google's Python protobuf.

Used by Tests/BourseWireTests/PythonInteropTests.swift. Needs python3-protobuf and code generated
with `protoc --python_out=GEN_DIR proto/bourse.proto`.

  wire_interop.py GEN_DIR decode   stdin: hex frames, one per line
                                   stdout: JSON list of {"fields": {path: text}, "reencoded": hex}
  wire_interop.py GEN_DIR encode   stdout: hex frames built here, one per line (see python_envelopes)

"fields" flattens a decoded Envelope into path -> text: every scalar field (defaults included),
"{}" for every present sub-message, "name[i]" for repeated elements. Bytes are hex, bools
true/false, doubles repr() (exact), enums and integers decimal.
"""
import json
import sys


def flatten(msg, prefix="", out=None):
    out = {} if out is None else out
    for field in msg.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and msg.WhichOneof(oneof.name) != field.name:
            continue
        path = f"{prefix}.{field.name}" if prefix else field.name
        value = getattr(msg, field.name)
        if field.label == field.LABEL_REPEATED:
            for i, element in enumerate(value):
                emit(field, f"{path}[{i}]", element, out)
        elif field.type != field.TYPE_MESSAGE or msg.HasField(field.name):
            emit(field, path, value, out)
    return out


def emit(field, path, value, out):
    if field.type == field.TYPE_MESSAGE:
        out[path] = "{}"
        flatten(value, path, out)
    elif field.type == field.TYPE_BYTES:
        out[path] = value.hex()
    elif field.type == field.TYPE_BOOL:
        out[path] = "true" if value else "false"
    elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
        out[path] = repr(value)
    elif field.type == field.TYPE_STRING:
        out[path] = value
    else:  # integers and enums (open: unknown values stay plain ints)
        out[path] = str(int(value))


def python_envelopes(pb):
    """A fixed set; PythonInteropTests.expectedFromPython holds the same values in Swift."""
    E = pb.Envelope
    yield E(sender_id="client-1", sequence=7, hmac=b"\x01\x02\xff", sent_at=12.5,
            submit_job=pb.SubmitJob(
                spec=pb.JobSpec(job_type="ResNet-50 (batch size 64)", total_steps=2**40, workers=8,
                                min_workers=4, max_workers=16, tenant="acme", weight=1.5,
                                arrival_time=30.25, slo=-1.0, name="exp ü"),
                idempotency_key="k-1", tenant_token="t"))
    yield E(sender_id="gateway", sequence=8, list_jobs_reply=pb.ListJobsReply(jobs=[
        pb.JobStatus(job_id="job-1", spec=pb.JobSpec(job_type="A3C", total_steps=10, workers=1),
                     state=pb.JOB_STATE_RUNNING, steps_done=3.5, restarts=2,
                     placement=pb.Placement(gpu_type="K80", gpu_ids=["g0", "g1"], shard_id="shard-r0")),
        pb.JobStatus(job_id="job-2", state=42, reason="from the future"),
    ]))
    yield E(sender_id="shard-r0", sequence=2**64 - 1, ping=pb.Ping(
        probe_id=2**64 - 1,
        updates=[pb.MemberUpdate(member_id="a", address="tcp://a:1", status=pb.MEMBER_STATUS_ALIVE,
                                 incarnation=3, role=pb.MEMBER_ROLE_SHARD),
                 pb.MemberUpdate(member_id="b", status=pb.MEMBER_STATUS_DEAD, role=pb.MEMBER_ROLE_AGENT)],
        digests=[pb.ShardDigest(shard_id="shard-r0", racks=["r0", "r1"],
                                asks=[pb.AskPrice(gpu_type="V100", ask=2.25, free_gpus=3)],
                                queued_jobs=4, round=5, version=6)]))
    yield E(sender_id="agent-1", sent_at=float("inf"), agent_heartbeat=pb.AgentHeartbeat(
        agent_id="agent-1", at=99.5,
        nodes=[pb.NodeReport(node_id="n1", rack="r0", health=pb.NODE_HEALTH_DEGRADED, gpus=[
            pb.Gpu(gpu_id="g0", gpu_type="V100", healthy=True, job_id="job-1"),
            pb.Gpu(gpu_id="g1", gpu_type="V100", healthy=False)])],
        jobs=[pb.JobProgress(job_id="job-1", steps_done=10, checkpoint_steps=8, steps_per_second=1.25,
                             workers=1, gpu_type="V100")]))
    yield E(list_jobs_request=pb.ListJobsRequest(tenant_token="t", states=[pb.JOB_STATE_PENDING, 99, -3]))
    yield E(error=pb.Error(code=pb.ERROR_CODE_UNAUTHORIZED, message="bad hmac", field="hmac"))
    yield E(submit_job=pb.SubmitJob())  # present but empty body, absent spec
    yield E(sender_id="nobody", sequence=1)  # no body: Swift must refuse it (missingBody)


def main():
    gen_dir, mode = sys.argv[1], sys.argv[2]
    sys.path.insert(0, gen_dir)
    import bourse_pb2 as pb

    if mode == "decode":
        results = []
        for line in sys.stdin.read().split():
            envelope = pb.Envelope.FromString(bytes.fromhex(line))
            results.append({"fields": flatten(envelope), "reencoded": envelope.SerializeToString().hex()})
        json.dump(results, sys.stdout)
    elif mode == "encode":
        for envelope in python_envelopes(pb):
            print(envelope.SerializeToString().hex())
    else:
        sys.exit(f"unknown mode {mode!r}: use decode or encode")


if __name__ == "__main__":
    main()
