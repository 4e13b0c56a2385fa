"""Backups to S3 through s3fs, against a local S3 server: moto in server mode on 127.0.0.1 (its in-process
decorators do not reach s3fs). Fake credentials and the endpoint come from the environment, as in real use."""

from __future__ import annotations

import pytest
from backup_root import build_root

from live.backup import ops
from live.backup.target import open_target
from research.cli import main as cli

BUCKET = "navale-backups"


@pytest.fixture(scope="module")
def s3_endpoint():
    try:
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start is a skip with its reason
        pytest.skip(f"moto's S3 server cannot start on 127.0.0.1: {exc}")
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    import boto3

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "NAVALE_BACKUP_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_s3_round_trip_incremental_and_corruption(s3, tmp_path, capsys):
    root, store = tmp_path / "collect", tmp_path / "navale.duckdb"
    build_root(root, store)
    url = f"s3://{BUCKET}/navale/prod"
    assert cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", url]) == 0
    target = open_target(url)
    again = ops.run(root, store, target)
    assert again.sent == 0 and again.skipped > 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert all(k.startswith("navale/prod/objects/") or k.startswith("navale/prod/snapshots/") for k in keys)
    assert sum(k.startswith("navale/prod/snapshots/") for k in keys) == 2

    into = tmp_path / "restored"
    assert cli(["backup", "restore", "--from", url, "--into", str(into)]) == 0
    for rel in ("segments/ES/2024-03-04.seg", "segments/ES/2024-03-05.manifest.json",
                "parquet/ticks/symbol=ES/date=2024-03-04/part-0.parquet", "reports/2024-03-05.md"):
        assert (into / rel).read_bytes() == (root / rel).read_bytes(), rel
    capsys.readouterr()

    snap = ops.load_snapshot(target)
    seg = next(e for e in snap.entries if e.path == "segments/ES/2024-03-05.seg")
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=f"navale/prod/{seg.object}")["Body"].read())
    body[40] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=f"navale/prod/{seg.object}", Body=bytes(body))  # altered in place
    assert cli(["backup", "verify", "--to", url]) == 1
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("bad:")] == [
        line for line in out.splitlines() if "segments/ES/2024-03-05.seg" in line and "altered" in line]
    other = tmp_path / "refused"
    assert cli(["backup", "restore", "--from", url, "--into", str(other)]) == 1
    assert "nothing was restored" in capsys.readouterr().out and not other.exists()


def test_s3_missing_bucket_is_one_line(s3, tmp_path, capsys):
    assert cli(["backup", "list", "--to", "s3://no-such-bucket/x"]) == 2
    assert "bucket 'no-such-bucket' does not exist" in capsys.readouterr().out
    root = tmp_path / "collect"
    (root / "segments").mkdir(parents=True)
    assert cli(["backup", "run", "--dir", str(root), "--no-store", "--to", "s3://no-such-bucket/x"]) == 2
    err = capsys.readouterr().out
    assert "bucket 'no-such-bucket' does not exist" in err and len(err.strip().splitlines()) == 1
