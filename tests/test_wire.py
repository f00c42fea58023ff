"""Bounded decoding: a reply is refused before the grader materialises more than
grader/limits.py allows, and honest replies (the biggest: a ResNet-18's weights) still pass.

Each hostile reply below is what a student's code could send instead of its result (it can
write any bytes to the reply pipe). ``decode`` is the grader's side: a refusal is
ProbeFailure("invalid_result", one line), costing only that probe.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import subprocess
import sys
import zipfile

import pytest
import torch

from grader import limits
from grader.probes import ProbeFailure, sanitize
from grader.sandbox.client import decode
from grader.sandbox.worker import wire
from tests.corpus import REPO


def reply(result) -> bytes:
    return wire.dumps({"status": "ok", "result": result})


def refusal(data: bytes) -> str:
    with pytest.raises(ProbeFailure) as failure:
        decode(data)
    assert failure.value.kind == "invalid_result"
    assert "\n" not in failure.value.message
    return failure.value.message


# -- building replies by hand ----------------------------------------------------------------
def records_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def make_zip(records: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    """A zip as torch.save writes one: each record's data 64-byte aligned (an extra field pads
    the local header), stored unless ``compression`` says otherwise."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in records.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            header_end = out.tell() + 30 + len(name.encode()) + 4
            info.extra = struct.pack("<HH", 0x4B46, (-header_end) % 64) + \
                bytes((-header_end) % 64)
            zf.writestr(info, data)
    return out.getvalue()


def with_pickle(data: bytes, code: bytes) -> bytes:
    """``data`` (a torch.save reply) with its data.pkl replaced by ``code``."""
    records = records_of(data)
    records["archive/data.pkl"] = code
    return make_zip(records)


def ok_pickle(result_code: bytes) -> bytes:
    """Pickle opcodes of {"status": "ok", "result": <result_code>}."""
    def text(s: str) -> bytes:
        return b"X" + struct.pack("<I", len(s)) + s.encode()

    return b"\x80\x02}(" + text("status") + text("ok") + text("result") + result_code + b"u."


def raw_zip(names: list[str], payload: bytes, sizes: list[int]) -> bytes:
    """Local headers for ``names`` one after another inside ``payload``, each declaring
    ``sizes[i]`` bytes: records that overlap (a zip bomb without compression)."""
    body, offsets = b"", []
    for name in names:
        offsets.append(len(body))
        body += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, 0, 0,
                            len(name), 0) + name.encode()
    body += payload
    central = b""
    for name, offset, size in zip(names, offsets, sizes, strict=True):
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, size, size,
                               len(name), 0, 0, 0, 0, 0, offset) + name.encode()
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(names), len(names), len(central),
                      len(body), 0)
    return body + central + end


# -- honest replies pass ---------------------------------------------------------------------
def resnet18_weights() -> dict[str, torch.Tensor]:
    """A ResNet-18 state dict's shapes, about 11.2M float32 values (~45 MB)."""
    from torchvision.models import resnet18  # only for the shapes, if it is installed

    return {k: torch.randn_like(v.float()) if v.is_floating_point() else v
            for k, v in resnet18().state_dict().items()}


def big_weights() -> dict[str, torch.Tensor]:
    try:
        return resnet18_weights()
    except ImportError:
        return {f"layer{i}.weight": torch.randn(112_000) for i in range(100)}


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return type(b) is torch.Tensor and a.dtype == b.dtype and a.shape == b.shape \
            and a.stride() == b.stride() and torch.equal(a, b)  # (no NaN in these tensors)
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and (a == b or a != a and b != b)  # NaN is NaN


def test_honest_replies_pass_unchanged():
    nested = {
        "channels_last": torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
        "layers": [{"weight": torch.randn(4, 3, 3, 3), "bias": torch.zeros(4)},
                   ("relu", None, True, 3, -7, 2 ** 70, 0.5, float("nan"), "é")],
        "ints": torch.arange(12).reshape(3, 4), "flags": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
        "half": torch.ones(3, dtype=torch.float16), "double": torch.ones(2, dtype=torch.float64),
        "uint16": torch.zeros(3, dtype=torch.uint16),
        "losses": [float(i) / 7 for i in range(5000)],
    }
    got = decode(reply(nested))
    assert same(got, nested)
    assert got["channels_last"].is_contiguous(memory_format=torch.channels_last)
    assert decode(reply("ready")) == "ready"


def test_a_resnet18s_weights_pass():
    weights = big_weights()
    total = sum(t.numel() * t.element_size() for t in weights.values())
    assert total > 40 << 20
    data = reply({"weights": weights, "losses": [2.3, 2.1], "steps": 2})
    assert len(data) < limits.REPLY_MAX_WIRE_BYTES
    got = decode(data)
    assert same(got["weights"], weights) and got["losses"] == [2.3, 2.1]


def test_views_of_one_storage_come_back_as_views_of_it():
    base = torch.arange(10.0)
    a, b = decode(reply([base, base[2:5]]))
    assert torch.equal(a, base) and torch.equal(b, base[2:5])


def test_a_bool_tensor_holds_only_true_and_false():
    """A bool storage byte other than 0 and 1 is undefined behaviour in torch: normalised."""
    data = reply(torch.tensor([True, False, True]))
    records = records_of(data)
    records["archive/data/0"] = bytes([2, 0, 255])
    got = decode(make_zip(records))
    assert got.tolist() == [True, False, True]
    assert got.view(torch.uint8).tolist() == [1, 0, 1]


def test_the_reference_cache_reads_the_same_format(tmp_path):
    from grader.handle import ReferenceHandle
    from grader.packs.day02.probes import conv as P

    ref = ReferenceHandle("solutions", cache_dir=tmp_path)
    first = ref.run(P.output_size, {"args": [32, 3, 1, 1, 1]})
    (entry,) = tmp_path.glob("*.pt")
    assert wire.loads(entry.read_bytes()) == first == 32
    assert ref.run(P.output_size, {"args": [32, 3, 1, 1, 1]}) == 32


# -- hostile replies are refused, each in one line ---------------------------------------------
def test_a_stride0_view_is_refused():
    data = reply(torch.zeros(1).expand(10 ** 9))  # 4 GB once copied, 1.6 KB on the wire
    assert len(data) < 4096
    assert "stride 0" in refusal(data)


def test_an_overlapping_view_is_refused():
    data = reply(torch.arange(10.0).as_strided((5, 5), (1, 1)))
    assert "overlap" in refusal(data)


def test_a_view_past_the_end_of_its_storage_is_refused():
    data = reply(torch.arange(10.0)[5:])  # storage offset 5, size 5: then move it to 9
    code = records_of(data)["archive/data.pkl"]
    assert code.count(b"K\x05") == 2  # the offset, and the size (5,)
    first = code.index(b"K\x05")
    assert "past the end" in refusal(with_pickle(data, code[:first] + b"K\x09"
                                                 + code[first + 2:]))


def test_a_view_larger_than_its_storage_is_refused():
    data = reply(torch.arange(10.0))
    code = records_of(data)["archive/data.pkl"]
    big = code.replace(b"K\n\x85", b"J" + struct.pack("<i", 10 ** 8) + b"\x85", 1)
    assert big != code
    assert "past the end" in refusal(with_pickle(data, big))


def test_a_compressed_record_is_refused():
    """66 KB on the wire that inflate to 64 MiB: never inflated."""
    data = make_zip(records_of(wire.dumps({"status": "ok", "result": torch.zeros(16 << 20)})),
                    zipfile.ZIP_DEFLATED)
    assert len(data) < 100_000
    assert "compressed" in refusal(data)


def test_the_legacy_format_is_refused():
    buf = io.BytesIO()
    torch.save({"status": "ok", "result": 1}, buf, _use_new_zipfile_serialization=False)
    assert "format" in refusal(buf.getvalue())
    assert "format" in refusal(pickle.dumps({"status": "ok", "result": 1}))
    assert "format" in refusal(b"")


def test_a_deep_list_is_refused_without_recursion():
    depth = 200_000  # far past Python's recursion limit
    deep = with_pickle(reply(0), ok_pickle(b"]" * depth + b"a" * (depth - 1)))
    assert type(wire.loads(deep)["result"]) is list  # decoding itself never recurses
    assert "nested more than" in refusal(deep)


def test_a_deep_tuple_key_is_refused_without_hashing_it():
    deep = with_pickle(reply(0), ok_pickle(b"}" + b"K\x01" + b"\x85" * 200_000 + b"K\x02s"))
    assert "keys must be strings" in refusal(deep)


def test_a_huge_pickle_is_refused():
    data = reply([0.5] * 1_200_000)  # 9 bytes a float: over 8 MiB of pickle
    assert "pickle" in refusal(data)


def test_too_many_records_are_refused():
    records = records_of(reply(0))
    records.update({f"archive/extra/{i}": b"" for i in range(limits.REPLY_MAX_RECORDS)})
    assert "records" in refusal(make_zip(records))


def test_overlapping_records_are_refused():
    names = [f"archive/data/{i}" for i in range(8)]
    payload = bytes(4096)
    data = raw_zip(names, payload, [4096] * 8)  # each spans the next ones' headers
    assert "overlapping" in refusal(data)


def test_shared_values_are_counted_each_time():
    """A thousand references to a list of a thousand references to a list of a thousand
    numbers: a few KB, a billion values once rebuilt."""
    leaf = list(range(1000))
    middle = [leaf] * 1000
    data = reply([middle] * 1000)
    assert len(data) < 100_000
    assert "values" in refusal(data)


def test_a_tensor_listed_many_times_counts_each_time():
    one = torch.zeros(1 << 18)  # 1 MiB
    data = reply([one] * 200)
    assert len(data) < 2 << 20
    assert "MiB of tensors" in refusal(data)


@pytest.mark.parametrize("code", [
    b"cbuiltins\nbytearray\nJ\x00\x00\x00\x10\x85R",  # torch.load: a 256 MiB bytearray
    b"ctorch\nFloatTensor\nJ\x00\x00\x00\x10\x85R",  # torch.load: a 1 GiB tensor
    b"cos\nsystem\nX\x04\x00\x00\x00true\x85R",
    b"ctorch._utils\n_rebuild_qtensor\n)R",
], ids=["bytearray", "FloatTensor", "os.system", "qtensor"])
def test_globals_outside_plain_data_are_refused(code):
    assert "not plain data" in refusal(with_pickle(reply(0), ok_pickle(code)))


def test_a_reply_over_the_wire_cap_is_refused():
    assert "over the" in refusal(bytes(limits.REPLY_MAX_WIRE_BYTES + 1))


def test_sanitize_bounds_what_it_copies_in_process_too():
    """The same caps in the worker and for the reference: a stride-0 view is not copied."""
    with pytest.raises(ProbeFailure, match="MiB of tensors"):
        sanitize(torch.zeros(1).expand(10 ** 9))
    assert sanitize(torch.zeros(1).expand(3)).stride() == (1,)  # small: a dense copy


# -- the grader's memory while refusing --------------------------------------------------------
PEAK_SCRIPT = """
import json, resource, sys
from pathlib import Path
import torch
from grader.sandbox.client import decode
from grader.probes import ProbeFailure
replies = [p.read_bytes() for p in sorted(Path(sys.argv[1]).glob("*.bin"))]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in replies:
    try:
        decode(data)
    except ProbeFailure as failure:
        assert failure.kind == "invalid_result", failure
    else:
        raise AssertionError("accepted")
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "grew_kib": after - before, "n": len(replies)}))
"""


@pytest.mark.slow  # a fresh interpreter importing torch
def test_refusing_hostile_replies_takes_no_memory(tmp_path):
    """Every hostile reply above, decoded in a fresh grader process: its peak resident memory
    grows by a few MiB at most (before: the stride-0 reply alone took 4 GB, the bytearray
    one 256 MiB, the compressed one 64 MiB)."""
    hostile = {
        "stride0": reply(torch.zeros(1).expand(10 ** 9)),
        "compressed": make_zip(records_of(reply(torch.zeros(16 << 20))), zipfile.ZIP_DEFLATED),
        "bytearray": with_pickle(reply(0), ok_pickle(
            b"cbuiltins\nbytearray\nJ\x00\x00\x00\x10\x85R")),
        "floattensor": with_pickle(reply(0), ok_pickle(
            b"ctorch\nFloatTensor\nJ\x00\x00\x00\x10\x85R")),
        "shared": reply([[list(range(1000))] * 1000] * 1000),
        "repeated": reply([torch.zeros(1 << 18)] * 200),
        "deep": with_pickle(reply(0), ok_pickle(b"]" * 100_000 + b"a" * 99_999)),
    }
    for name, data in hostile.items():
        (tmp_path / f"{name}.bin").write_bytes(data)
    done = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout)
    assert found["n"] == len(hostile)
    assert found["grew_kib"] < 32 << 10, found
