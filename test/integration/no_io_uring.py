#!/usr/bin/python3
"""Run a command under a seccomp filter that refuses io_uring_setup with
EPERM, as Docker's and containerd's default profiles do:

    no_io_uring.py /path/to/ringslot --port 7777 ...

The filter is inherited across exec, so the command cannot lift it."""
import errno
import os
import sys

import seccomp

f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(errno.EPERM), "io_uring_setup")
f.load()
os.execv(sys.argv[1], sys.argv[1:])
