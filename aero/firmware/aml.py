"""A small AML encoder: builds ACPI Machine Language byte code from composable Python objects.

References: ACPI Specification 6.5, section 20 "ACPI Machine Language (AML) Specification"
(20.2.2 Name Objects Encoding, 20.2.3 Data Objects Encoding, 20.2.4 Package Length Encoding,
20.2.5 Term Objects Encoding: Namespace Modifier / Named / Type 1 / Type 2 opcodes, 20.2.6
Miscellaneous Objects Encoding) and section 6.4 "Resource Data Types for ACPI" (6.4.2 small
resource descriptors: IRQ, DMA, I/O port, Fixed I/O, End Tag; 6.4.3 large resource descriptors:
32-bit fixed memory range, QWORD/DWORD/WORD address space descriptors), and 19.6.35 EISAID for
the compressed EISA identifier.

Every node is a Python object with ``encode() -> bytes``; plain Python values are converted where
a data object is expected (``int`` -> the shortest integer encoding as iasl emits it, ``str`` ->
String, ``bytes`` -> Buffer, ``list``/``tuple`` -> Package).  Where the grammar wants a TermArg
or a SuperName (operands of Store, And, If, Return, ...), a ``str`` is a name reference instead;
write ``String("...")`` for a string literal there.  Example::

    Scope("\\\\_SB_", [Device("PCI0", [Name("_HID", EisaId("PNP0A03")), Name("_ADR", 0)])])

Names follow the spec's grammar: a path is an optional root prefix ``\\`` or any number of parent
prefixes ``^``, then NameSegs separated by ``.``; a NameSeg shorter than four characters is padded
with ``_`` (``_SB`` -> ``_SB_``).  Two segments take DualNamePrefix, three or more
MultiNamePrefix, none (``\\`` alone) NullName.
"""

from __future__ import annotations

import struct

# -- 20.2 opcodes ---------------------------------------------------------------------------------
ZERO_OP, ONE_OP, ONES_OP = 0x00, 0x01, 0xFF
BYTE_PREFIX, WORD_PREFIX, DWORD_PREFIX, STRING_PREFIX, QWORD_PREFIX = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E
ALIAS_OP, NAME_OP, SCOPE_OP, BUFFER_OP, PACKAGE_OP, VAR_PACKAGE_OP, METHOD_OP = (
    0x06, 0x08, 0x10, 0x11, 0x12, 0x13, 0x14)
DUAL_NAME_PREFIX, MULTI_NAME_PREFIX, ROOT_CHAR, PARENT_PREFIX_CHAR, NULL_NAME = (
    0x2E, 0x2F, 0x5C, 0x5E, 0x00)
EXT_OP_PREFIX = 0x5B
EXT_MUTEX_OP, EXT_OP_REGION_OP, EXT_FIELD_OP, EXT_DEVICE_OP, EXT_PROCESSOR_OP = (
    0x01, 0x80, 0x81, 0x82, 0x83)
LOCAL0_OP, ARG0_OP = 0x60, 0x68
STORE_OP, REF_OF_OP, ADD_OP, CONCAT_OP, SUBTRACT_OP, INCREMENT_OP, DECREMENT_OP = (
    0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76)
MULTIPLY_OP, SHIFT_LEFT_OP, SHIFT_RIGHT_OP, AND_OP, OR_OP, XOR_OP, NOT_OP = (
    0x77, 0x79, 0x7A, 0x7B, 0x7D, 0x7F, 0x80)
FIND_SET_RIGHT_BIT_OP, DEREF_OF_OP, NOTIFY_OP, SIZE_OF_OP, INDEX_OP = 0x82, 0x83, 0x86, 0x87, 0x88
CREATE_DWORD_FIELD_OP, CREATE_WORD_FIELD_OP, CREATE_BYTE_FIELD_OP = 0x8A, 0x8B, 0x8C
LAND_OP, LOR_OP, LNOT_OP, LEQUAL_OP, LGREATER_OP, LLESS_OP = 0x90, 0x91, 0x92, 0x93, 0x94, 0x95
IF_OP, ELSE_OP, WHILE_OP, NOOP_OP, RETURN_OP, BREAK_OP = 0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5

# 19.6.100 OperationRegion RegionSpace keywords (20.2.5.2 RegionSpace byte)
(SYSTEM_MEMORY, SYSTEM_IO, PCI_CONFIG, EMBEDDED_CONTROL, SMBUS, SYSTEM_CMOS,
 PCI_BAR_TARGET) = range(7)
REGION_SPACES = {"SystemMemory": 0, "SystemIO": 1, "PCI_Config": 2, "EmbeddedControl": 3,
                 "SMBus": 4, "SystemCMOS": 5, "PciBarTarget": 6}

# 20.2.5.2 FieldFlags: bits 3:0 AccessType, bit 4 LockRule, bits 6:5 UpdateRule
ACCESS_TYPES = {"AnyAcc": 0, "ByteAcc": 1, "WordAcc": 2, "DWordAcc": 3, "QWordAcc": 4,
                "BufferAcc": 5}
UPDATE_RULES = {"Preserve": 0, "WriteAsOnes": 1, "WriteAsZeros": 2}


class AmlError(ValueError):
    """An object that cannot be encoded (bad name, out-of-range value)."""


# -- helpers --------------------------------------------------------------------------------------

def pkg_length(content_len: int) -> bytes:
    """20.2.4 PkgLength for ``content_len`` bytes following it; the length counts itself.

    One byte (bits 5:0) up to 63 in total; otherwise bits 7:6 of the lead byte give the number
    (1-3) of following bytes, the lead byte's bits 3:0 hold the least significant nibble and each
    following byte the next 8 bits: 12, 20 or 28 bits in all.
    """
    if content_len < 0:
        raise AmlError("negative package length")
    if content_len + 1 <= 0x3F:
        return bytes([content_len + 1])
    for extra in (1, 2, 3):
        total = content_len + 1 + extra
        if total < 1 << (4 + 8 * extra):
            out = [(extra << 6) | (total & 0x0F)]
            total >>= 4
            for _ in range(extra):
                out.append(total & 0xFF)
                total >>= 8
            return bytes(out)
    raise AmlError(f"package too large for PkgLength: {content_len} bytes")


def name_seg(seg: str) -> bytes:
    """20.2.2 NameSeg: LeadNameChar ('A'-'Z', '_') and three NameChars (also '0'-'9'),
    padded with '_'."""
    if not 1 <= len(seg) <= 4:
        raise AmlError(f"bad NameSeg {seg!r}")
    seg = seg.ljust(4, "_")
    if not (seg[0] == "_" or "A" <= seg[0] <= "Z"):
        raise AmlError(f"bad NameSeg {seg!r}: must start with A-Z or _")
    for c in seg[1:]:
        if not (c == "_" or "A" <= c <= "Z" or "0" <= c <= "9"):
            raise AmlError(f"bad NameSeg {seg!r}: characters are A-Z, 0-9 and _")
    return seg.encode("ascii")


def name_string(path: str) -> bytes:
    """20.2.2 NameString: (RootChar | PrefixPath) NamePath."""
    if not path:
        raise AmlError("empty name path")
    prefix = b""
    rest = path
    if rest.startswith("\\"):
        prefix = bytes([ROOT_CHAR])
        rest = rest[1:]
    else:
        while rest.startswith("^"):
            prefix += bytes([PARENT_PREFIX_CHAR])
            rest = rest[1:]
    segs = [s for s in rest.split(".")] if rest else []
    if any(not s for s in segs):
        raise AmlError(f"bad name path {path!r}")
    enc = [name_seg(s) for s in segs]
    if not enc:
        return prefix + bytes([NULL_NAME])
    if len(enc) == 1:
        return prefix + enc[0]
    if len(enc) == 2:
        return prefix + bytes([DUAL_NAME_PREFIX]) + enc[0] + enc[1]
    if len(enc) > 255:
        raise AmlError("too many name segments")
    return prefix + bytes([MULTI_NAME_PREFIX, len(enc)]) + b"".join(enc)


def encode_integer(value: int) -> bytes:
    """20.2.3 ComputationalData for an integer: ZeroOp, OneOp, OnesOp or the shortest prefix."""
    if value < 0:
        raise AmlError("AML integers are unsigned")
    if value == 0:
        return bytes([ZERO_OP])
    if value == 1:
        return bytes([ONE_OP])
    if value == 0xFFFFFFFFFFFFFFFF:
        return bytes([ONES_OP])
    if value <= 0xFF:
        return bytes([BYTE_PREFIX, value])
    if value <= 0xFFFF:
        return bytes([WORD_PREFIX]) + struct.pack("<H", value)
    if value <= 0xFFFFFFFF:
        return bytes([DWORD_PREFIX]) + struct.pack("<I", value)
    if value <= 0xFFFFFFFFFFFFFFFF:
        return bytes([QWORD_PREFIX]) + struct.pack("<Q", value)
    raise AmlError(f"integer {value:#x} exceeds 64 bits")


def encode(obj) -> bytes:
    """Encode a node or a plain Python value as a data object / term argument."""
    if isinstance(obj, Node):
        return obj.encode()
    if isinstance(obj, bool):
        return bytes([ONE_OP if obj else ZERO_OP])
    if isinstance(obj, int):
        return encode_integer(obj)
    if isinstance(obj, str):
        return String(obj).encode()
    if isinstance(obj, (bytes, bytearray)):
        return Buffer(bytes(obj)).encode()
    if isinstance(obj, (list, tuple)):
        return Package(list(obj)).encode()
    raise AmlError(f"cannot encode {obj!r} as AML")


def encode_list(items) -> bytes:
    return b"".join(encode(i) for i in items)


# -- nodes ----------------------------------------------------------------------------------------

class Node:
    """Base of every AML object: ``encode()`` returns its byte code."""

    def encode(self) -> bytes:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        return self.encode()

    def __len__(self) -> int:
        return len(self.encode())


class Raw(Node):
    """Already-encoded AML bytes."""

    def __init__(self, data: bytes):
        self.data = bytes(data)

    def encode(self) -> bytes:
        return self.data


class Integer(Node):
    """An integer constant with an explicit width ("byte", "word", "dword", "qword") or shortest."""

    def __init__(self, value: int, width: str | None = None):
        self.value, self.width = value, width

    def encode(self) -> bytes:
        if self.width is None:
            return encode_integer(self.value)
        prefix, fmt, limit = {"byte": (BYTE_PREFIX, "<B", 0xFF),
                              "word": (WORD_PREFIX, "<H", 0xFFFF),
                              "dword": (DWORD_PREFIX, "<I", 0xFFFFFFFF),
                              "qword": (QWORD_PREFIX, "<Q", 0xFFFFFFFFFFFFFFFF)}[self.width]
        if not 0 <= self.value <= limit:
            raise AmlError(f"{self.value:#x} does not fit a {self.width}")
        return bytes([prefix]) + struct.pack(fmt, self.value)


Zero = Raw(bytes([ZERO_OP]))
One = Raw(bytes([ONE_OP]))
Ones = Raw(bytes([ONES_OP]))


def BytePrefix(v: int) -> Integer:
    return Integer(v, "byte")


def WordPrefix(v: int) -> Integer:
    return Integer(v, "word")


def DWordPrefix(v: int) -> Integer:
    return Integer(v, "dword")


def QWordPrefix(v: int) -> Integer:
    return Integer(v, "qword")


def eisa_id(text: str) -> int:
    """19.6.35 EISAID: three uppercase letters (5 bits each, 'A' = 1) and four hex digits, packed
    big-endian into 32 bits and stored as a little-endian DWord: EisaId("PNP0A03") = 0x030AD041."""
    if len(text) != 7 or not all("A" <= c <= "Z" for c in text[:3]):
        raise AmlError(f"bad EISA id {text!r}")
    try:
        digits = int(text[3:], 16)
    except ValueError:
        raise AmlError(f"bad EISA id {text!r}") from None
    c1, c2, c3 = (ord(c) - 0x40 for c in text[:3])
    be = (c1 << 26) | (c2 << 21) | (c3 << 16) | digits
    return int.from_bytes(be.to_bytes(4, "big"), "little")


def EisaId(text: str) -> Integer:
    """The EISA id as an integer constant, in the shortest encoding as iasl emits it (DWordPrefix
    for most ids; "PNP0000" = 0000D041h fits a WordPrefix)."""
    return Integer(eisa_id(text))


class String(Node):
    """20.2.3 String: StringPrefix AsciiCharList NullChar."""

    def __init__(self, text: str):
        if "\0" in text:
            raise AmlError("NUL in AML string")
        self.text = text

    def encode(self) -> bytes:
        return bytes([STRING_PREFIX]) + self.text.encode("ascii") + b"\0"


class NameRef(Node):
    """A reference to a named object (a NameString used as a term or a package element)."""

    def __init__(self, path: str):
        self.path = path

    def encode(self) -> bytes:
        return name_string(self.path)


class _Reg(Node):
    def __init__(self, base: int, n: int, limit: int, kind: str):
        if not 0 <= n <= limit:
            raise AmlError(f"{kind}{n} does not exist")
        self.op = base + n

    def encode(self) -> bytes:
        return bytes([self.op])


def Local(n: int) -> Node:
    """20.2.6.2 LocalObj: Local0-Local7 (0x60-0x67)."""
    return _Reg(LOCAL0_OP, n, 7, "Local")


def Arg(n: int) -> Node:
    """20.2.6.1 ArgObj: Arg0-Arg6 (0x68-0x6E)."""
    return _Reg(ARG0_OP, n, 6, "Arg")


def _term(x) -> bytes:
    """A TermArg or SuperName: nodes as they are, ints as integers, str as a name reference."""
    if isinstance(x, str):
        return name_string(x)
    return encode(x)


def _target(x) -> bytes:
    """Target := SuperName | NullName."""
    if x is None:
        return bytes([NULL_NAME])
    return _term(x)


class Buffer(Node):
    """20.2.5.4 DefBuffer: BufferOp PkgLength BufferSize ByteList."""

    def __init__(self, data: bytes, size: int | None = None):
        self.data = bytes(data)
        self.size = len(self.data) if size is None else size

    def encode(self) -> bytes:
        body = encode_integer(self.size) + self.data
        return bytes([BUFFER_OP]) + pkg_length(len(body)) + body


class Package(Node):
    """20.2.5.4 DefPackage: PackageOp PkgLength NumElements PackageElementList.

    Elements: data objects (ints, strings, nested lists) or name references (``NameRef``)."""

    def __init__(self, elements, num_elements: int | None = None):
        self.elements = list(elements)
        self.num = len(self.elements) if num_elements is None else num_elements
        if not 0 <= self.num <= 255:
            raise AmlError("Package holds at most 255 elements (use VarPackage)")

    def encode(self) -> bytes:
        body = bytes([self.num]) + encode_list(self.elements)
        return bytes([PACKAGE_OP]) + pkg_length(len(body)) + body


class Name(Node):
    """20.2.5.1 DefName: NameOp NameString DataRefObject."""

    def __init__(self, name: str, value):
        self.name, self.value = name, value

    def encode(self) -> bytes:
        return bytes([NAME_OP]) + name_string(self.name) + encode(self.value)


class Alias(Node):
    """20.2.5.1 DefAlias: AliasOp NameString(source) NameString(alias)."""

    def __init__(self, source: str, alias: str):
        self.source, self.alias = source, alias

    def encode(self) -> bytes:
        return bytes([ALIAS_OP]) + name_string(self.source) + name_string(self.alias)


class _Block(Node):
    """Op [ExtOp] PkgLength <head> TermList."""
    opcode: bytes = b""

    def __init__(self, terms=()):
        self.terms = list(terms)

    def head(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        body = self.head() + encode_list(self.terms)
        return self.opcode + pkg_length(len(body)) + body

    def append(self, term) -> "_Block":
        self.terms.append(term)
        return self


class Scope(_Block):
    """20.2.5.1 DefScope: ScopeOp PkgLength NameString TermList."""
    opcode = bytes([SCOPE_OP])

    def __init__(self, name: str, terms=()):
        super().__init__(terms)
        self.name = name

    def head(self) -> bytes:
        return name_string(self.name)


class Device(Scope):
    """20.2.5.2 DefDevice: DeviceOp (ExtOpPrefix 0x82) PkgLength NameString TermList."""
    opcode = bytes([EXT_OP_PREFIX, EXT_DEVICE_OP])


class Method(_Block):
    """20.2.5.2 DefMethod: MethodOp PkgLength NameString MethodFlags TermList.

    MethodFlags: bits 2:0 ArgCount (0-7), bit 3 SerializeFlag, bits 7:4 SyncLevel."""
    opcode = bytes([METHOD_OP])

    def __init__(self, name: str, argc: int = 0, terms=(), serialized: bool = False,
                 sync_level: int = 0):
        super().__init__(terms)
        if not 0 <= argc <= 7 or not 0 <= sync_level <= 15:
            raise AmlError("bad method flags")
        self.name, self.argc, self.serialized, self.sync_level = name, argc, serialized, sync_level

    def head(self) -> bytes:
        flags = self.argc | (0x08 if self.serialized else 0) | (self.sync_level << 4)
        return name_string(self.name) + bytes([flags])


class If(_Block):
    """20.2.5.3 DefIfElse: IfOp PkgLength Predicate TermList DefElse (DefElse built separately)."""
    opcode = bytes([IF_OP])

    def __init__(self, predicate, terms=()):
        super().__init__(terms)
        self.predicate = predicate

    def head(self) -> bytes:
        return _term(self.predicate)


class Else(_Block):
    """20.2.5.3 DefElse: ElseOp PkgLength TermList (directly after an If)."""
    opcode = bytes([ELSE_OP])


class While(If):
    """20.2.5.3 DefWhile: WhileOp PkgLength Predicate TermList."""
    opcode = bytes([WHILE_OP])


class _Op(Node):
    """A fixed opcode followed by operands encoded as TermArgs / SuperNames / Targets."""

    def __init__(self, opcode: bytes, *parts: bytes):
        self.opcode, self.parts = opcode, parts

    def encode(self) -> bytes:
        return self.opcode + b"".join(self.parts)


def Call(path: str, *args) -> Node:
    """20.2.5 MethodInvocation: NameString TermArgList (the callee's declared ArgCount tells the
    parser how many TermArgs follow, so pass exactly that many)."""
    return _Op(name_string(path), *(_term(a) for a in args))


def Return(value=None) -> Node:
    """20.2.5.3 DefReturn: ReturnOp ArgObject (Return() returns Zero, as iasl encodes it)."""
    return _Op(bytes([RETURN_OP]), _term(0 if value is None else value))


def Store(source, dest) -> Node:
    """20.2.5.4 DefStore: StoreOp TermArg SuperName."""
    return _Op(bytes([STORE_OP]), _term(source), _term(dest))


def Notify(obj, value) -> Node:
    return _Op(bytes([NOTIFY_OP]), _term(obj), _term(value))


def _binary(opcode):
    def make(a, b, target=None) -> Node:
        return _Op(bytes([opcode]), _term(a), _term(b), _target(target))
    return make


Add = _binary(ADD_OP)
Subtract = _binary(SUBTRACT_OP)
Multiply = _binary(MULTIPLY_OP)
And = _binary(AND_OP)
Or = _binary(OR_OP)
Xor = _binary(XOR_OP)
ShiftLeft = _binary(SHIFT_LEFT_OP)
ShiftRight = _binary(SHIFT_RIGHT_OP)
Concatenate = _binary(CONCAT_OP)
Index = _binary(INDEX_OP)


def Not(a, target=None) -> Node:
    return _Op(bytes([NOT_OP]), _term(a), _target(target))


def FindSetRightBit(a, target=None) -> Node:
    return _Op(bytes([FIND_SET_RIGHT_BIT_OP]), _term(a), _target(target))


def Increment(name) -> Node:
    return _Op(bytes([INCREMENT_OP]), _term(name))


def Decrement(name) -> Node:
    return _Op(bytes([DECREMENT_OP]), _term(name))


def SizeOf(name) -> Node:
    return _Op(bytes([SIZE_OF_OP]), _term(name))


def DerefOf(ref) -> Node:
    return _Op(bytes([DEREF_OF_OP]), _term(ref))


def _logical(opcode: bytes):
    def make(a, b) -> Node:
        return _Op(opcode, _term(a), _term(b))
    return make


LAnd = _logical(bytes([LAND_OP]))
LOr = _logical(bytes([LOR_OP]))
LEqual = _logical(bytes([LEQUAL_OP]))
LGreater = _logical(bytes([LGREATER_OP]))
LLess = _logical(bytes([LLESS_OP]))
LNotEqual = _logical(bytes([LNOT_OP, LEQUAL_OP]))        # LNot(LEqual): 92 93
LLessEqual = _logical(bytes([LNOT_OP, LGREATER_OP]))     # LNot(LGreater): 92 94
LGreaterEqual = _logical(bytes([LNOT_OP, LLESS_OP]))     # LNot(LLess): 92 95


def LNot(a) -> Node:
    return _Op(bytes([LNOT_OP]), _term(a))


def _create_field(opcode):
    def make(source, index, name: str) -> Node:
        return _Op(bytes([opcode]), _term(source), _term(index), name_string(name))
    return make


CreateByteField = _create_field(CREATE_BYTE_FIELD_OP)
CreateWordField = _create_field(CREATE_WORD_FIELD_OP)
CreateDWordField = _create_field(CREATE_DWORD_FIELD_OP)


class OpRegion(Node):
    """20.2.5.2 DefOpRegion: ExtOp 0x80 NameString RegionSpace RegionOffset RegionLen."""

    def __init__(self, name: str, space, offset, length):
        self.name = name
        self.space = REGION_SPACES[space] if isinstance(space, str) else space
        self.offset, self.length = offset, length

    def encode(self) -> bytes:
        return (bytes([EXT_OP_PREFIX, EXT_OP_REGION_OP]) + name_string(self.name)
                + bytes([self.space]) + _term(self.offset) + _term(self.length))


class Field(Node):
    """20.2.5.2 DefField: ExtOp 0x81 PkgLength NameString FieldFlags FieldList.

    ``fields`` is a list of (name, bits) for NamedField (NameSeg PkgLength) or (None, bits) for
    ReservedField (0x00 PkgLength), the latter as iasl emits ``Offset()`` and ``, bits`` gaps."""

    def __init__(self, region: str, fields, access="AnyAcc", lock: bool = False,
                 update="Preserve"):
        self.region = region
        self.fields = list(fields)
        self.access = ACCESS_TYPES[access] if isinstance(access, str) else access
        self.lock = lock
        self.update = UPDATE_RULES[update] if isinstance(update, str) else update

    def encode(self) -> bytes:
        flags = self.access | (0x10 if self.lock else 0) | (self.update << 5)
        body = bytearray(name_string(self.region) + bytes([flags]))
        for name, bits in self.fields:
            # A field's bit length is itself a PkgLength-style encoding (without counting itself).
            if name is None:
                body += b"\0" + _field_length(bits)
            else:
                body += name_seg(name) + _field_length(bits)
        return bytes([EXT_OP_PREFIX, EXT_FIELD_OP]) + pkg_length(len(body)) + bytes(body)


def _field_length(bits: int) -> bytes:
    """The PkgLength of a field element encodes the bit count directly (20.2.5.2 NamedField)."""
    if bits < 0 or bits >= 1 << 28:
        raise AmlError("bad field width")
    if bits <= 0x3F:
        return bytes([bits])
    for extra in (1, 2, 3):
        if bits < 1 << (4 + 8 * extra):
            out = [(extra << 6) | (bits & 0x0F)]
            v = bits >> 4
            for _ in range(extra):
                out.append(v & 0xFF)
                v >>= 8
            return bytes(out)
    raise AmlError("bad field width")


# -- 6.4 resource descriptors ---------------------------------------------------------------------

def _small(type_: int, data: bytes) -> bytes:
    """6.4.2 small resource data: tag = type (bits 6:3) | length (bits 2:0)."""
    assert len(data) <= 7
    return bytes([(type_ << 3) | len(data)]) + data


def _large(type_: int, data: bytes) -> bytes:
    """6.4.3 large resource data: tag = 0x80 | type, then a 16-bit length."""
    return bytes([0x80 | type_]) + struct.pack("<H", len(data)) + data


def _mask(irqs, limit: int) -> int:
    m = 0
    for i in irqs:
        if not 0 <= i < limit:
            raise AmlError(f"bad IRQ/DMA channel {i}")
        m |= 1 << i
    return m


def IRQNoFlags(irqs) -> bytes:
    """6.4.2.1 IRQ descriptor, 2-byte form (edge, active high, exclusive implied)."""
    return _small(0x04, struct.pack("<H", _mask(irqs, 16)))


def IRQ(irqs, edge: bool = True, active_low: bool = False, shared: bool = False,
        wake: bool = False) -> bytes:
    """6.4.2.1 IRQ descriptor with its information byte: _HE bit 0 (1 = edge), _LL bit 3
    (1 = active low), _SHR bit 4, wake capable bit 5."""
    info = (1 if edge else 0) | (0x08 if active_low else 0) | (0x10 if shared else 0) \
        | (0x20 if wake else 0)
    return _small(0x04, struct.pack("<HB", _mask(irqs, 16), info))


def DMA(channels, type_: int = 0, bus_master: bool = False, size: int = 0) -> bytes:
    """6.4.2.2 DMA descriptor: _TYP bits 6:5 (0 Compatibility), _BM bit 2, _SIZ bits 1:0
    (0 Transfer8, 1 Transfer8_16, 2 Transfer16)."""
    flags = (type_ << 5) | (0x04 if bus_master else 0) | size
    return _small(0x05, bytes([_mask(channels, 8), flags]))


def IO(minimum: int, maximum: int, alignment: int, length: int, decode16: bool = True) -> bytes:
    """6.4.2.5 I/O port descriptor: information (bit 0 _DEC: 16-bit decode), _MIN, _MAX, _ALN,
    _LEN."""
    return _small(0x08, struct.pack("<BHHBB", 1 if decode16 else 0, minimum, maximum,
                                    alignment, length))


def FixedIO(base: int, length: int) -> bytes:
    """6.4.2.6 Fixed location I/O port descriptor (10-bit base)."""
    if base > 0x3FF:
        raise AmlError("FixedIO decodes 10 address bits")
    return _small(0x09, struct.pack("<HB", base, length))


def Memory32Fixed(base: int, length: int, writeable: bool = True) -> bytes:
    """6.4.3.4 32-bit fixed memory range descriptor: information (bit 0 _RW), base, length."""
    return _large(0x06, struct.pack("<BII", 1 if writeable else 0, base, length))


# 6.4.3.5 address space descriptors: resource type and general flags
RESOURCE_MEMORY, RESOURCE_IO, RESOURCE_BUS = 0, 1, 2


def _general_flags(producer: bool, min_fixed: bool, max_fixed: bool, subtractive: bool) -> int:
    """General flags: bit 3 _MAF, bit 2 _MIF, bit 1 _DEC (1 subtractive), bit 0 (1 consumer)."""
    return ((0x08 if max_fixed else 0) | (0x04 if min_fixed else 0)
            | (0x02 if subtractive else 0) | (0 if producer else 1))


def _address_space(tag: int, fmt: str, rtype: int, gflags: int, tflags: int, granularity: int,
                   minimum: int, maximum: int, translation: int, length: int | None) -> bytes:
    if length is None:
        length = maximum - minimum + 1
    return _large(tag, struct.pack("<BBB" + fmt * 5, rtype, gflags, tflags, granularity, minimum,
                                   maximum, translation, length))


def WordBusNumber(minimum: int, maximum: int, length: int | None = None, granularity: int = 0,
                  translation: int = 0, producer: bool = True) -> bytes:
    """6.4.3.5.3 WORD address space descriptor, resource type 2 (bus number range)."""
    return _address_space(0x08, "H", RESOURCE_BUS, _general_flags(producer, True, True, False),
                          0, granularity, minimum, maximum, translation, length)


def WordIO(minimum: int, maximum: int, length: int | None = None, granularity: int = 0,
           translation: int = 0, producer: bool = True, range_type: int = 3) -> bytes:
    """WORD address space descriptor, resource type 1 (I/O); type flags bits 1:0 _RNG
    (3 = EntireRange, 2 = ISAOnlyRanges, 1 = NonISAOnlyRanges)."""
    return _address_space(0x08, "H", RESOURCE_IO, _general_flags(producer, True, True, False),
                          range_type, granularity, minimum, maximum, translation, length)


def _mem_flags(cacheable: int, writeable: bool) -> int:
    """Memory type flags: bit 0 _RW, bits 2:1 _MEM (0 NonCacheable, 1 Cacheable,
    2 WriteCombining, 3 Prefetchable)."""
    return (cacheable << 1) | (1 if writeable else 0)


def DWordMemory(minimum: int, maximum: int, length: int | None = None, cacheable: int = 1,
                writeable: bool = True, granularity: int = 0, translation: int = 0,
                producer: bool = True) -> bytes:
    """6.4.3.5.2 DWORD address space descriptor, resource type 0 (memory)."""
    return _address_space(0x07, "I", RESOURCE_MEMORY, _general_flags(producer, True, True, False),
                          _mem_flags(cacheable, writeable), granularity, minimum, maximum,
                          translation, length)


def QWordMemory(minimum: int, maximum: int, length: int | None = None, cacheable: int = 1,
                writeable: bool = True, granularity: int = 0, translation: int = 0,
                producer: bool = True) -> bytes:
    """6.4.3.5.1 QWORD address space descriptor, resource type 0 (memory)."""
    return _address_space(0x0A, "Q", RESOURCE_MEMORY, _general_flags(producer, True, True, False),
                          _mem_flags(cacheable, writeable), granularity, minimum, maximum,
                          translation, length)


def EndTag(preceding: bytes = b"", checksum: bool = True) -> bytes:
    """6.4.2.9 End Tag: 0x79 and a checksum byte making the whole template sum to zero (a zero
    checksum also means "valid"; ``checksum=False`` emits 0 as iasl does)."""
    tag = bytes([0x79])
    if not checksum:
        return tag + b"\0"
    return tag + bytes([(-sum(preceding + tag)) & 0xFF])


def ResourceTemplate(descriptors, checksum: bool = True) -> Buffer:
    """19.6.116 ResourceTemplate: a Buffer holding the descriptors and an End Tag."""
    data = b"".join(descriptors)
    return Buffer(data + EndTag(data, checksum))


# -- 5.2.11 definition block ----------------------------------------------------------------------

def table_checksum(data: bytes) -> int:
    """The byte that makes ``data`` (with the checksum byte zero) sum to 0 modulo 256."""
    return (-sum(data)) & 0xFF


def definition_block(signature: bytes, terms, revision: int = 2, oem_id: bytes = b"AERO  ",
                     oem_table_id: bytes = b"AEROPC  ", oem_revision: int = 1,
                     creator_id: bytes = b"AERO", creator_revision: int = 1) -> bytes:
    """A DSDT/SSDT: the 36-byte system description table header (5.2.6) then the AML TermList.

    ``revision`` 2 or higher makes integers 64 bits wide (5.2.11.1)."""
    body = encode_list(terms)
    return table(signature, body, revision, oem_id, oem_table_id, oem_revision, creator_id,
                 creator_revision)


def table(signature: bytes, body: bytes, revision: int, oem_id: bytes = b"AERO  ",
          oem_table_id: bytes = b"AEROPC  ", oem_revision: int = 1, creator_id: bytes = b"AERO",
          creator_revision: int = 1) -> bytes:
    """5.2.6 System Description Table Header + body, with Length and Checksum filled in."""
    if len(signature) != 4 or len(oem_id) != 6 or len(oem_table_id) != 8 or len(creator_id) != 4:
        raise AmlError("bad table header field sizes")
    length = 36 + len(body)
    hdr = bytearray(signature + struct.pack("<IBB", length, revision, 0) + oem_id + oem_table_id
                    + struct.pack("<I", oem_revision) + creator_id
                    + struct.pack("<I", creator_revision))
    out = hdr + body
    out[9] = table_checksum(out)
    return bytes(out)
