"""navale data verify: a clean chain passes; each kind of damage is named in one line and exits 1; it runs while
a writer process appends to the open segment and never fails on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from segment_builder import segment_bytes, write_chain

from live.collect.layout import manifest_path, partition_path
from live.collect.seal import finalize_segment
from live.collect.verify import VerifyInputError, verify
from research.cli import main
from research.data import segments as sg

REPO = Path(__file__).resolve().parents[3]


def _errors(root, **kw) -> list[str]:
    return [p.line() for p in verify(root, **kw).problems if p.level == "error"]


def test_a_clean_chain_verifies_and_the_cli_exits_0(tmp_path, capsys):
    write_chain(tmp_path, seal_last=False)
    write_chain(tmp_path, symbol="MES", dates=("2024-03-04", "2024-03-05"), n_ticks=5)
    rep = verify(tmp_path)
    assert (rep.errors, rep.warnings) == (0, 0)
    assert [r.status for r in rep.rows if r.kind == "segment"] == ["ok", "ok", "open", "ok", "ok"]
    assert sum(r.kind == "partition" for r in rep.rows) == 12
    assert main(["data", "verify", "--dir", str(tmp_path), "--json", str(tmp_path / "v.json")]) == 0
    out = capsys.readouterr().out
    assert "5 segment(s), 12 partition(s): 0 error(s), 0 warning(s)" in out
    assert json.loads((tmp_path / "v.json").read_text())["errors"] == 0
    assert verify(tmp_path / "segments" / "ES").errors == 0
    assert verify(tmp_path / "segments" / "ES" / "2024-03-05.seg").errors == 0


def _flip(p: Path, at: int) -> None:
    b = bytearray(p.read_bytes())
    b[at] ^= 0x40
    p.write_bytes(bytes(b))


def _rewrite_manifest(p: Path, **changes) -> None:
    m = json.loads(manifest_path(p).read_text())
    m.update(changes)
    manifest_path(p).write_text(json.dumps(m))


def _dup_seq(root: Path, paths: list[Path]) -> None:  # the second segment restarts at the first's last seq
    paths[1].write_bytes(segment_bytes("ES", "2024-03-05", 1, 60, 60, prev={"segment": paths[0].name, "last_seq": 60}))
    manifest_path(paths[1]).unlink()
    finalize_segment(root, paths[1])


def _hole(root: Path, paths: list[Path]) -> None:
    paths[1].write_bytes(segment_bytes("ES", "2024-03-05", 1, 65, 60, prev={"segment": paths[0].name, "last_seq": 60}))
    manifest_path(paths[1]).unlink()
    finalize_segment(root, paths[1])


def _missing_in_chain(root: Path, paths: list[Path]) -> None:
    paths[1].unlink()
    manifest_path(paths[1]).unlink()
    for t in ("ticks", "bars", "events"):
        partition_path(root, t, "ES", "2024-03-05").unlink()


DAMAGE = {
    "flipped byte": (lambda r, p: _flip(p[1], 200), "2024-03-05.seg: byte", "checksum mismatch in a sealed segment"),
    "truncated sealed": (lambda r, p: p[0].write_bytes(p[0].read_bytes()[:-7]), "2024-03-04.seg: byte",
                         "partial record"),
    "deleted partition": (lambda r, p: partition_path(r, "bars", "ES", "2024-03-05").unlink(),
                          "date=2024-03-05/part-0.parquet", "missing"),
    "altered partition": (lambda r, p: _flip(partition_path(r, "ticks", "ES", "2024-03-06"), 300),
                          "ticks/symbol=ES/date=2024-03-06", "sha256 differs"),
    "manifest count off": (lambda r, p: _rewrite_manifest(p[2], counts={**json.loads(manifest_path(p[2]).read_text())["counts"], "tick": 61}),
                           "2024-03-06.manifest.json", "counts differ: tick 61 (segment 60)"),
    "duplicated seq across segments": (_dup_seq, "2024-03-05.seg", "seq 60 repeats 2024-03-04.seg's"),
    "hole in the seq": (_hole, "2024-03-05.seg", "a hole of 4"),
    "missing segment in the chain": (_missing_in_chain, "2024-03-06.seg", "continues 2024-03-05.seg, which is missing"),
}


@pytest.mark.parametrize("name", list(DAMAGE))
def test_each_damage_is_named_in_one_line_and_exits_1(tmp_path, capsys, name):
    paths = write_chain(tmp_path)
    damage, where, what = DAMAGE[name]
    damage(tmp_path, paths)
    errors = _errors(tmp_path)
    hits = [e for e in errors if where in e and what in e]
    assert hits, errors
    assert all("\n" not in e for e in errors)
    assert main(["data", "verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert what in out and "ERRORS" in out


def test_altered_partition_content_is_caught_against_the_segment(tmp_path):
    """A partition rewritten with other rows and a manifest updated to match: only the deep check finds it."""
    import pyarrow.parquet as pq

    from research.data.collected import parquet_bytes

    paths = write_chain(tmp_path)
    part = partition_path(tmp_path, "ticks", "ES", "2024-03-05")
    t = pq.ParquetFile(part).read()
    price = t.column("price").to_pylist()
    price[7] += 0.25
    import hashlib

    import pyarrow as pa

    blob = parquet_bytes(t.set_column(1, "price", pa.array(price, pa.float64())))
    part.write_bytes(blob)
    m = json.loads(manifest_path(paths[1]).read_text())
    m["partitions"]["ticks"]["sha256"] = hashlib.sha256(blob).hexdigest()
    manifest_path(paths[1]).write_text(json.dumps(m))
    assert verify(tmp_path, deep=False).errors == 0
    errors = _errors(tmp_path)
    assert len(errors) == 1 and "content differs from the segment: row 7: price" in errors[0]


def test_states_between_seal_and_manifest_and_torn_files_are_warnings(tmp_path):
    paths = write_chain(tmp_path)
    manifest_path(paths[2]).unlink()  # a crash between the SEAL frame and the manifest: partitions, no manifest
    (paths[0].parent / "2024-03-06.seg.torn-1").write_bytes(b"\x01\x02\x03")
    rep = verify(tmp_path)
    assert rep.errors == 0
    warns = [p.line() for p in rep.problems]
    assert any("2024-03-06.seg: sealed but no manifest yet" in w for w in warns)
    assert any("2024-03-06.seg.torn-1: 3 bytes cut off" in w for w in warns)
    assert any("date=2024-03-06/part-0.parquet: listed in no manifest" in w for w in warns)
    assert main(["data", "verify", "--dir", str(tmp_path)]) == 0


def test_a_manifest_without_seal_and_damage_inside_the_open_segment_are_errors(tmp_path):
    paths = write_chain(tmp_path, seal_last=False)
    manifest_path(paths[2]).write_text(manifest_path(paths[1]).read_text())
    assert any("has a manifest but no SEAL record" in e for e in _errors(tmp_path))
    manifest_path(paths[2]).unlink()
    _flip(paths[2], 300)  # damage with whole records after it is not a write in flight
    assert any("2024-03-06.seg: byte" in e and "checksum mismatch in an open segment" in e for e in _errors(tmp_path))


@pytest.mark.parametrize("where", ["middle", "seal"])
def test_one_flipped_byte_in_a_sealed_segment_gives_its_root_cause_only(tmp_path, where):
    """The damaged segment: one root-cause line and the sha256 its manifest no longer matches; no SEAL or count
    complaints about what cannot be read; its partitions checked against the manifest; the next, intact segment
    joins the damaged one's end as its manifest records, so it is not blamed."""
    paths = write_chain(tmp_path)
    size = paths[1].stat().st_size
    _flip(paths[1], size // 2 if where == "middle" else size - 3)
    rep = verify(tmp_path)
    errors = [p.line() for p in rep.problems if p.level == "error"]
    assert len(errors) == 2, errors
    assert "2024-03-05.seg: byte" in errors[0] and "checksum mismatch in a sealed segment" in errors[0]
    assert "2024-03-05.manifest.json: sha256 differs" in errors[1]
    assert rep.warnings == 0, [p.line() for p in rep.problems]
    rows = {r.path: r for r in rep.rows}
    damaged = rows["segments/ES/2024-03-05.seg"]
    assert damaged.status == "error" and damaged.detail.startswith("damaged at byte") and "(sealed)" in damaged.detail
    assert "no manifest" not in damaged.detail
    assert rows["segments/ES/2024-03-06.seg"].status == "ok"
    assert all(r.status == "ok" for r in rep.rows if r.kind == "partition")


def test_bad_input_exits_2(tmp_path, capsys):
    with pytest.raises(VerifyInputError):
        verify(tmp_path / "nope")
    assert main(["data", "verify", str(tmp_path / "nope")]) == 2
    (tmp_path / "x.txt").write_text("x")
    assert main(["data", "verify", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert "no such file or directory" in err and "not a segment" in err


WRITER = textwrap.dedent("""
    import math, os, sys
    from research.data import segments as sg
    path, first_seq = sys.argv[1], int(sys.argv[2])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    seq = first_seq
    print("ready", flush=True)
    while True:
        frame = sg.tick_frame(1709593200 * 10**9 + seq * 10**6, 5000.0, 1, 1, 1, math.nan, math.nan, seq)
        # a frame in two writes: the reader sees partial records at the tail
        os.write(fd, frame[:5]); os.write(fd, frame[5:])
        seq += 1
        if seq % 2 == 0:
            os.fsync(fd)
""")


def test_verify_while_a_writer_process_appends_to_the_open_segment(tmp_path):
    paths = write_chain(tmp_path, seal_last=False)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(paths[2]), "181"], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        seen_in_flight = 0
        sizes = []
        for _ in range(10):
            rep = verify(tmp_path)
            assert rep.errors == 0, [p.line() for p in rep.problems]
            row = next(r for r in rep.rows if r.path.endswith("2024-03-06.seg"))
            assert row.status == "open"
            seen_in_flight += "in flight" in row.detail
            sizes.append(paths[2].stat().st_size)
        assert sizes[-1] > sizes[0]  # the writer was appending all along
    finally:
        proc.kill()
        proc.wait()
    # the segment stopped mid-frame or not: still open, never an error
    assert verify(tmp_path).errors == 0
    assert sg.read_segment(paths[2], allow_torn=True).ticks["seq"][-1] > 181


@pytest.mark.parametrize("contracts, error", [(("ESM24", "ESU24"), False), (("ESM24", "ESM24"), True)])
def test_a_bar_key_is_contract_and_start(tmp_path, contracts, error):
    """At a roll inside a bar the old and the new contract each close a bar of the same start: not a duplicate;
    the same start twice for one contract is."""
    seg = tmp_path / "segments" / "ES" / "2024-03-04.seg"
    seg.parent.mkdir(parents=True)
    t = 1_709_560_800_000_000_000
    frames = [sg.header_frame("ES", "2024-03-04", "test", 1, None)]
    for i, c in enumerate(contracts):
        frames += [sg.json_frame(sg.CONTRACT, {"contract": c}),
                   sg.tick_frame(t + i, 5000.0, 1, 1, 1, 4999.75, 5000.0, i + 1),
                   sg.bar_frame(t, 5000.0, 5000.0, 5000.0, 5000.0, 1, 0, 1, 1)]
    seg.write_bytes(b"".join(frames))
    errs = _errors(tmp_path)
    assert any("a duplicate" in e and "bar 1" in e for e in errs) == error, errs
