"""Stands in for Sierra Chart writing a `.scid` file, for the ScidFeed tests (run as a subprocess).

    scid_writer.py append SRC DST START END   append bytes [START, END) of SRC to DST in small random chunks
                                              that split records, flushed one by one
    scid_writer.py truncate DST SIZE PAUSE     cut DST to SIZE bytes, then wait PAUSE seconds
    scid_writer.py replace SRC DST END         write bytes [0, END) of SRC to a new file and rename it over DST
"""

from __future__ import annotations

import os
import random
import sys
import time


def append(src: str, dst: str, start: int, end: int) -> None:
    data = open(src, "rb").read()[start:end]
    rng = random.Random(start)
    with open(dst, "ab") as fh:
        i = 0
        while i < len(data):
            n = rng.randint(1, 97)
            fh.write(data[i:i + n])
            fh.flush()
            i += n
            if rng.random() < 0.1:
                time.sleep(0.001)


def main(argv: list[str]) -> None:
    cmd = argv[0]
    if cmd == "append":
        append(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "truncate":
        os.truncate(argv[1], int(argv[2]))
        time.sleep(float(argv[3]))
    elif cmd == "replace":
        tmp = argv[2] + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(open(argv[1], "rb").read()[: int(argv[3])])
        os.replace(tmp, argv[2])
    else:
        raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
