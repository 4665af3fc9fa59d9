"""Refuses a binary the EC2 hosts could not run: it must be a 64-bit
little-endian ELF executable for x86-64, linked statically (no program
interpreter, no shared libraries), so no host's C library matters.

    python3 scripts/terraform-check/elfcheck.py target/x86_64-unknown-linux-musl/release/atelier

Exit 0 and one line saying what it found, or exit 1 with the reason.
Called by scripts/build-bin.sh deploy; terraform checks the header again
before it uploads (terraform/bucket.tf).
"""

import struct
import sys

PT_INTERP = 3
EM_X86_64 = 0x3E


def problems(data):
    if data[:4] != b"\x7fELF":
        return ["not an ELF file (a macOS or Windows build, or a script?)"]
    if data[4] != 2 or data[5] != 1:
        return ["not a 64-bit little-endian ELF"]
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != EM_X86_64:
        return [f"built for machine 0x{e_machine:x}, not x86-64 (arm64 is 0xb7)"]
    if e_type not in (2, 3):
        return ["not an executable"]
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    found = []
    for i in range(e_phnum):
        p_type, = struct.unpack_from("<I", data, e_phoff + i * e_phentsize)
        if p_type == PT_INTERP:
            found.append("it needs a program interpreter (dynamically linked: build with scripts/build-bin.sh deploy)")
    return found


def main(path):
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    found = problems(data)
    if found:
        print(f"elfcheck: {path}: " + "; ".join(found), file=sys.stderr)
        return 1
    print(f"elfcheck: {path}: a static x86-64 ELF executable")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
