#!/usr/bin/env python3
"""Heap allocations per request in a callgrind dump: the calls of malloc, calloc, realloc and
the aligned allocators, glibc's or mimalloc's (all threads), divided by the number of requests.

Usage: allocations.py DUMP N"""
import re
import sys

# glibc's entry points, and mimalloc's (the `portcullis` binary's global allocator).
ALLOC = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign",
         "mi_malloc", "mi_zalloc", "mi_calloc", "mi_realloc", "mi_malloc_aligned",
         "mi_zalloc_aligned", "mi_realloc_aligned"}
names = {}  # callgrind compresses repeated names to "(id)"; fn= and cfn= share the ids


def name(token):
    m = re.match(r"\((\d+)\)(?:\s+(.*))?", token)
    if not m:
        return token
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "")


callee, total = "", 0
with open(sys.argv[1]) as dump:
    for line in dump:
        if line.startswith("fn="):
            name(line[3:].strip())
        elif line.startswith("cfn="):
            callee = name(line[4:].strip())
        elif line.startswith("calls=") and callee.split("'")[0] in ALLOC:
            total += int(line[6:].split()[0])
print(f"{total / int(sys.argv[2]):.1f}")
