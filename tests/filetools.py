"""Takes .lstm bytes apart and puts them back together, from docs/FORMAT.md alone (not from
lstmlite.format), so that tests can damage one thing at a time and keep the rest valid."""
import json
import struct
import zlib

HEADER = struct.Struct("<8sIIQQQII16x")


def split(blob):
    magic, version, hsize, msize, doff, dsize, crc, align = HEADER.unpack_from(blob, 0)
    fields = dict(magic=magic, version=version, header_size=hsize, manifest_size=msize,
                  data_offset=doff, data_size=dsize, crc32=crc, alignment=align)
    manifest = json.loads(blob[64:64 + msize].decode("utf-8"))
    return fields, manifest, blob[doff:doff + dsize]


def with_crc(blob):
    blob = bytearray(blob)
    blob[40:44] = b"\0\0\0\0"
    blob[40:44] = struct.pack("<I", zlib.crc32(bytes(blob)))
    return bytes(blob)


def join(fields, manifest, data, fix_crc=True, raw_manifest=None):
    body = raw_manifest if raw_manifest is not None else json.dumps(
        manifest, sort_keys=True, separators=(",", ":")).encode()
    doff = 64 + len(body) + (-(64 + len(body)) % 64)
    values = dict(fields, manifest_size=len(body), data_offset=doff, data_size=len(data))
    header = HEADER.pack(values["magic"], values["version"], values["header_size"],
                         values["manifest_size"], values["data_offset"], values["data_size"],
                         values["crc32"], values["alignment"])
    blob = header + body + b"\0" * (doff - 64 - len(body)) + data
    return with_crc(blob) if fix_crc else blob


def set_header(blob, fix_crc=True, **changes):
    fields, _, _ = split(blob)
    fields.update(changes)
    header = HEADER.pack(fields["magic"], fields["version"], fields["header_size"],
                         fields["manifest_size"], fields["data_offset"], fields["data_size"],
                         fields["crc32"], fields["alignment"])
    blob = header + blob[64:]
    return with_crc(blob) if fix_crc else blob


def rewrite(path, edit_manifest=None, edit_data=None):
    """Rewrites a file in place after edit_manifest(manifest, data) and/or edit_data(manifest,
    data) changed its parsed manifest or its data section (a bytearray), with a fresh CRC."""
    with open(path, "rb") as fh:
        fields, manifest, data = split(fh.read())
    data = bytearray(data)
    for edit in (edit_manifest, edit_data):
        if edit is not None:
            edit(manifest, data)
    with open(path, "wb") as fh:
        fh.write(join(fields, manifest, bytes(data)))
