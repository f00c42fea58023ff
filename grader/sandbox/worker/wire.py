"""The one tensor encoding on the wire and on disk: ``torch.save`` out, a strict decoder in.

    data = dumps({"status": "ok", "result": tensor})   # in a worker, or a cache entry
    value = loads(data)                                # in the grader: runs no code from data

``loads`` is not ``torch.load``. Even with ``weights_only=True``, torch's unpickler builds
``bytearray(n)`` or ``torch.FloatTensor(n)`` of any size from a few bytes, inflates compressed
records, and returns stride-0 views that a later ``.clone()`` turns into gigabytes. ``loads``
reads only what ``dumps`` writes for plain data: a zip of stored records holding a protocol-2
pickle of dicts, lists, tuples, numbers, strings and dense tensors. It checks every size
against ``grader/limits.py`` before anything is allocated, and builds each tensor as a view of
the reply's own bytes. Anything else raises ``Refused`` with one line for the student:

    not a zip (torch's legacy format)   a compressed or encrypted record   > REPLY_MAX_RECORDS
    records that declare more bytes than the reply has (REPLY_EXPANSION)
    a pickle over REPLY_MAX_PICKLE_BYTES, or an opcode or global outside that set
    a tensor view with a zero or negative stride, overlapping elements, or elements past the
    end of its storage; more than REPLY_MAX_TENSOR_BYTES of tensors (each view counted)

The tensors returned alias ``data``: callers ``sanitize`` what comes back (exact types, depth,
number of values), which copies them. Only the standard library and torch are imported here.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import Any

from grader import limits


class Refused(ValueError):
    """A reply the grader does not decode; the message is one line for the student."""


def dumps(value: Any, view: bool = False) -> Any:
    """torch.save's bytes; with ``view``, a memoryview of its buffer (no copy)."""
    import torch  # lazily: the self-check imports the probe API without paying for this

    buf = io.BytesIO()
    torch.save(value, buf)
    return buf.getbuffer() if view else buf.getvalue()


def loads(data: bytes | bytearray | memoryview) -> Any:
    """``data`` as dumps wrote it, or ``Refused``; never allocates more than the caps allow."""
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    records, prefix = _records(view)
    return _Unpickler(view, records, prefix).load()


# -- the zip: stored records only, every offset checked ------------------------------------------
_EOCD = struct.Struct("<4s4H2IH")  # end of central directory (22 bytes)
_CENTRAL = struct.Struct("<4s6H3I5H2I")  # a central directory entry (46 bytes, then its name)
_LOCAL = struct.Struct("<4s5H3I2H")  # a local file header (30 bytes, then name and extra)
_MIB = 1 << 20


def _mib(n: int) -> str:
    return f"{n / _MIB:.1f} MiB" if n % _MIB else f"{n // _MIB} MiB"


def _malformed(why: str) -> Refused:
    return Refused(f"your result is not a well-formed reply ({why})")


def _records(data: memoryview) -> tuple[dict[str, tuple[int, int]], str]:
    """name -> (start, size) of each record, and the archive's prefix ("archive")."""
    n = len(data)
    if n > limits.REPLY_MAX_WIRE_BYTES:
        raise Refused(f"your result is {_mib(n)}, over the {_mib(limits.REPLY_MAX_WIRE_BYTES)} "
                      "the grader accepts")
    if n < _EOCD.size or data[:4] != b"PK\x03\x04":
        raise Refused("your result was not sent in the kit's format (a zip written by "
                      "torch.save; legacy and other formats are refused)")
    sig, disk, cd_disk, here, total, cd_size, cd_offset, comment = \
        _EOCD.unpack_from(data, n - _EOCD.size)
    if sig != b"PK\x05\x06" or comment or disk or cd_disk or here != total:
        raise _malformed("no end record where torch.save puts it")
    if total > limits.REPLY_MAX_RECORDS:
        raise Refused(f"your result's zip has {total} records, over the grader's "
                      f"{limits.REPLY_MAX_RECORDS}")
    end = cd_offset + cd_size
    if end > n - _EOCD.size:
        raise _malformed("its directory lies outside it")
    records: dict[str, tuple[int, int]] = {}
    declared = 0
    pos = cd_offset
    for _ in range(total):
        if pos + _CENTRAL.size > end:
            raise _malformed("a truncated directory")
        (sig, _made, _needs, flags, method, _time, _date, _crc, csize, usize, name_len,
         extra_len, comment_len, _disk, _internal, _external, offset) = \
            _CENTRAL.unpack_from(data, pos)
        name_raw = bytes(data[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len])
        pos += _CENTRAL.size + name_len + extra_len + comment_len
        if sig != b"PK\x01\x02" or pos > end:
            raise _malformed("a damaged directory entry")
        try:
            name = name_raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("a record name that is not UTF-8") from None
        if method != 0:
            raise Refused(f"your result's zip holds a compressed record ({name[:60]!r}, "
                          f"method {method}): the worker never compresses, and the grader "
                          "does not inflate")
        if flags & 0x41:  # encrypted (traditional or strong)
            raise _malformed(f"an encrypted record {name[:60]!r}")
        if csize != usize:
            raise _malformed(f"record {name[:60]!r} is stored but declares two sizes")
        if name in records:
            raise _malformed(f"two records named {name[:60]!r}")
        if offset + _LOCAL.size > cd_offset:
            raise _malformed(f"record {name[:60]!r} starts outside the zip")
        lsig, *_header, local_name_len, local_extra_len = _LOCAL.unpack_from(data, offset)
        start = offset + _LOCAL.size + local_name_len + local_extra_len
        if lsig != b"PK\x03\x04" or bytes(data[offset + _LOCAL.size:
                                               offset + _LOCAL.size + local_name_len]) != name_raw:
            raise _malformed(f"record {name[:60]!r} has no matching header")
        if start + usize > cd_offset:
            raise _malformed(f"record {name[:60]!r} runs past the end of the data")
        declared += usize
        records[name] = (start, usize)
    if declared > limits.REPLY_EXPANSION * n:
        raise Refused(f"your result's zip declares {declared} bytes of records in {n} bytes "
                      "(overlapping records)")
    pickles = [name for name in records if name.endswith("/data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise _malformed("no single data.pkl record")
    prefix = pickles[0].split("/")[0]
    if records[pickles[0]][1] > limits.REPLY_MAX_PICKLE_BYTES:
        raise Refused(f"your result's pickle is {_mib(records[pickles[0]][1])}, over the "
                      f"grader's {_mib(limits.REPLY_MAX_PICKLE_BYTES)} (return tensors rather "
                      "than long lists of numbers)")
    if f"{prefix}/byteorder" in records:
        start, size = records[f"{prefix}/byteorder"]
        if bytes(data[start:start + size]) != b"little":
            raise _malformed("not little-endian")
    return records, prefix


# -- the pickle: a protocol-2 subset, run by this loop, never by pickle or torch -------------------
class _Marker:
    """A global the pickle may name (a rebuild function, a storage type, OrderedDict)."""

    def __init__(self, name: str, dtype: Any = None) -> None:
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"<{self.name}>"


_REBUILD_V2 = _Marker("torch._utils._rebuild_tensor_v2")
_REBUILD_V3 = _Marker("torch._utils._rebuild_tensor_v3")
_ORDERED_DICT = _Marker("collections.OrderedDict")
_NO_HOOKS = _Marker("OrderedDict()")  # a tensor's (empty) backward hooks
_UNTYPED = _Marker("torch.storage.UntypedStorage")
# torch.save's storage type per dtype (quantized ones are not plain data)
_TYPED_STORAGES = {"DoubleStorage": "float64", "FloatStorage": "float32",
                   "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
                   "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
                   "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
                   "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128"}
_V3_DTYPES = ("uint16", "uint32", "uint64")  # newer dtypes: an untyped storage and the dtype


class _Storage:
    """A storage record of this zip: where its bytes are, and its dtype (None: untyped)."""

    def __init__(self, start: int, size: int, dtype: Any) -> None:
        self.start, self.size, self.dtype = start, size, dtype


class _Unpickler:
    def __init__(self, data: memoryview, records: dict[str, tuple[int, int]],
                 prefix: str) -> None:
        self.data, self.records, self.prefix = data, records, prefix
        self.storages: dict[str, _Storage] = {}  # one per key and dtype, as torch.load
        self.tensor_bytes = 0

    def load(self) -> Any:
        start, size = self.records[f"{self.prefix}/data.pkl"]
        try:
            return self._run(bytes(self.data[start:start + size]))
        except (struct.error, IndexError, KeyError):
            raise _malformed("a truncated or inconsistent pickle") from None

    def _run(self, code: bytes) -> Any:  # one branch per opcode
        stack: list[Any] = []
        marks: list[int] = []
        memo: dict[int, Any] = {}
        pos, n = 0, len(code)
        unpack_from = struct.unpack_from
        while pos < n:
            op = code[pos]
            pos += 1
            if op == 0x71:  # q BINPUT
                memo[code[pos]] = stack[-1]
                pos += 1
            elif op == 0x72:  # r LONG_BINPUT
                memo[unpack_from("<I", code, pos)[0]] = stack[-1]
                pos += 4
            elif op == 0x68:  # h BINGET
                stack.append(memo[code[pos]])
                pos += 1
            elif op == 0x6A:  # j LONG_BINGET
                stack.append(memo[unpack_from("<I", code, pos)[0]])
                pos += 4
            elif op == 0x28:  # ( MARK
                marks.append(len(stack))
            elif op in (0x74, 0x65, 0x75):  # t TUPLE, e APPENDS, u SETITEMS
                at = marks.pop()
                items = stack[at:]
                del stack[at:]
                if op == 0x74:
                    stack.append(tuple(items))
                elif op == 0x65:
                    _target(stack, list).extend(items)
                else:
                    if len(items) % 2:
                        raise _malformed("an odd SETITEMS")
                    target = _target(stack, dict)
                    for i in range(0, len(items), 2):
                        target[_key(items[i])] = items[i + 1]
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
            elif op == 0x86:  # TUPLE2
                stack[-2:] = [(stack[-2], stack[-1])]
            elif op == 0x87:  # TUPLE3
                stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
            elif op == 0x29:  # ) EMPTY_TUPLE
                stack.append(())
            elif op == 0x5D:  # ] EMPTY_LIST
                stack.append([])
            elif op == 0x7D:  # } EMPTY_DICT
                stack.append({})
            elif op == 0x61:  # a APPEND
                item = stack.pop()
                _target(stack, list).append(item)
            elif op == 0x73:  # s SETITEM
                value = stack.pop()
                key = _key(stack.pop())
                _target(stack, dict)[key] = value
            elif op == 0x4A:  # J BININT
                stack.append(unpack_from("<i", code, pos)[0])
                pos += 4
            elif op == 0x4B:  # K BININT1
                stack.append(code[pos])
                pos += 1
            elif op == 0x4D:  # M BININT2
                stack.append(unpack_from("<H", code, pos)[0])
                pos += 2
            elif op == 0x8A:  # LONG1
                size = code[pos]
                if pos + 1 + size > n:
                    raise IndexError
                stack.append(int.from_bytes(code[pos + 1:pos + 1 + size], "little",
                                            signed=True))
                pos += 1 + size
            elif op == 0x47:  # G BINFLOAT
                stack.append(unpack_from(">d", code, pos)[0])
                pos += 8
            elif op in (0x58, 0x8C):  # X BINUNICODE, SHORT_BINUNICODE
                if op == 0x58:
                    size, pos = unpack_from("<I", code, pos)[0], pos + 4
                else:
                    size, pos = code[pos], pos + 1
                if pos + size > n:
                    raise IndexError
                try:
                    stack.append(code[pos:pos + size].decode("utf-8"))
                except UnicodeDecodeError:
                    raise _malformed("a string that is not UTF-8") from None
                pos += size
            elif op == 0x4E:  # N NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x63:  # c GLOBAL
                module, pos = _line(code, pos)
                name, pos = _line(code, pos)
                stack.append(_global(module, name))
            elif op == 0x51:  # Q BINPERSID
                stack.append(self._storage(stack.pop()))
            elif op == 0x52:  # R REDUCE
                args = stack.pop()
                stack[-1] = self._call(stack[-1], args)
            elif op == 0x80:  # PROTO
                if code[pos] > 5:
                    raise _malformed(f"pickle protocol {code[pos]}")
                pos += 1
            elif op == 0x2E:  # . STOP
                if len(stack) != 1 or marks:
                    raise _malformed("a pickle that leaves more than one value")
                return stack[0]
            else:
                raise Refused(f"your result's pickle uses operation {bytes([op])!r}, which "
                              "plain data never needs")
        raise _malformed("a pickle without an end")

    def _storage(self, pid: Any) -> _Storage:
        """('storage', type, key, location, numel): a record of this zip, never copied."""
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage" \
                or not isinstance(pid[1], _Marker) or type(pid[2]) is not str \
                or type(pid[4]) is not int:
            raise _malformed("a reference that is not a tensor storage")
        kind, key, numel = pid[1], pid[2], pid[4]
        if kind is not _UNTYPED and kind.dtype is None:
            raise _malformed(f"{kind.name} is not a storage type")
        record = self.records.get(f"{self.prefix}/data/{key}")
        if record is None:
            raise _malformed(f"no record for storage {key[:20]!r}")
        itemsize = 1 if kind is _UNTYPED else kind.dtype.itemsize
        if numel < 0 or numel * itemsize != record[1]:
            raise _malformed(f"storage {key[:20]!r} is not the size its record has")
        dtype = None if kind is _UNTYPED else kind.dtype
        return self.storages.setdefault(f"{key}\0{dtype}", _Storage(*record, dtype))

    def _call(self, func: Any, args: Any) -> Any:
        if type(args) is not tuple:
            raise _malformed("a call without an argument tuple")
        if func is _ORDERED_DICT and args == ():
            return _NO_HOOKS
        if func is _REBUILD_V2 and len(args) == 6:
            storage, offset, size, stride, grad, hooks = args
            dtype = storage.dtype if type(storage) is _Storage else None
        elif func is _REBUILD_V3 and len(args) == 7:
            storage, offset, size, stride, grad, hooks, dtype = args
            if type(storage) is not _Storage or storage.dtype is not None \
                    or not _is_v3_dtype(dtype):
                raise _malformed("a tensor of an unsupported dtype")
        else:
            raise Refused(f"your result's pickle calls {func!r}{_short(args)}, which plain "
                          "data never needs")
        if hooks is not _NO_HOOKS or dtype is None or type(grad) is not bool:
            raise _malformed("a tensor with hooks, or without a typed storage")
        return self._tensor(storage, dtype, offset, size, stride)

    def _tensor(self, storage: _Storage, dtype: Any, offset: Any, size: Any,
                stride: Any) -> Any:
        import torch

        if type(size) is not tuple or type(stride) is not tuple or len(size) != len(stride) \
                or len(size) > 64 or type(offset) is not int or offset < 0 \
                or not all(type(v) is int and 0 <= v < 1 << 62 for v in size + stride):
            raise _malformed("a tensor with a malformed shape or layout")
        itemsize = dtype.itemsize
        if storage.start % itemsize or storage.size % itemsize:
            raise _malformed("a tensor storage that is not aligned to its dtype")
        count = storage.size // itemsize
        numel = math.prod(size)
        if numel == 0:
            if offset > count:
                raise Refused("your result holds a tensor that starts past the end of its "
                              "storage")
            return torch.empty(size, dtype=dtype)
        dims = sorted((st, sz) for sz, st in zip(size, stride, strict=True) if sz > 1)
        reach = 1  # every element of the dims so far lies below this offset
        for st, sz in dims:
            if st == 0:
                raise Refused("your result holds a tensor view that repeats its elements "
                              "(stride 0, as .expand() makes): send .contiguous() data")
            if st < reach:
                raise Refused("your result holds a tensor whose elements overlap in memory "
                              "(as .as_strided() can make): send .contiguous() data")
            reach = st * sz
        if offset + sum((sz - 1) * st for st, sz in dims) >= count:
            raise Refused("your result holds a tensor that reaches past the end of its "
                          "storage")
        self.tensor_bytes += numel * itemsize
        if self.tensor_bytes > limits.REPLY_MAX_TENSOR_BYTES:
            raise Refused(f"your result holds more than "
                          f"{_mib(limits.REPLY_MAX_TENSOR_BYTES)} of tensors (a tensor counted "
                          "each time it appears), over the grader's limit")
        as_bytes = dtype is torch.bool  # any byte but 0 and 1 is not a bool: normalise it
        with warnings.catch_warnings():  # read-only bytes: sanitize copies before any write
            warnings.simplefilter("ignore", UserWarning)
            flat = torch.frombuffer(self.data, dtype=torch.uint8 if as_bytes else dtype,
                                    count=count, offset=storage.start)
        tensor = torch.as_strided(flat, size, stride, offset)
        return tensor.ne(0) if as_bytes else tensor


def _short(args: Any) -> str:
    return "" if type(args) is not tuple else f" with {len(args)} arguments"


def _is_v3_dtype(dtype: Any) -> bool:
    import torch

    return any(dtype is getattr(torch, name, None) for name in _V3_DTYPES)


def _line(code: bytes, pos: int) -> tuple[str, int]:
    end = code.find(b"\n", pos, pos + 128)
    if end < 0:
        raise _malformed("a global name that does not end")
    try:
        return code[pos:end].decode("ascii"), end + 1
    except UnicodeDecodeError:
        raise _malformed("a global name that is not ASCII") from None


def _global(module: str, name: str) -> Any:
    import torch

    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _REBUILD_V2
    if module == "torch._utils" and name == "_rebuild_tensor_v3":
        return _REBUILD_V3
    if module == "collections" and name == "OrderedDict":
        return _ORDERED_DICT
    if module == "torch.storage" and name == "UntypedStorage":
        return _UNTYPED
    if module == "torch" and name in _TYPED_STORAGES:
        return _Marker(f"torch.{name}", getattr(torch, _TYPED_STORAGES[name]))
    if module == "torch" and name in _V3_DTYPES:
        return getattr(torch, name)
    raise Refused(f"your result holds a {module[:60]}.{name[:60]}, not plain data (tensors, "
                  "numbers, strings, lists, tuples, dicts)")


def _target(stack: list, kind: type) -> Any:
    if type(stack[-1]) is not kind:
        raise _malformed(f"adds items to a {type(stack[-1]).__name__}")
    return stack[-1]


def _key(key: Any) -> str:
    if type(key) is not str:  # never hashed: a deep tuple would take the grader's C stack
        raise Refused(f"your result has a dict key of type {type(key).__name__}: keys must be "
                      "strings")
    return key
